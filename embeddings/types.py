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
    # Set on a copy of a story already indexed (embeddings/dedup.py): the canonical article's
    # doc_id. A copy keeps its text but has no chunks, so retrieval sees the story once.
    duplicate_of: str | None = None

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


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk with the metadata of its article, as retrieval returns it."""

    id: int
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    title: str
    date: str | None
    source: str | None
    url: str | None


@dataclass(frozen=True)
class IndexStats:
    documents: int
    chunks: int
    updated_at: str | None
    path: str


@dataclass(frozen=True)
class DateSourceFilter:
    """Restricts search to articles by date range (inclusive, ISO) and source names.

    `as_of` drops articles dated after that day (undated ones stay: nothing shows they
    came later), while `date_to` keeps only dated articles up to that day.
    """

    date_from: str | None = None
    date_to: str | None = None
    sources: tuple[str, ...] = ()
    as_of: str | None = None

    def __bool__(self) -> bool:
        return bool(self.date_from or self.date_to or self.sources or self.as_of)


@dataclass(frozen=True)
class DocumentWrite:
    """One article to (re)place in a store: its chunks in order and one vector per chunk.

    `vectors` is a float32 array of shape (len(chunks), dim); the store assigns chunk ids.
    """

    document: Document
    content_hash: str
    chunks: tuple[Chunk, ...]
    vectors: Any  # np.ndarray; typed loosely so this module stays free of numpy
