"""The embedded backend: FAISS segments + one SQLite/FTS5 file, as atomic generations on disk.

The store folder (`gen-000001/`, named by the manifest) holds `chunks.sqlite`, updated in
place with rows versioned by generation (embeddings/chunk_table.py), immutable FAISS segment
files (`vectors.faiss`, `seg-*.faiss`) and the tombstone set of the current generation
(`deleted-*.npy`). A write adds one small segment and its rows, then swaps the manifest
(embeddings/generations.py), so a crash at any point leaves the previous generation
readable; segments are merged in a background thread (embeddings/segments.py). Chunk ids
come from a counter kept in the manifest and are never reused.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.chunk_table import ChunkTable
from embeddings.errors import IndexUnavailableError
from embeddings.faiss_vectors import IVF_THRESHOLD, FaissVectors
from embeddings.generations import (
    Generations,
    fsync_dir,
    rebuild_hint,
    remove_path,
    write_durably,
)
from embeddings.segment_merges import SegmentMerges
from embeddings.segments import MergePolicy, Segment, SegmentSet
from embeddings.store import Store
from embeddings.types import ChunkRecord, DateSourceFilter, Document, DocumentWrite

VECTORS = "vectors.faiss"
TABLE = "chunks.sqlite"


class FaissStore(SegmentMerges, Store):
    """One index folder: segments and the SQLite file loaded for search, written by adding."""

    kind = "faiss"

    def __init__(self, path: Path, *, dim: Callable[[], int], embedder_name: str) -> None:
        self.path = path
        self.location = str(path)
        self._dim = dim
        self._embedder_name = embedder_name
        self._lock = threading.RLock()
        self.generations = Generations(path)
        self.table: ChunkTable | None = None
        self.vectors: SegmentSet | None = None
        self.policy = MergePolicy()
        self.background_merge = True  # False: merges only when `merge()` is called
        self._dir: Path | None = None  # the store folder `table` was opened in
        self._merging: frozenset[str] = frozenset()
        self._merge_thread: threading.Thread | None = None
        self._merge_mutex = threading.Lock()
        self._load()

    # ---- lifecycle -----------------------------------------------------------------------

    def _load(self) -> None:
        manifest = self.generations.read()
        if manifest is None:
            self.generations.manifest = Generations.empty()
            # The width comes from the model, so an empty index loads it now rather than in
            # the middle of its first write.
            self._close_table()
            self.table, self._dir = ChunkTable.new(), None
            self.vectors = SegmentSet(self._dim(), [], np.zeros(0, np.int64))
            return
        self._open(manifest)

    def _open(self, manifest: dict[str, Any]) -> None:
        """Loads the generation `manifest` names, reusing segments already in memory."""
        store_dir = self.path / str(manifest.get("generation_dir"))
        legacy = "segments" not in manifest  # format 1: one vectors.faiss per generation folder
        entries: list[dict[str, Any]] = manifest.get("segments") or []
        if legacy:
            entries = [{"file": VECTORS, "lo": 0, "hi": int(manifest.get("next_id", 1))}]
        known = {s.name: s for s in self.vectors.segments} if self.vectors else {}
        if store_dir != self._dir:
            known = {}
        table = self.table if store_dir == self._dir else None
        try:
            segments = []
            for e in entries:
                seg = known.get(e["file"])
                if seg is None:
                    loaded = FaissVectors.load(store_dir / e["file"])
                    seg = Segment(e["file"], loaded, int(e["lo"]), int(e["hi"]))
                if "count" in e and seg.size != int(e["count"]):
                    raise ValueError(f"{e['file']} holds {seg.size} vectors, not {e['count']}")
                segments.append(seg)
            tombstones = np.zeros(0, np.int64)
            if manifest.get("deleted"):
                tombstones = np.load(store_dir / manifest["deleted"], allow_pickle=False)
            dim = int(manifest.get("dim") or (segments[0].vectors.dim if segments else 0))
            if any(s.vectors.dim != dim for s in segments):
                raise ValueError("segments of different widths")
            vectors = SegmentSet(dim, segments, tombstones)
            if table is None:
                table = ChunkTable.open(store_dir / TABLE)
            table.view(int(manifest.get("generation", 0)))
            n_chunks = table.count_chunks() if legacy else int(manifest.get("chunks", -1))
        except Exception as exc:  # faiss raises RuntimeError, sqlite DatabaseError, OSError...
            if table is not None and table is not self.table:
                table.close()
            raise IndexUnavailableError(
                f"index at {self.path} is damaged ({exc.__class__.__name__}); "
                f"{rebuild_hint(self.path)}"
            ) from None
        if n_chunks != len(vectors):
            raise IndexUnavailableError(
                f"index at {self.path} is damaged ({len(vectors)} vectors for {n_chunks} "
                f"chunks); {rebuild_hint(self.path)}"
            )
        if table is not self.table:
            self._close_table()
        self.generations.manifest = manifest
        self.table, self.vectors, self._dir = table, vectors, store_dir

    def _close_table(self) -> None:
        if self.table is not None:
            self.table.close()
            self.table = None

    def refresh(self) -> None:
        with self._lock:
            if not self.generations.changed():
                return
            manifest = self.generations.read()
            if manifest and _stamp(manifest) != _stamp(self.generations.manifest):
                self._open(manifest)

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        with self._lock, self.generations.writer():
            self.refresh()
            yield

    def close(self) -> None:
        thread = self._merge_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._lock:
            self._close_table()

    # ---- writing -------------------------------------------------------------------------

    def write(self, puts: Sequence[DocumentWrite], deletes: Sequence[str] = ()) -> None:
        with self.writer():
            self.prune()  # a killed writer's files first, so they never pile up
            manifest = self.generations.manifest
            generation = int(manifest.get("generation", 0)) + 1
            fresh = self._dir is None  # the first write creates the store folder
            store_dir = (
                self.path / f".tmp-gen-{generation:06d}-{os.getpid()}" if fresh else self._dir
            )
            assert store_dir is not None and self.vectors is not None
            if fresh:
                remove_path(store_dir)  # this process's own failed first write
                store_dir.mkdir(parents=True)
                table = ChunkTable.new(store_dir / TABLE)
            else:
                assert self.table is not None
                table = self.table
            next_id = int(manifest["next_id"])
            dead: list[int] = []
            new_ids: list[np.ndarray] = []
            new_vectors: list[np.ndarray] = []
            table.begin()
            try:
                table.migrate()
                table.rollback_after(generation - 1)
                for doc_id in [*deletes, *(p.document.doc_id for p in puts)]:
                    dead += table.remove_document(doc_id, generation)
                for put in puts:
                    table.put_document(put.document, put.content_hash, generation)
                    ids = np.arange(next_id, next_id + len(put.chunks), dtype=np.int64)
                    table.put_chunks(
                        (
                            (int(i), c.doc_id, c.ordinal, c.start, c.end, c.text)
                            for i, c in zip(ids, put.chunks, strict=True)
                        ),
                        generation,
                    )
                    new_ids.append(ids)
                    new_vectors.append(np.asarray(put.vectors, dtype=np.float32))
                    next_id += len(put.chunks)
                table.commit()  # invisible until the manifest names `generation`
            except BaseException:
                table.rollback()
                raise
            vectors = self._add_segment(
                store_dir, generation, fresh, new_ids, new_vectors, np.asarray(dead, np.int64)
            )
            if fresh:
                table.close()
                final = self.path / "gen-000001"
                remove_path(final)  # a killed first write's folder the manifest never named
                os.replace(store_dir, final)
                fsync_dir(self.path)
                store_dir = final
            self._commit(store_dir, vectors, generation=generation, next_id=next_id)
            if fresh:
                self._open(self.generations.manifest)
            self._maybe_merge()

    def _add_segment(
        self,
        store_dir: Path,
        generation: int,
        fresh: bool,
        new_ids: list[np.ndarray],
        new_vectors: list[np.ndarray],
        dead: np.ndarray,
    ) -> SegmentSet:
        """The vectors after a write: a new segment with the new vectors (and the newest
        segment's live ones, when it is small), the removed ids as tombstones."""
        assert self.vectors is not None
        current = self.vectors
        segments = list(current.segments)
        tombstones = np.union1d(current.tombstones, dead)
        ids = np.concatenate(new_ids) if new_ids else np.zeros(0, np.int64)
        vecs = np.vstack(new_vectors) if new_vectors else np.zeros((0, current.dim), np.float32)
        tail = segments[-1] if segments else None
        if (
            tail is not None
            and tail.size < self.policy.coalesce_below
            and tail.name not in self._merging
            and (len(ids) or len(dead))
        ):
            tail_ids, tail_vecs = tail.vectors._contents()
            live = ~np.isin(tail_ids, tombstones)
            tombstones = np.setdiff1d(tombstones, tail_ids)
            ids = np.concatenate([tail_ids[live], ids])
            vecs = np.vstack([tail_vecs[live], vecs])
            segments.pop()
        if len(ids) or (tail is not None and tail not in segments):
            dim = current.dim or int(vecs.shape[1])
            seg_vectors = FaissVectors(dim, ivf_threshold=IVF_THRESHOLD)
            seg_vectors.add(ids, vecs)
            name = VECTORS if fresh else f"seg-{generation:06d}.faiss"
            write_durably(store_dir, name, seg_vectors.save)
            lo, hi = (int(ids.min()), int(ids.max())) if len(ids) else (0, -1)
            segments.append(Segment(name, seg_vectors, lo, hi))
        return SegmentSet(current.dim or self._dim(), segments, tombstones)

    def _commit(self, store_dir: Path, vectors: SegmentSet, **fields: Any) -> None:
        """Writes the tombstones if they changed, swaps the manifest, drops what it no
        longer names. The caller holds the writer lock."""
        manifest = self.generations.manifest
        deleted = manifest.get("deleted")
        assert self.vectors is not None
        if not np.array_equal(vectors.tombstones, self.vectors.tombstones) or (
            deleted and not len(vectors.tombstones)
        ):
            deleted = None
            if len(vectors.tombstones):
                deleted = f"deleted-{uuid.uuid4().hex[:12]}.npy"
                write_durably(store_dir, deleted, lambda p: np.save(p, vectors.tombstones))
        self.generations.swap(
            {
                **fields,
                "generation_dir": store_dir.name,
                "dim": vectors.dim,
                "embedder": self._embedder_name,
                "segments": [s.entry() for s in vectors.segments],
                "deleted": deleted,
                "chunks": len(vectors),
            }
        )
        self.generations.changed()  # our own swap is no news to `refresh`
        self.vectors = vectors
        if self.table is not None and store_dir == self._dir:
            self.table.view(int(self.generations.manifest["generation"]))
        self.prune()

    def prune(self) -> None:
        """Removes files no manifest names any more and leftovers of killed writers and
        mergers. The caller holds the writer lock."""
        manifest = self.generations.manifest
        current = manifest.get("generation_dir")
        for p in self.path.iterdir():
            if (p.name.startswith("gen-") and p.name != current) or p.name.startswith(".tmp-gen-"):
                remove_path(p)
        if not current or not (self.path / current).is_dir():
            return
        named = {e["file"] for e in manifest.get("segments") or [{"file": VECTORS}]}
        named |= {manifest.get("deleted"), TABLE, f"{TABLE}-journal"}
        with self.generations.merge_lock(wait=False) as no_merger:
            for p in (self.path / current).iterdir():
                if p.name in named or (p.name.startswith(".tmp-merge-") and not no_merger):
                    continue
                remove_path(p)

    # ---- reading -------------------------------------------------------------------------

    @property
    def _table(self) -> ChunkTable:
        assert self.table is not None
        return self.table

    @property
    def dim(self) -> int | None:
        return self.vectors.dim if self.vectors else None

    def count(self) -> int:
        return len(self.vectors) if self.vectors else 0

    def count_documents(self) -> int:
        with self._lock:
            return self._table.count_documents()

    def updated_at(self) -> str | None:
        return self.generations.manifest.get("updated_at")

    def content_hashes(self) -> dict[str, str]:
        with self._lock:
            return self._table.content_hashes()

    def document(self, doc_id: str) -> Document | None:
        with self._lock:
            return self._table.document(doc_id)

    def documents(self) -> list[Document]:
        with self._lock:
            return self._table.documents()

    def sources(self) -> set[str]:
        with self._lock:
            return self._table.sources()

    def chunk_ids(self, doc_id: str) -> list[int]:
        with self._lock:
            return self._table.chunk_ids(doc_id)

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        with self._lock:
            return self._table.chunks(ids)

    def doc_dates(self, ids: Sequence[int]) -> dict[int, str | None]:
        with self._lock:
            return self._table.doc_dates(ids)

    def allowed_ids(self, flt: DateSourceFilter) -> list[int]:
        with self._lock:
            return self._table.allowed_ids(flt)

    def search(
        self,
        vector: np.ndarray,
        k: int,
        allowed: Sequence[int] | None = None,
        flt: DateSourceFilter | None = None,
    ) -> list[tuple[int, float]]:
        if flt:
            with self._lock:
                ids = set(self._table.allowed_ids(flt))
            allowed = list(ids if allowed is None else ids.intersection(allowed))
        # No lock: a SegmentSet is immutable and replaced whole, so a search never waits
        # for a write or a merge swap in this process.
        vectors = self.vectors
        return vectors.search(vector, k, allowed) if vectors else []

    def lexical_search(
        self, query: str, k: int, flt: DateSourceFilter | None = None
    ) -> list[tuple[int, float]]:
        with self._lock:
            return self._table.lexical_search(query, k, flt)


def _stamp(manifest: dict[str, Any]) -> tuple[int, int]:
    """Identity of a committed manifest: merges swap it without a new generation."""
    return int(manifest.get("generation", 0)), int(manifest.get("commit", 0))
