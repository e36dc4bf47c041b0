"""Background merges of the FAISS store's segments (the policy is `segments.MergePolicy`).

A merge snapshots the segments under the store's lock, builds the merged segment with no
lock held (readers and writers go on), then takes the writer lock only to check its inputs
are still current, rename its file into place, purge the rows it made unreachable and swap
the manifest. Writes that landed meanwhile stay: their segments are kept beside the merged
one and their tombstones are kept. A kill at any point leaves the manifest naming the old
segments; the `.tmp-merge-*` or unnamed `seg-*` file left behind goes with the next write.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.chunk_table import ChunkTable
from embeddings.generations import Generations, fsync_file
from embeddings.segments import MergePolicy, Segment, SegmentSet, fold


class SegmentMerges:
    """The merging half of `FaissStore` (a mixin: it works on the store's own state)."""

    path: Path
    generations: Generations
    table: ChunkTable | None
    vectors: SegmentSet | None
    policy: MergePolicy
    background_merge: bool
    _lock: threading.RLock
    _dir: Path | None
    _merging: frozenset[str]
    _merge_thread: threading.Thread | None
    _merge_mutex: threading.Lock

    def refresh(self) -> None: ...

    def prune(self) -> None: ...

    def _commit(self, store_dir: Path, vectors: SegmentSet, **fields: Any) -> None: ...

    def _maybe_merge(self) -> None:
        """Starts a background merge when the policy says one is due. Not a daemon thread:
        `rag ingest` finishes the merge it started before the process exits."""
        assert self.vectors is not None
        if not self.background_merge or not self.policy.plan(
            self.vectors.segments, len(self.vectors.tombstones)
        ):
            return
        if self._merge_thread is not None and self._merge_thread.is_alive():
            return
        self._merge_thread = threading.Thread(target=self._merge_in_background, name="rag-merge")
        self._merge_thread.start()

    def _merge_in_background(self) -> None:
        """A failed merge changes nothing (its output is never named); the next write's
        policy check tries again. One line in the log, not a thread traceback."""
        try:
            self.merge(wait=False)
        except Exception as exc:
            logging.getLogger(__name__).warning(
                "background merge of %s failed (%s: %s); the index is unchanged",
                self.path,
                exc.__class__.__name__,
                exc,
            )

    def merge(self, names: Sequence[str] | None = None, *, wait: bool = True) -> bool:
        """Folds segments (`names`, default: what the policy says is due) into one, without
        holding the locks while it builds; True when a merge was committed. Readers and
        writers go on meanwhile; the swap at the end takes the writer lock briefly, and
        keeps whatever was written during the merge."""
        if not self._merge_mutex.acquire(blocking=wait):
            return False
        try:
            with self.generations.merge_lock(wait=wait) as got:
                return got and self._merge(names)
        finally:
            self._merge_mutex.release()

    def _merge(self, names: Sequence[str] | None) -> bool:
        with self._lock:
            self.refresh()
            snapshot, store_dir = self.vectors, self._dir
            snap_generation = int(self.generations.manifest.get("generation", 0))
            if snapshot is None or store_dir is None:
                return False
            plan = list(names or self.policy.plan(snapshot.segments, len(snapshot.tombstones)))
            inputs = [s for s in snapshot.segments if s.name in plan]
            if not inputs or (len(inputs) == 1 and not len(snapshot.tombstones)):
                return False
            self._merging = frozenset(s.name for s in inputs)
        tmp = store_dir / f".tmp-merge-{os.getpid()}-{uuid.uuid4().hex[:8]}.faiss"
        try:
            merged, dropped = _fold(inputs, snapshot.tombstones)
            merged.save(tmp)
            fsync_file(tmp)
            with self._lock, self.generations.writer():
                self.refresh()
                current = self.vectors
                if current is None or self._dir != store_dir:
                    return False
                if any(current.segment_of(s.name) is not s for s in inputs):
                    return False  # another process merged or rewrote them first
                self.prune()  # a killed writer's files first, so they never pile up
                commit = int(self.generations.manifest.get("commit", 0)) + 1
                name = f"seg-{snap_generation:06d}-m{commit:06d}.faiss"
                os.replace(tmp, store_dir / name)
                ids = merged.ids()
                seg = Segment(name, merged, int(ids.min(initial=0)), int(ids.max(initial=-1)))
                first = current.segments.index(inputs[0])
                kept = [s for s in current.segments if s not in inputs]
                segments = [*kept[:first], seg, *kept[first:]] if len(merged) else kept
                tombstones = np.setdiff1d(current.tombstones, dropped)
                assert self.table is not None
                self.table.begin()
                try:  # rows removed by the snapshot are gone from the merged segment too
                    self.table.purge(snap_generation)
                    self.table.commit()
                except BaseException:
                    self.table.rollback()
                    raise
                self._commit(store_dir, SegmentSet(current.dim, segments, tombstones))
                return True
        finally:
            self._merging = frozenset()
            tmp.unlink(missing_ok=True)


def _fold(inputs: Sequence[Segment], tombstones: np.ndarray) -> tuple[Any, np.ndarray]:
    """`segments.fold` with the store module's threshold (tests lower it)."""
    from embeddings.faiss_store import IVF_THRESHOLD, FaissVectors

    return fold(inputs, tombstones, lambda dim: FaissVectors(dim, ivf_threshold=IVF_THRESHOLD))
