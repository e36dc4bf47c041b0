"""The embedded backend: FAISS vectors + SQLite/FTS5 metadata, as atomic generations on disk.

Each generation directory holds `vectors.faiss` and `chunks.sqlite`; `Generations` swaps
them in with one manifest replace, so a crash at any point leaves the previous index readable.
Chunk ids come from a counter kept in the manifest and are never reused.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embeddings.chunk_table import ChunkTable
from embeddings.errors import IndexUnavailableError
from embeddings.generations import Generations, rebuild_hint
from embeddings.store import Store
from embeddings.types import ChunkRecord, DateSourceFilter, Document, DocumentWrite

VECTORS = "vectors.faiss"
TABLE = "chunks.sqlite"


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
        """Every stored id (for consistency checks)."""
        return self._contents()[0]

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


class FaissStore(Store):
    """One index directory, loaded in memory for search and rewritten whole on change."""

    kind = "faiss"

    def __init__(self, path: Path, *, dim: Callable[[], int], embedder_name: str) -> None:
        self.path = path
        self.location = str(path)
        self._dim = dim
        self._embedder_name = embedder_name
        self._lock = threading.RLock()
        self.generations = Generations(path)
        self.table: ChunkTable | None = None
        self.vectors: FaissVectors | None = None
        self._load()

    # ---- lifecycle -----------------------------------------------------------------------

    def _load(self) -> None:
        manifest = self.generations.read()
        if manifest is None:
            self.generations.manifest = Generations.empty()
            # The width comes from the model, so an empty index loads it now rather than in
            # the middle of its first write.
            self._swap(ChunkTable.new(), FaissVectors(self._dim()))
            return
        gen_dir = self.path / manifest["generation_dir"]
        try:
            vectors = FaissVectors.load(gen_dir / VECTORS)
            table = ChunkTable.open_readonly(gen_dir / TABLE)
            n_chunks = table.count_chunks()
        except Exception as exc:  # faiss raises RuntimeError, sqlite DatabaseError, OSError...
            raise IndexUnavailableError(
                f"index at {self.path} is damaged ({exc.__class__.__name__}); "
                f"{rebuild_hint(self.path)}"
            ) from None
        if n_chunks != len(vectors) or vectors.dim != manifest.get("dim", vectors.dim):
            raise IndexUnavailableError(
                f"index at {self.path} is damaged ({len(vectors)} vectors for {n_chunks} "
                f"chunks); {rebuild_hint(self.path)}"
            )
        self.generations.manifest = manifest
        self._swap(table, vectors)

    def _swap(self, table: ChunkTable, vectors: FaissVectors | None) -> None:
        old = self.table
        self.table, self.vectors = table, vectors
        if old is not None:
            old.close()

    def refresh(self) -> None:
        with self._lock:
            if not self.generations.changed():
                return
            manifest = self.generations.read()
            if manifest and manifest.get("generation") != self.generations.manifest.get(
                "generation"
            ):
                self._load()

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        with self._lock, self.generations.writer():
            self.refresh()
            yield

    def write(self, puts: Sequence[DocumentWrite], deletes: Sequence[str] = ()) -> None:
        with self._lock:

            def fill(tmp: Path) -> dict[str, Any]:
                vectors = self.vectors.copy() if self.vectors else FaissVectors(self._dim())
                table = self._table.copy_to(tmp / TABLE)
                next_id = int(self.generations.manifest["next_id"])
                with table.db:  # one transaction
                    for doc_id in [*deletes, *(p.document.doc_id for p in puts)]:
                        vectors.remove(table.remove_document(doc_id))
                    for put in puts:
                        table.put_document(put.document, put.content_hash)
                        ids = np.arange(next_id, next_id + len(put.chunks), dtype=np.int64)
                        table.put_chunks(
                            (int(i), c.doc_id, c.ordinal, c.start, c.end, c.text)
                            for i, c in zip(ids, put.chunks, strict=True)
                        )
                        vectors.add(ids, put.vectors)
                        next_id += len(put.chunks)
                table.finish()
                vectors.save(tmp / VECTORS)
                return {"next_id": next_id, "dim": vectors.dim, "embedder": self._embedder_name}

            self.generations.commit(fill)
            self._load()
            self.generations.prune()

    def close(self) -> None:
        with self._lock:
            if self.table is not None:
                self.table.close()

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
        with self._lock:
            if flt:
                ids = set(self._table.allowed_ids(flt))
                allowed = list(ids if allowed is None else ids.intersection(allowed))
            return self.vectors.search(vector, k, allowed) if self.vectors else []

    def lexical_search(
        self, query: str, k: int, flt: DateSourceFilter | None = None
    ) -> list[tuple[int, float]]:
        with self._lock:
            return self._table.lexical_search(query, k, flt)
