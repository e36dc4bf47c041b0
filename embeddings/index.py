"""The index façade: articles in (chunk, embed, replace), chunks out (dense, BM25, filters).

Everything about where chunks live goes through the `Store` contract (embeddings/store.py):
FAISS + SQLite generations on disk by default, or Milvus with `RAG_STORE=milvus`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embeddings.chunking import chunk_document
from embeddings.embedder import Embedder
from embeddings.errors import IndexUnavailableError
from embeddings.generations import MANIFEST, rebuild_hint
from embeddings.loaders import Skipped
from embeddings.store import Store, StoreConfig, open_store
from embeddings.types import (
    ChunkRecord,
    DateSourceFilter,
    Document,
    DocumentWrite,
    IndexStats,
)

__all__ = [
    "MANIFEST",
    "ChunkRecord",
    "DateSourceFilter",
    "Index",
    "IndexStats",
    "IngestReport",
    "content_hash",
    "rebuild_hint",
]


REFRESH_TRIES = 3


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks_added: int = 0

    def summary(self) -> str:
        text = (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped "
            f"({self.chunks_added} chunks embedded)"
        )
        return text


def content_hash(doc: Document) -> str:
    payload = json.dumps([doc.title, doc.date, doc.source, doc.url, doc.text])
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


class Index:
    """One index (a directory, or a Milvus collection pair) behind the `Store` contract."""

    def __init__(
        self, path: str | Path, embedder: Embedder, config: StoreConfig | None = None
    ) -> None:
        """`config` defaults to the environment (`RAG_STORE`, `RAG_MILVUS_URI`, ...)."""
        self.path = Path(path).expanduser()
        self.embedder = embedder
        self.config = config or StoreConfig.from_env()
        self._lock = threading.RLock()
        self.store: Store = open_store(
            self.config, self.path, dim=lambda: embedder.dim, embedder_name=embedder.name
        )

    def refresh(self) -> None:
        """Pick up changes written by another process (e.g. `rag ingest` beside the UI).

        A writer may commit and prune the very generation this reader is opening, between
        its manifest read and the open: when that fails and the manifest has moved since,
        the new one is read (a few times); a failure with an unmoved manifest is damage."""
        with self._lock:
            for attempt in range(REFRESH_TRIES):
                before = self._manifest_stamp()
                try:
                    self.store.refresh()
                    return
                except IndexUnavailableError:
                    if attempt + 1 == REFRESH_TRIES or self._manifest_stamp() == before:
                        raise

    def _manifest_stamp(self) -> tuple[int, int, int] | None:
        """Identity of the FAISS store's manifest file (each commit replaces it)."""
        generations = getattr(self.store, "generations", None)
        if generations is None:
            return None
        try:
            st = (Path(generations.path) / MANIFEST).stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def close(self) -> None:
        self.store.close()

    # ---- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.store.count()

    @property
    def generation(self) -> int | None:
        """The committed generation of the FAISS backend (crash-safety checks); None for a
        store without generations."""
        generations = getattr(self.store, "generations", None)
        return None if generations is None else int(generations.manifest.get("generation", 0))

    @property
    def db(self) -> sqlite3.Connection:
        """The SQLite connection of the FAISS backend (for scripts; not part of the seam)."""
        from embeddings.faiss_store import FaissStore

        if not isinstance(self.store, FaissStore) or self.store.table is None:
            raise AttributeError(f"the {self.store.kind} store has no SQLite connection")
        return self.store.table.db

    def stats(self) -> IndexStats:
        with self._lock:
            return IndexStats(
                self.store.count_documents(),
                self.store.count(),
                self.store.updated_at(),
                self.store.location,
            )

    def document(self, doc_id: str) -> Document | None:
        return self.store.document(doc_id)

    def documents(self) -> list[Document]:
        return self.store.documents()

    def chunk_ids(self, doc_id: str) -> list[int]:
        """Ids of an article's chunks, in order (empty for an unknown article)."""
        return self.store.chunk_ids(doc_id)

    def chunk_counts(self) -> dict[str, int]:
        """Chunks per article (`rag list`)."""
        with self._lock:
            return dict(self.db.execute("SELECT doc_id, count(*) FROM chunks GROUP BY doc_id"))

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        return self.store.chunks(list(ids)) if ids else {}

    def sources(self) -> list[str]:
        """The distinct source names of the indexed articles, sorted."""
        from embeddings.faiss_store import FaissStore

        with self._lock:
            if isinstance(self.store, FaissStore) and self.store.table is not None:
                rows = self.db.execute(
                    "SELECT DISTINCT source FROM documents WHERE source IS NOT NULL"
                ).fetchall()
                names = {r[0] for r in rows if r[0]}
            else:
                names = {d.source for d in self.store.documents() if d.source}
        return sorted(names, key=lambda s: (s.casefold(), s))

    def _stored_sources(self, flt: DateSourceFilter) -> DateSourceFilter:
        """`flt` with its source names as stored: "cnn" finds articles from "CNN"."""
        if not flt.sources:
            return flt
        wanted = {s.strip().casefold() for s in flt.sources}
        try:
            names = self.sources()
        except IndexUnavailableError:  # milvus-lite cannot list some ids; match as given
            return flt
        stored = tuple(s for s in names if s.strip().casefold() in wanted)
        return dataclasses.replace(flt, sources=stored or flt.sources)

    def allowed_ids(self, flt: DateSourceFilter) -> list[int] | None:
        """Chunk ids passing the filter, or None when there is no filter."""
        return self.store.allowed_ids(self._stored_sources(flt)) if flt else None

    def doc_dates(self, ids: Iterable[int]) -> dict[int, str | None]:
        ids = list(ids)
        return self.store.doc_dates(ids) if ids else {}

    def dense_search(
        self,
        vector: np.ndarray,
        k: int,
        allowed: Sequence[int] | None = None,
        *,
        flt: DateSourceFilter | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k by cosine; pass `flt` rather than `allowed` to filter inside the store."""
        return self.store.search(vector, k, allowed, self._stored_sources(flt) if flt else flt)

    def lexical_search(
        self, query: str, k: int, flt: DateSourceFilter | None = None
    ) -> list[tuple[int, float]]:
        """BM25 over chunk text; scores are positive, higher is better."""
        return self.store.lexical_search(query, k, self._stored_sources(flt) if flt else flt)

    # ---- writing -------------------------------------------------------------------------

    def ingest(
        self,
        documents: Iterable[Document],
        *,
        progress: bool = False,
        skipped: Sequence[Skipped] = (),
    ) -> IngestReport:
        """Add new articles, replace changed ones, leave unchanged ones alone."""
        report = IngestReport(skipped=list(skipped))
        with self._lock, self.store.writer():
            existing = self.store.content_hashes()
            seen: set[str] = set()
            todo: list[tuple[Document, str]] = []
            for doc in documents:
                if doc.doc_id in seen:
                    continue
                seen.add(doc.doc_id)
                digest = content_hash(doc)
                if existing.get(doc.doc_id) == digest:
                    report.unchanged.append(doc.doc_id)
                    continue
                (report.updated if doc.doc_id in existing else report.added).append(doc.doc_id)
                todo.append((doc, digest))
            if not todo:
                return report
            per_doc = [
                tuple(
                    chunk_document(
                        doc,
                        count_tokens=self.embedder.count_tokens,
                        token_starts=getattr(self.embedder, "token_starts", None),
                    )
                )
                for doc, _ in todo
            ]
            texts = [c.text for chunks in per_doc for c in chunks]
            vectors = self.embedder.encode(texts, progress=progress, documents=True)
            report.chunks_added = len(texts)
            puts, start = [], 0
            for (doc, digest), chunks in zip(todo, per_doc, strict=True):
                end = start + len(chunks)
                puts.append(DocumentWrite(doc, digest, chunks, vectors[start:end]))
                start = end
            self.store.write(puts)
        return report

    def delete(self, doc_id: str) -> bool:
        with self._lock, self.store.writer():
            if self.store.document(doc_id) is None:
                return False
            self.store.write([], [doc_id])
            return True
