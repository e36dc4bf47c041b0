"""Past a size threshold the FAISS store moves from exact search to IVF: results stay close
to exact (recall@10), ids, deletes, filters and save/load keep working. Millisecond-scale
with a small threshold and synthetic text-like vectors (evals/ann_bench.py)."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

import embeddings.faiss_store as faiss_store
from embeddings.faiss_store import FaissVectors
from embeddings.types import Document
from evals.ann_bench import recall_at, synthetic

DIM = 384


def _exact(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    flat = faiss.IndexFlatIP(DIM)
    flat.add(data)
    return flat.search(queries, k)[1]


def test_ivf_after_the_threshold_keeps_results_ids_and_deletes(tmp_path: Path) -> None:
    data, queries = synthetic(6_000), synthetic(50, seed=7)
    store = FaissVectors(DIM, ivf_threshold=4_000)
    for start in range(0, len(data), 1_000):  # grows past the threshold in batches
        store.add(np.arange(start, start + 1_000), data[start : start + 1_000])
    assert store.ivf is not None and len(store) == 6_000
    assert sorted(store.ids().tolist()) == list(range(6_000))

    found = np.array([[i for i, _ in store.search(q, 10)] for q in queries])
    # 6,000 vectors give IVF too few points per list to be at its best; the
    # >= 0.98 target is measured at a million chunks by `python -m evals.ann_bench`.
    assert recall_at(found, _exact(data, queries, 10)) >= 0.75

    store.remove(list(range(0, 6_000, 2)))  # delete every even id
    assert len(store) == 3_000
    assert all(i % 2 == 1 for q in queries for i, _ in store.search(q, 10))
    allowed = list(range(1, 600, 2))
    assert all(i in set(allowed) for i, _ in store.search(queries[0], 5, allowed))

    store.save(tmp_path / "v.faiss")
    loaded = FaissVectors.load(tmp_path / "v.faiss")
    assert loaded.ivf is not None
    assert loaded.search(queries[1], 10) == store.search(queries[1], 10)


def test_small_collections_stay_exact() -> None:
    store = FaissVectors(DIM, ivf_threshold=4_000)
    data = synthetic(500)
    store.add(np.arange(500), data)
    assert store.ivf is None
    assert [i for i, _ in store.search(data[3], 1)] == [3]


def test_an_index_past_the_threshold_answers_and_reopens(
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embeddings.index import Index

    monkeypatch.setattr(faiss_store, "IVF_THRESHOLD", 40)
    index = Index(tmp_path / "idx", embedder)
    topics = ["harbour", "election", "vaccine", "bridge", "budget", "storm", "court", "market"]
    docs = [
        Document(f"d{i}", f"{t} story {i}", f"The {t} story number {i}. " * 30)
        for i, t in enumerate(topics * 3)
    ]
    index.ingest(docs)
    assert len(index) >= 40
    assert isinstance(index.store.vectors.ivf, faiss.IndexIVF)  # type: ignore[attr-defined]
    hits = index.dense_search(embedder.encode(["the vaccine story"])[0], 5)
    assert index.chunks([hits[0][0]])[hits[0][0]].doc_id in {f"d{i}" for i in (2, 10, 18)}
    index.delete("d2")
    reopened = Index(tmp_path / "idx", embedder)
    assert reopened.store.vectors.ivf is not None  # type: ignore[attr-defined]
    assert reopened.document("d2") is None and len(reopened) == len(index)
