"""Uploaded articles: judged one file at a time, stored inside the index folder, cleaned up.

Gradio hands each upload over as a temporary file under `<uploads>/.incoming`; an accepted
file is copied to `<uploads>/<clean name>` and ingested from there (so `rag delete` and the
UI can remove it later). A file that is rejected, here or by the loaders, leaves nothing
behind. A file with the name of one uploaded before is a new version of it: its articles
replace the ones that file gave, unless the new version cannot be read (then the old one
stays).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embeddings.loaders import SUPPORTED_SUFFIXES
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.pipeline import Pipeline

__all__ = ["ALLOWED_SUFFIXES", "IngestOutcome", "UploadStore", "safe_filename"]

ALLOWED_SUFFIXES: tuple[str, ...] = tuple(sorted(SUPPORTED_SUFFIXES))
_SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")
# Gradio's multipart parser leaves an empty temporary file per upload in its upload folder;
# older than this, an empty one is a leftover, not an upload being written.
_STALE_SECONDS = 1.0


def safe_filename(name: str) -> str:
    """A basename that cannot leave the upload folder: no directories, no `..`, no hidden
    files, only `[A-Za-z0-9._-]`."""
    base = re.split(r"[\\/]", name or "")[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _SAFE_NAME_RE.sub("_", stem).strip("._-")[:80] or "article"
    suffix = _SAFE_NAME_RE.sub("", suffix).lower()[:10]
    return f"{stem}.{suffix}" if suffix else stem


@dataclass(frozen=True)
class Upload:
    """One file as the browser sent it: where Gradio put it and the name the user gave."""

    path: Path
    name: str


@dataclass
class IngestOutcome:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (shown name, reason)
    chunks_added: int = 0


def _shown(name: str) -> str:
    return re.split(r"[\\/]", name)[-1] or name or "file"


class UploadStore:
    """The upload folder of one index."""

    def __init__(self, upload_dir: Path, max_bytes: int) -> None:
        self.root = Path(upload_dir).resolve()
        self.incoming = self.root / ".incoming"
        self.max_bytes = max_bytes
        self.incoming.mkdir(parents=True, exist_ok=True)
        # stored file -> the earlier version it replaced, kept until the new one is ingested
        self._previous: dict[Path, Path] = {}
        self._previous_lock = threading.Lock()

    def receive(self, name: str, data: bytes) -> Upload:
        """An upload that arrived as bytes (the HTTP API), kept under `.incoming` like
        Gradio's, so both take the same path through `store` and `ingest`."""
        folder = self.incoming / uuid.uuid4().hex
        folder.mkdir(parents=True)
        path = folder / safe_filename(name)
        path.write_bytes(data)
        return Upload(path, _shown(name))

    def uploads(self, payload: Sequence[Any]) -> tuple[list[Upload], list[tuple[str, str]]]:
        """Gradio's raw file payload (`FileData` dicts) -> uploads, plus the entries refused.

        The payload arrives unprocessed so that one odd entry cannot fail the whole batch;
        that makes this the place that checks every path is one Gradio wrote under
        `.incoming` (a crafted request could name any file on the machine).
        """
        good, bad = [], []
        for item in payload or []:
            if isinstance(item, Mapping):
                raw_path, name = item.get("path"), item.get("orig_name")
            else:  # a processed upload (a str subclass with `.name`/`.orig_name`)
                raw_path = getattr(item, "name", None) or item
                name = getattr(item, "orig_name", None)
            if not isinstance(raw_path, str) or not raw_path:
                bad.append((_shown(str(name or "file")), "not a file upload"))
                continue
            path = Path(raw_path)
            shown = _shown(str(name)) if isinstance(name, str) and name else path.name
            try:
                inside = path.resolve().is_relative_to(self.incoming)
            except (OSError, ValueError):
                inside = False
            if not inside:
                bad.append((shown, "not an upload received by this server"))
            else:
                good.append(Upload(path, shown))
        return good, bad

    def store(
        self, uploads: Sequence[Upload]
    ) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
        """Copy each acceptable upload under a clean name; returns ((path, shown name) saved,
        (shown name, reason) skipped). Re-sending identical bytes reuses the stored file; a
        different file with a taken name is a new version of it (`ingest` replaces the
        articles the old version gave). Two files of one batch with the same name are two
        files: the second gets a unique suffix."""
        saved: list[tuple[Path, str]] = []
        skipped: list[tuple[str, str]] = []
        used: set[str] = set()
        for up in uploads:
            try:
                reason = self._store_one(up, used, saved)
            except OSError as e:
                reason = f"could not be stored ({e.strerror or e})"
            if reason:
                skipped.append((up.name, reason))
            self._discard_incoming(up.path)
        return saved, skipped

    def _store_one(self, up: Upload, used: set[str], saved: list[tuple[Path, str]]) -> str | None:
        name = safe_filename(up.name)
        suffix = Path(name).suffix.lower()
        try:
            size = up.path.stat().st_size
        except OSError:
            return "could not be read"
        if suffix not in ALLOWED_SUFFIXES:
            return f"type {suffix or '(none)'} not accepted; use " + ", ".join(ALLOWED_SUFFIXES)
        if size > self.max_bytes:
            return f"larger than {self.max_bytes // (1024 * 1024)} MB"
        if size == 0:
            return "empty file"
        stem = Path(name).stem
        while name in used:
            name = f"{stem}-{uuid.uuid4().hex[:6]}{suffix}"
        used.add(name)
        dest = self.root / name
        previous = None
        if dest.exists() and not _same_bytes(dest, up.path):
            previous = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:6]}.previous")
            os.replace(dest, previous)
        if not dest.exists():
            tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:6]}.part")
            try:
                shutil.copyfile(up.path, tmp)
                os.replace(tmp, dest)
            except OSError:
                tmp.unlink(missing_ok=True)
                if previous is not None:
                    os.replace(previous, dest)
                raise
        if previous is not None:
            with self._previous_lock:
                self._previous[dest] = previous
        saved.append((dest, up.name))
        return None

    def ingest(self, pipeline: Pipeline, saved: Sequence[tuple[Path, str]]) -> IngestOutcome:
        """Ingest stored files in one commit; if the batch as a whole fails, file by file, so
        one bad file is reported as skipped instead of sinking the rest. A file that yields
        no article is removed again. A new version of a stored file replaces the articles of
        the old one (reported as updated); if it yields none, the old version stays."""
        out = IngestOutcome()
        names = {str(path): shown for path, shown in saved}
        with self._previous_lock:
            previous = {p: self._previous.pop(p) for p, _ in saved if p in self._previous}
        before = self._articles_from(pipeline, previous) if previous else {}
        try:
            reports = [pipeline.ingest([p for p, _ in saved])] if saved else []
        except RagError:
            reports = []
            for path, shown in saved:
                try:
                    reports.append(pipeline.ingest([path]))
                except RagError as e:
                    out.skipped.append((shown, str(e)))
        for report in reports:
            out.added += report.added
            out.updated += report.updated
            out.unchanged += report.unchanged
            out.chunks_added += report.chunks_added
            out.skipped += [
                (names.get(s.path, Path(s.path).name), s.reason) for s in report.skipped
            ]
        if previous:
            self._replace_versions(pipeline, out, previous, before, names)
        self.remove_unused(pipeline, [p for p, _ in saved])
        return out

    @staticmethod
    def _articles_from(pipeline: Pipeline, paths: Mapping[Path, Path]) -> dict[Path, set[str]]:
        """doc ids per stored file, for the files in `paths`."""
        found: dict[Path, set[str]] = {p: set() for p in paths}
        for d in pipeline.documents():
            p = _resolved(Path(d.path)) if d.path else None
            if p in found:
                found[p].add(d.doc_id)
        return found

    def _replace_versions(
        self,
        pipeline: Pipeline,
        out: IngestOutcome,
        previous: Mapping[Path, Path],
        before: Mapping[Path, set[str]],
        names: Mapping[str, str],
    ) -> None:
        """After a batch: each new version that gave articles retires the articles only the
        old version had; one that gave none is swapped back for the old version."""
        kept = {*out.added, *out.updated, *out.unchanged}
        now = self._articles_from(pipeline, previous)
        for dest, old in previous.items():
            if not now[dest] - before[dest] and not (now[dest] & kept):  # nothing from it
                with contextlib.suppress(OSError):
                    os.replace(old, dest)
                shown = names.get(str(dest))
                out.skipped = [
                    (n, f"{r} (the earlier version stays)" if n == shown else r)
                    for n, r in out.skipped
                ]
                continue
            for doc_id in sorted(before[dest] - kept):
                pipeline.delete(doc_id)
            with contextlib.suppress(OSError):
                old.unlink(missing_ok=True)
            if before[dest] - kept:  # a changed article has a new id: it is an update
                new = [i for i in out.added if i in now[dest]]
                out.added = [i for i in out.added if i not in new]
                out.updated += new

    def remove_unused(self, pipeline: Pipeline, paths: Sequence[Path]) -> None:
        """Delete stored uploads no indexed article comes from (a .jsonl upload can hold
        several articles: it stays while any of them is indexed). Files outside the upload
        folder — the seeds, a user's own folders — are never touched."""
        mine = [p for p in (_resolved(x) for x in paths) if p and p.parent == self.root]
        if not mine:
            return
        in_use = {_resolved(Path(d.path)) for d in pipeline.documents() if d.path}
        for p in mine:
            if p not in in_use:
                with contextlib.suppress(OSError):
                    p.unlink(missing_ok=True)

    def sweep(self) -> None:
        """Remove the empty temporary files Gradio's upload route leaves behind."""
        now = time.time()
        try:
            entries = list(os.scandir(self.incoming))
        except OSError:
            return
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
                stale = now - st.st_mtime > _STALE_SECONDS
                if entry.is_file(follow_symlinks=False) and st.st_size == 0 and stale:
                    os.unlink(entry.path)
            except OSError:
                continue

    def _discard_incoming(self, src: Path) -> None:
        """Gradio's own copy of an upload lives in a hash folder under `.incoming`; drop it."""
        try:
            path = src.resolve()
            if path.is_relative_to(self.incoming) and path != self.incoming:
                path.unlink(missing_ok=True)
                if path.parent != self.incoming and not any(path.parent.iterdir()):
                    path.parent.rmdir()
        except OSError:
            pass


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except OSError:
        return None


def _same_bytes(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False
