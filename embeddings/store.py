"""The store seam: the one contract `Index` talks to, and the factory that picks a backend.

Modelled on txtai's `ann/base.py` (a complete backend contract) and `ann/dense/factory.py`
(the backend chosen by configuration). txtai's ANN contract holds ids and vectors only, with
content in a separate database; ours also covers articles, chunk text, BM25 and date/source
filters, because the Milvus backend keeps all of them in Milvus so that API replicas hold no
index state. Backends:

- `faiss` (default, `embeddings.faiss_store`): FAISS vectors + SQLite/FTS5 in an index
  directory, written as atomic generations; one machine, any number of reader processes.
- `milvus` (`embeddings.milvus_store`): one Milvus collection of chunks (text, metadata,
  dense vector, BM25 term weights that the store scores with collection-wide IDF), one of
  articles and one of term counts; a milvus-lite file on one machine or a Milvus server /
  Zilliz URI shared by several API replicas.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embeddings.types import ChunkRecord, DateSourceFilter, Document, DocumentWrite

STORES = ("faiss", "milvus")


@dataclass(frozen=True)
class StoreConfig:
    """Which backend holds the index, and where (`RAG_STORE`, `RAG_MILVUS_URI`, ...)."""

    kind: str = "faiss"
    milvus_uri: str | None = None  # None: a milvus-lite file `milvus.db` in the index folder
    milvus_token: str | None = None  # "user:password" or an API key, for a secured server
    milvus_collection: str = "rag"  # prefix: `<prefix>_chunks` and `<prefix>_documents`
    dedup: bool = True  # merge copies of one story at ingest (`RAG_DEDUP=0`: index every copy)

    def __post_init__(self) -> None:
        if self.kind not in STORES:
            from embeddings.errors import IndexUnavailableError

            raise IndexUnavailableError(
                f"unknown store {self.kind!r}: RAG_STORE must be one of {', '.join(STORES)}"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StoreConfig:
        env = os.environ if env is None else env
        return cls(
            kind=(env.get("RAG_STORE") or "faiss").strip().lower(),
            milvus_uri=env.get("RAG_MILVUS_URI") or None,
            milvus_token=env.get("RAG_MILVUS_TOKEN") or None,
            milvus_collection=env.get("RAG_MILVUS_COLLECTION") or "rag",
            dedup=(env.get("RAG_DEDUP") or "1").strip().lower() not in {"0", "off", "false", "no"},
        )


class Store(ABC):
    """Articles, their chunks, one vector per chunk, and search over them.

    Chunk ids are int64, assigned by the store on `write` and never reused. Dense scores
    are inner products of normalised vectors (cosine); lexical scores are BM25, positive,
    higher is better. Callers serialise writers with `writer()`; reads are thread-safe.
    """

    kind: str
    location: str  # shown in stats and messages

    # ---- lifecycle -----------------------------------------------------------------------

    @abstractmethod
    def refresh(self) -> None:
        """Make changes committed by other processes visible (a no-op for a shared server)."""

    @abstractmethod
    def writer(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive access for one read-modify-write; sees the newest committed state."""

    @abstractmethod
    def write(self, puts: Sequence[DocumentWrite], deletes: Sequence[str] = ()) -> None:
        """Replace the articles in `puts` (old chunks go), then delete `deletes`.

        All or nothing for FAISS (a new generation); for Milvus, ordered so that a crash
        leaves each article either old or new, never without chunks (see milvus_store)."""

    @abstractmethod
    def close(self) -> None: ...

    # ---- counts and articles -------------------------------------------------------------

    @property
    @abstractmethod
    def dim(self) -> int | None:
        """Vector width, None while the store is empty and has never been written."""

    @abstractmethod
    def count(self) -> int:
        """Number of chunks (= vectors)."""

    @abstractmethod
    def count_documents(self) -> int: ...

    @abstractmethod
    def updated_at(self) -> str | None: ...

    @abstractmethod
    def content_hashes(self) -> dict[str, str]:
        """doc_id -> content hash of every article, to skip unchanged ones on re-ingest."""

    @abstractmethod
    def document(self, doc_id: str) -> Document | None: ...

    @abstractmethod
    def documents(self) -> list[Document]:
        """Every article, newest first, then by title."""

    @abstractmethod
    def sources(self) -> set[str]:
        """The distinct non-empty source names of the live articles, without reading their
        text: source filters map names to their stored spelling on every search."""

    # ---- chunks and search ---------------------------------------------------------------

    @abstractmethod
    def chunk_ids(self, doc_id: str) -> list[int]: ...

    @abstractmethod
    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]: ...

    @abstractmethod
    def doc_dates(self, ids: Sequence[int]) -> dict[int, str | None]: ...

    @abstractmethod
    def allowed_ids(self, flt: DateSourceFilter) -> list[int]:
        """Ids of the chunks whose article passes a (non-empty) filter."""

    @abstractmethod
    def search(
        self,
        vector: np.ndarray,
        k: int,
        allowed: Sequence[int] | None = None,
        flt: DateSourceFilter | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k chunks by inner product, restricted to `allowed` ids and/or a filter."""

    @abstractmethod
    def lexical_search(
        self, query: str, k: int, flt: DateSourceFilter | None = None
    ) -> list[tuple[int, float]]:
        """Top-k chunks by BM25 over their text, best first."""


def open_store(
    config: StoreConfig, path: Path, *, dim: Callable[[], int], embedder_name: str
) -> Store:
    """The backend named by `config`; `dim` is called only when an empty store needs it."""
    if config.kind == "milvus":
        from embeddings.milvus_store import MilvusStore

        return MilvusStore(config, path)
    from embeddings.faiss_store import FaissStore

    return FaissStore(path, dim=dim, embedder_name=embedder_name)
