"""Plain data records passed between loading, chunking and indexing."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Document:
    """One article. `text` is the body only: metadata tokens are stripped by the loader."""

    doc_id: str
    title: str
    text: str
    date: str | None = None  # ISO "YYYY-MM-DD"
    source: str | None = None
    url: str | None = None
    path: str | None = None  # file it came from, for messages

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Chunk:
    """A slice of one article; `start`/`end` are character offsets into `Document.text`."""

    doc_id: str
    text: str
    start: int
    end: int
    ordinal: int  # position of the chunk within its article
