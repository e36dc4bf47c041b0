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

from embeddings import dedup as dedup_
from embeddings.chunk_table import ChunkTable
from embeddings.chunking import chunk_document
from embeddings.embedder import Embedder
from embeddings.errors import IndexUnavailableError
from embeddings.generations import MANIFEST, rebuild_hint
from embeddings.loaders import Skipped
from embeddings.store import Store, StoreConfig, open_store
from embeddings.types import (
    Chunk,
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
    # doc_id -> the canonical article it copies (stored without chunks; see embeddings.dedup)
    duplicates: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped "
            f"({self.chunks_added} chunks embedded)"
        )
        if self.duplicates:
            text += f"; {len(self.duplicates)} merged as duplicates (see rag list)"
        return "\n".join([text, *self.notes])


def content_hash(doc: Document) -> str:
    payload = json.dumps([doc.title, doc.date, doc.source, doc.url, doc.text])
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


class Index:
    """One index (a directory, or a Milvus collection pair) behind the `Store` contract."""

    def __init__(
        self,
        path: str | Path,
        embedder: Embedder,
        config: StoreConfig | None = None,
        *,
        dedup: bool | None = None,
    ) -> None:
        """`config` defaults to the environment (`RAG_STORE`, `RAG_MILVUS_URI`, ...), `dedup`
        (merge copies of a story already indexed) to the config's (`RAG_DEDUP`, on)."""
        self.path = Path(path).expanduser()
        self.embedder = embedder
        self.config = config or StoreConfig.from_env()
        self.dedup = self.config.dedup if dedup is None else dedup
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
        with self._lock:
            doc = self.store.document(doc_id)
            links = self._links() if doc is not None else {}
        if doc is None or doc.doc_id not in links:
            return doc
        return dataclasses.replace(doc, duplicate_of=links[doc.doc_id])

    def documents(self) -> list[Document]:
        """Every article, copies of a story included (with `duplicate_of` set)."""
        with self._lock:
            docs, links = self.store.documents(), self._links()
        return [
            dataclasses.replace(d, duplicate_of=links[d.doc_id]) if d.doc_id in links else d
            for d in docs
        ]

    def copies(self, doc_ids: Iterable[str]) -> dict[str, list[Document]]:
        """canonical doc_id -> the other outlets' copies of that story, for citations."""
        with self._lock:
            links = self._links(list(set(doc_ids)))
            out: dict[str, list[Document]] = {}
            for copy_id, canonical in sorted(links.items()):
                doc = self.store.document(copy_id)
                if doc is not None:
                    out.setdefault(canonical, []).append(
                        dataclasses.replace(doc, duplicate_of=canonical)
                    )
        return out

    def _table(self) -> ChunkTable | None:
        """The FAISS backend's table; duplicate detection is FAISS-only for now."""
        from embeddings.faiss_store import FaissStore

        return self.store.table if isinstance(self.store, FaissStore) else None

    def _links(self, doc_ids: Sequence[str] | None = None) -> dict[str, str]:
        table = self._table()
        return table.duplicate_links(doc_ids) if table is not None else {}

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
        with self._lock:
            names = self.store.sources()
        return sorted(names, key=lambda s: (s.casefold(), s))

    def _stored_sources(self, flt: DateSourceFilter) -> DateSourceFilter:
        """`flt` with its source names as stored: "cnn" finds articles from "CNN"."""
        if not flt.sources:
            return flt
        # No fallback on failure: Milvus keys articles by a digest of the doc id, so listing
        # them works for any id, and a store that cannot list sources cannot search either.
        wanted = {s.strip().casefold() for s in flt.sources}
        stored = tuple(s for s in self.sources() if s.strip().casefold() in wanted)
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
        dedup: bool | None = None,
    ) -> IngestReport:
        """Add new articles, replace changed ones, leave unchanged ones alone; a copy of a
        story already indexed (or earlier in the batch) is stored without chunks, pointing
        at its canonical article (`dedup`: default `self.dedup`)."""
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
                todo.append((dataclasses.replace(doc, duplicate_of=None), digest))
            if not todo:
                return report
            if self.dedup if dedup is None else dedup:
                todo = self._mark_duplicates(todo, report)
            fresh = [(doc, digest) for doc, digest in todo if doc.duplicate_of is None]
            vectors = self._embed([doc for doc, _ in fresh], progress=progress)
            report.chunks_added = sum(len(chunks) for chunks, _ in vectors.values())
            puts = [
                DocumentWrite(doc, digest, *vectors[doc.doc_id])
                if doc.duplicate_of is None
                else self._copy_write(doc, digest)
                for doc, digest in todo
            ]
            self.store.write(puts)
        return report

    def _embed(
        self, docs: Sequence[Document], *, progress: bool = False
    ) -> dict[str, tuple[tuple[Chunk, ...], np.ndarray]]:
        """doc_id -> (chunks, one vector per chunk), embedded in one batch."""
        per_doc = [
            tuple(
                chunk_document(
                    doc,
                    count_tokens=self.embedder.count_tokens,
                    token_starts=getattr(self.embedder, "token_starts", None),
                )
            )
            for doc in docs
        ]
        texts = [c.text for chunks in per_doc for c in chunks]
        dim = self.store.dim or self.embedder.dim
        vectors: np.ndarray = (
            self.embedder.encode(texts, progress=progress, documents=True)
            if texts
            else np.zeros((0, dim), np.float32)
        )
        out, start = {}, 0
        for doc, chunks in zip(docs, per_doc, strict=True):
            out[doc.doc_id] = (chunks, vectors[start : start + len(chunks)])
            start += len(chunks)
        return out

    def _copy_write(self, doc: Document, digest: str | None = None) -> DocumentWrite:
        """A copy of a story: the article and its text, no chunks, no vectors."""
        dim = self.store.dim or self.embedder.dim
        return DocumentWrite(doc, digest or content_hash(doc), (), np.zeros((0, dim), "float32"))

    def _mark_duplicates(
        self, todo: list[tuple[Document, str]], report: IngestReport
    ) -> list[tuple[Document, str]]:
        """`todo` with `duplicate_of` set on copies, plus the stored copies of articles in
        `todo` whose status changes (so every link points at a canonical that holds it)."""
        table = self._table()
        if table is None:
            report.notes.append(
                f"duplicate stories are detected with the FAISS store only for now; the "
                f"{self.store.kind} store indexes every article (RAG_DEDUP=0 hides this note)"
            )
            return todo
        marked, report.duplicates = dedup_.mark_duplicates(todo, table, content_hash)
        return marked

    def delete(self, doc_id: str) -> bool:
        """Whether `doc_id` existed; see `delete_many`."""
        return bool(self.delete_many([doc_id]))

    def delete_many(self, doc_ids: Iterable[str]) -> list[str]:
        """Deletes the articles in one store write (one FAISS generation) and returns those
        that existed. Deleting a canonical article promotes its longest copy not deleted too
        (chunked and embedded now) and points the other copies at it, so every outlet's
        article stays findable."""
        with self._lock, self.store.writer():
            gone = [d for d in dict.fromkeys(doc_ids) if self.store.document(d) is not None]
            if not gone:
                return []
            doomed = set(gone)
            heirs: list[Document] = []
            puts: list[DocumentWrite] = []
            for copies in self.copies(gone).values():
                copies = [d for d in copies if d.doc_id not in doomed]
                if not copies:
                    continue
                heir = max(copies, key=lambda d: (len(d.text), d.doc_id))
                heirs.append(dataclasses.replace(heir, duplicate_of=None))
                puts += [
                    self._copy_write(dataclasses.replace(d, duplicate_of=heir.doc_id))
                    for d in copies
                    if d.doc_id != heir.doc_id
                ]
            vectors = self._embed(heirs) if heirs else {}
            puts = [DocumentWrite(h, content_hash(h), *vectors[h.doc_id]) for h in heirs] + puts
            self.store.write(puts, gone)
            return gone
