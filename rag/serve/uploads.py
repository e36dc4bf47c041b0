"""JSON articles sent to POST /v1/documents. Uploaded files take the UI's path instead
(`rag.ui.uploads.UploadStore`: same folder, names, limits and cleanup)."""

from __future__ import annotations

from typing import Any

from embeddings.loaders import derive_title, doc_id_problem, make_doc_id, normalize_date
from embeddings.types import Document
from rag.errors import IngestError


def to_document(record: dict[str, Any], n: int) -> Document:
    """A JSON article (`text` required; `title`, `date`, `source`, `url`, `doc_id`
    optional), normalised as the JSON loader does. `n` numbers it in messages."""
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise IngestError(f"documents[{n}] has no text")
    text = text.strip()
    title = record.get("title")
    doc_id = record.get("doc_id")
    if doc_id not in (None, ""):
        problem = doc_id_problem(doc_id)
        if problem:
            raise IngestError(f"documents[{n}]: {problem}")
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
