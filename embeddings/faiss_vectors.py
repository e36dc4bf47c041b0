"""FAISS vectors of one segment: exact up to a threshold, then IVF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

# Past this many vectors exact search costs more than a question can afford (86 ms per
# query at 10^6 measured here), so the store moves to IVF: inverted lists over k-means
# cells, an eighth of them searched. IVF keeps deletes and ids, which HNSW does not. At 10^6
# text-like vectors (evals/ann_bench.py) 4,000 lists probed 512 deep gave recall@10 0.985
# in 11 ms; 256 deep 0.945, 32 deep 0.70 (README, Performance).
IVF_THRESHOLD = 250_000
PROBE_SHARE = 8  # probe nlist // PROBE_SHARE lists


class FaissVectors:
    """Inner-product search: exact (`IndexIDMap2(IndexFlatIP)`) up to `ivf_threshold`
    vectors, then IVF (`IndexIVFFlat`, 4 x sqrt(n) lists), rebuilt when the collection has
    grown fourfold since its lists were trained."""

    def __init__(
        self, dim: int, index: faiss.Index | None = None, *, ivf_threshold: int | None = None
    ) -> None:
        self.dim = dim
        self.index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.ivf_threshold = IVF_THRESHOLD if ivf_threshold is None else ivf_threshold

    @classmethod
    def load(cls, path: Path) -> FaissVectors:
        index = faiss.read_index(str(path))
        return cls(index.d, index)

    def copy(self) -> FaissVectors:
        return FaissVectors(
            self.dim, faiss.clone_index(self.index), ivf_threshold=self.ivf_threshold
        )

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @property
    def ivf(self) -> faiss.IndexIVF | None:
        return self.index if isinstance(self.index, faiss.IndexIVF) else None

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )
            self._maybe_rebuild()

    def remove(self, ids: Sequence[int]) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))  # type: ignore[arg-type]

    def ids(self) -> np.ndarray:
        """Every stored id, without copying the vectors."""
        ivf = self.ivf
        if ivf is None:
            return faiss.vector_to_array(self.index.id_map)  # type: ignore[attr-defined]
        lists = ivf.invlists
        assert lists is not None
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(ivf.nlist)
            if lists.list_size(i)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def _contents(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of everything stored, read in bulk from either layout."""
        ivf = self.ivf
        if ivf is None:
            ids = faiss.vector_to_array(self.index.id_map)  # type: ignore[attr-defined]
            return ids, self.index.index.reconstruct_n(0, len(ids))  # type: ignore[attr-defined]
        lists = ivf.invlists
        assert lists is not None
        id_parts, vec_parts = [], []
        for i in range(ivf.nlist):
            size = lists.list_size(i)
            if size:
                id_parts.append(faiss.rev_swig_ptr(lists.get_ids(i), size).copy())
                codes = faiss.rev_swig_ptr(lists.get_codes(i), size * lists.code_size)
                vec_parts.append(np.frombuffer(codes.tobytes(), np.float32).reshape(size, -1))
        if not id_parts:
            return np.zeros(0, np.int64), np.zeros((0, self.dim), np.float32)
        return np.concatenate(id_parts), np.vstack(vec_parts)

    def _maybe_rebuild(self) -> None:
        n = int(self.index.ntotal)
        ivf = self.ivf
        trained_for = (ivf.nlist // 4) ** 2 if ivf is not None else 0
        if n < self.ivf_threshold or (ivf is not None and n < 4 * trained_for):
            return
        ids, vectors = self._contents()
        nlist = 4 * int(np.sqrt(n))
        sample = vectors[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)]
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
        index.nprobe = max(1, nlist // PROBE_SHARE)
        self.index = index

    def search(
        self, query: np.ndarray, k: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        if self.index.ntotal == 0 or k <= 0:
            return []
        params: Any = None
        if allowed is not None:
            if not len(allowed):
                return []
            selector = faiss.IDSelectorBatch(np.asarray(allowed, "int64"))
            if self.ivf is not None:
                params = faiss.SearchParametersIVF(sel=selector, nprobe=self._nprobe())  # type: ignore[call-arg]
            else:
                params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        elif self.ivf is not None:
            params = faiss.SearchParametersIVF(nprobe=self._nprobe())  # type: ignore[call-arg]
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        scores, ids = self.index.search(q, min(k, self.index.ntotal), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def _nprobe(self) -> int:
        ivf = self.ivf
        return max(1, ivf.nlist // PROBE_SHARE) if ivf is not None else 0

    def __len__(self) -> int:
        return int(self.index.ntotal)
