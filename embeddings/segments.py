"""The vectors of one generation: immutable FAISS segments searched together, minus tombstones.

Why segments: the store used to rewrite its whole FAISS file (and SQLite file) on every
write — 0.34 s and ~0.4 GB at 250,000 vectors, ~1.5 GB at a million. Now a write adds one
small segment (exact `IndexFlatIP`, the new vectors only) and a deletion adds ids to a
tombstone set; search asks every segment for its top k, with tombstoned ids excluded by an
`IDSelector`, and keeps the best k overall, which is exactly the top k of one index holding
the live vectors (an IVF base aside, whose approximation is unchanged). Merges (`plan`)
fold segments together in the background, as Lucene and Milvus do, so a long trickle of
writes does not leave hundreds of segments; they drop tombstoned vectors as they go.

Measured by `python -m evals.segment_bench --chunks 1000000` (README, The index on disk), on
a busy 2-core machine: 10 articles commit in 0.06 s (median; slowest 0.19 s) writing at most
7.9 MB; with 21 segments and 1,250 tombstones a query took 22.3 ms p50 at recall@10 0.984,
the million-vector IVF base alone 23.7 ms in the same run.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import faiss
import numpy as np


class Vectors(Protocol):
    """What a segment holds (`embeddings.faiss_store.FaissVectors`)."""

    dim: int
    index: faiss.Index

    @property
    def ivf(self) -> faiss.IndexIVF | None: ...

    def ids(self) -> np.ndarray: ...

    def _nprobe(self) -> int: ...

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Segment:
    """One immutable FAISS file named by the manifest; `lo`..`hi` bound its ids."""

    name: str
    vectors: Any  # Vectors; Any so FaissVectors' concrete attributes stay reachable
    lo: int
    hi: int

    @property
    def size(self) -> int:
        return len(self.vectors)

    def entry(self) -> dict[str, Any]:
        return {"file": self.name, "count": self.size, "lo": self.lo, "hi": self.hi}


@dataclass(frozen=True)
class MergePolicy:
    """When segments are folded together.

    - A write folds the newest segment into its own when that one holds fewer than
      `coalesce_below` vectors: a trickle of one-article writes then keeps one small tail
      segment (a write rewrites at most ~3 MB of it) instead of a segment per write.
    - Past `max_segments` segments a merge folds all but the largest (the base) together;
      the base too when the others hold `base_share` of it or more, or when tombstones are
      `deleted_share` of all vectors. Rebuilding a million-vector base copies 1.5 GB, so it
      happens once the others reach a tenth of it, not on every merge.
    """

    coalesce_below: int = 2_000
    max_segments: int = 10
    base_share: float = 0.1
    deleted_share: float = 0.2

    def plan(self, segments: Sequence[Segment], tombstones: int) -> list[str]:
        """Names of the segments a merge should fold together now (empty: none is due)."""
        if len(segments) < 2 and not tombstones:
            return []
        total = sum(s.size for s in segments)
        if total and tombstones >= self.deleted_share * total:
            return [s.name for s in segments]
        if len(segments) <= self.max_segments:
            return []
        base = max(segments, key=lambda s: s.size)
        rest = [s for s in segments if s is not base]
        if sum(s.size for s in rest) >= self.base_share * base.size:
            return [s.name for s in segments]
        return [s.name for s in rest]


class SegmentSet:
    """The segments and tombstones one manifest names; immutable once built."""

    def __init__(self, dim: int, segments: Sequence[Segment], tombstones: np.ndarray) -> None:
        self.dim = dim
        self.segments = tuple(segments)
        self.tombstones = np.unique(np.asarray(tombstones, dtype=np.int64))
        self._dead = set(self.tombstones.tolist())
        # One selector for every search of this generation: building it costs O(tombstones).
        self._not_dead: Any = None
        if len(self.tombstones):
            self._batch = faiss.IDSelectorBatch(self.tombstones)
            self._not_dead = faiss.IDSelectorNot(self._batch)

    def __len__(self) -> int:
        return sum(s.size for s in self.segments) - len(self.tombstones)

    @property
    def ivf(self) -> faiss.IndexIVF | None:
        """The largest segment's IVF layout, if it has one (tests and benchmarks)."""
        base = self.base
        return base.vectors.ivf if base is not None else None

    @property
    def base(self) -> Segment | None:
        return max(self.segments, key=lambda s: s.size) if self.segments else None

    def ids(self) -> np.ndarray:
        """Every live id (for consistency checks: reads every segment)."""
        parts = [s.vectors.ids() for s in self.segments]
        ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return ids[~np.isin(ids, self.tombstones)]

    def segment_of(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def search(
        self, query: np.ndarray, k: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        """The best k live vectors by inner product over every segment (restricted to
        `allowed` when given)."""
        if k <= 0 or not self.segments:
            return []
        selector: Any = self._not_dead
        keep: Any = None
        if allowed is not None:
            wanted = np.asarray(allowed, dtype=np.int64)
            if len(self.tombstones):
                wanted = wanted[~np.isin(wanted, self.tombstones)]
            if not len(wanted):
                return []
            keep = faiss.IDSelectorBatch(wanted)
            selector = keep
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        found: list[tuple[float, int]] = []
        for seg in self.segments:
            index = seg.vectors.index
            if index.ntotal == 0:
                continue
            sel = selector
            if sel is self._not_dead and sel is not None and not self._dead_in(seg):
                sel = None  # no tombstone falls in this segment's id range
            params: Any = None
            if seg.vectors.ivf is not None:
                params = faiss.SearchParametersIVF(sel=sel, nprobe=seg.vectors._nprobe())  # type: ignore[call-arg]
            elif sel is not None:
                params = faiss.SearchParameters(sel=sel)  # type: ignore[call-arg]
            scores, ids = index.search(q, min(k, index.ntotal), params=params)
            found.extend(
                (float(s), int(i)) for s, i in zip(scores[0], ids[0], strict=True) if i != -1
            )
        best = heapq.nlargest(k, found)
        return [(i, s) for s, i in best]

    def _dead_in(self, seg: Segment) -> bool:
        lo = int(np.searchsorted(self.tombstones, seg.lo, "left"))
        return lo < len(self.tombstones) and int(self.tombstones[lo]) <= seg.hi


def fold(
    inputs: Sequence[Segment], tombstones: np.ndarray, new: Callable[[int], Any]
) -> tuple[Any, np.ndarray]:
    """One segment holding the live vectors of `inputs` (`new(dim)` makes an empty one),
    and the tombstones it dropped.

    An IVF base is copied and added to, its trained lists kept (training a million
    vectors' lists takes minutes; `FaissVectors` retrains once it has grown fourfold);
    flat segments are concatenated."""
    base = max(inputs, key=lambda s: s.size)
    dropped: list[np.ndarray] = []
    if base.vectors.ivf is not None:
        merged = base.vectors.copy()
        base_ids = base.vectors.ids()
        dead = base_ids[np.isin(base_ids, tombstones)]
        merged.remove(dead.tolist())
        dropped.append(dead)
        rest = [s for s in inputs if s is not base]
    else:
        merged = new(base.vectors.dim)
        rest = list(inputs)
    for seg in rest:
        ids, vecs = seg.vectors._contents()
        dead_mask = np.isin(ids, tombstones)
        dropped.append(ids[dead_mask])
        merged.add(ids[~dead_mask], vecs[~dead_mask])
    return merged, (np.concatenate(dropped) if dropped else np.zeros(0, np.int64))
