"""Articles sent to POST /v1/documents: JSON records or uploaded files, checked like the UI's.

Files are kept where the UI keeps them (`<index>/uploads`, cleaned names, written aside and
renamed into place) and loaded by the same loaders, so an article sent either way is the
same article, and deleting it removes its stored copy.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embeddings.loaders import Skipped, derive_title, make_doc_id, normalize_date
from embeddings.types import Document
from rag.errors import IngestError, RagError
from rag.ui import ALLOWED_SUFFIXES, safe_filename


@dataclass(frozen=True)
class Upload:
    """One received file: the name the client gave and its bytes."""

    filename: str
    data: bytes


@dataclass
class Stored:
    saved: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def store_uploads(files: Sequence[Upload], upload_dir: Path, max_bytes: int) -> Stored:
    """Keeps accepted files in `upload_dir`. Identical bytes under a taken name reuse the
    stored file; different bytes get a unique suffix (ids come from the content)."""
    result = Stored()
    upload_dir.mkdir(parents=True, exist_ok=True)
    root = upload_dir.resolve()
    for f in files:
        shown = f.filename or "file"
        name = safe_filename(shown)
        suffix = Path(name).suffix.lower()
        if suffix not in ALLOWED_SUFFIXES:
            accepted = ", ".join(ALLOWED_SUFFIXES)
            reason = f"type {suffix or '(none)'} not accepted; use {accepted}"
        elif len(f.data) > max_bytes:
            reason = f"larger than {max_bytes // (1024 * 1024)} MB"
        elif not f.data:
            reason = "empty file"
        else:
            stem = Path(name).stem
            while (root / name).exists() and (root / name).read_bytes() != f.data:
                name = f"{stem}-{uuid.uuid4().hex[:6]}{suffix}"
            dest = root / name
            if not dest.exists():
                tmp = root / f".{name}.{uuid.uuid4().hex[:6]}.part"
                tmp.write_bytes(f.data)
                os.replace(tmp, dest)
            result.saved.append(dest)
            continue
        result.skipped.append(Skipped(shown, reason))
    return result


def remove_upload(path: str | None, upload_dir: Path) -> None:
    """Deletes a stored upload; files outside the upload folder are never touched."""
    if not path:
        return
    try:
        p = Path(path).resolve()
        if p.parent == upload_dir.resolve() and p.is_file():
            p.unlink()
    except OSError:
        pass


def to_document(record: dict[str, Any], n: int) -> Document:
    """A JSON article (`text` required; `title`, `date`, `source`, `url`, `doc_id`
    optional), normalised as the JSON loader does. `n` numbers it in messages."""
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise IngestError(f"documents[{n}] has no text")
    text = text.strip()
    title = record.get("title")
    doc_id = record.get("doc_id")
    return Document(
        doc_id=str(doc_id) if doc_id not in (None, "") else make_doc_id(text),
        title=title.strip() if isinstance(title, str) and title.strip() else derive_title(text),
        text=text,
        date=normalize_date(record.get("date")),
        source=_opt(record.get("source")),
        url=_opt(record.get("url")),
    )


def _opt(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def ingest_files(pipeline: Any, paths: list[Path]) -> list[Any]:
    """Ingests a batch; if the batch fails as a whole, file by file, so one bad file is
    reported as skipped instead of sinking the rest (as the UI does)."""
    if not paths:
        return []
    try:
        return [pipeline.ingest(paths)]
    except RagError:
        if len(paths) == 1:
            raise
    from embeddings.index import IngestReport

    reports = []
    for p in paths:
        try:
            reports.append(pipeline.ingest([p]))
        except RagError as e:
            reports.append(IngestReport(skipped=[Skipped(str(p.name), str(e))]))
    return reports
