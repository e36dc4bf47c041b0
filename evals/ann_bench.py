"""Vector search at a million chunks: exact vs approximate FAISS indexes, chosen by measurement.

`python -m evals.ann_bench [--n 1000000] [--queries 200] [--json]` (also `evals.bench --large`);
`--growth` times the FAISS store's own switch from exact to IVF at its threshold.

The vectors are synthetic but shaped like text embeddings: clustered (topics) inside a
low-rank subspace (MiniLM's vectors use a fraction of their 384 dimensions), plus noise, then
normalised. Uniform random vectors would flatter approximate search: their neighbours are
all about equally far, so any candidate list looks right. Queries come from the same mixture
and are not in the index. Recall@10 is measured against exact inner-product search.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np

DIM = 384
RANK = 64  # latent dimensions
TOPICS_PER_CHUNK = 0.1  # a topic per 10 chunks, as in the calibration below, at any size
# Calibrated on real vectors: on the 20,365 realtimeqa_dev chunk vectors with its questions,
# IVF (4 x sqrt(n) lists) reached recall@10 0.65 / 0.88 / 0.92 at nprobe 1 / 4 / 8; these
# synthetic vectors at the same size reach 0.72 / 0.84 / 0.88 (noise 0.8: 0.53 / 0.65 / 0.73),
# i.e. slightly harder for approximate search than real text where it matters. The number of
# topics grows with the collection (an archive grows by new stories, not by copies of old
# ones): with a fixed 2,000 topics, a million chunks packed 500 to a topic and every method
# reached recall 1.0, which flatters approximate search the way uniform vectors do.
LATENT_NOISE = 0.6


def synthetic(
    n: int, seed: int = 0, *, centers: np.ndarray | None = None, topics_of: int | None = None
) -> np.ndarray:
    """`n` vectors; queries pass `topics_of` = the collection's size to share its topics."""
    rng = np.random.default_rng(seed)
    basis = np.random.default_rng(42).standard_normal((RANK, DIM)).astype(np.float32)
    if centers is None:
        topics = int(TOPICS_PER_CHUNK * max(topics_of or n, 20_000))
        centers = np.random.default_rng(43).standard_normal((topics, RANK)).astype(np.float32)
    out = np.empty((n, DIM), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        topic = rng.integers(0, len(centers), m)
        latent = centers[topic] + LATENT_NOISE * rng.standard_normal((m, RANK)).astype(np.float32)
        v = latent @ basis + 0.5 * rng.standard_normal((m, DIM)).astype(np.float32)
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _time_queries(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    ids = np.empty((len(queries), k), dtype=np.int64)
    times = []
    for i, q in enumerate(queries):
        start = time.perf_counter()
        _, found = index.search(q[None, :], k)
        times.append((time.perf_counter() - start) * 1000)
        ids[i] = found[0]
    return ids, statistics.median(times)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def bench_million(n: int = 1_000_000, n_queries: int = 200, k: int = 10) -> dict[str, float]:
    import faiss

    faiss.omp_set_num_threads(1)  # one question at a time: what a single query costs
    t0 = time.perf_counter()
    data = synthetic(n)
    queries = synthetic(n_queries, seed=7, topics_of=n)
    out: dict[str, float] = {"chunks": n, "generate_s": time.perf_counter() - t0}

    flat = faiss.IndexFlatIP(DIM)
    flat.add(data)
    truth, flat_ms = _time_queries(flat, queries, k)
    out["flat_p50_ms"] = flat_ms
    out["flat_bytes_per_chunk"] = 4 * DIM
    del flat

    nlist = 4 * int(np.sqrt(n))  # FAISS's rule of thumb: 4..16 x sqrt(n) lists
    sample = data[np.random.default_rng(1).choice(n, min(n, 64 * nlist), replace=False)]
    for name, factory in (("ivf_flat", f"IVF{nlist},Flat"), ("ivf_sq8", f"IVF{nlist},SQ8")):
        faiss.omp_set_num_threads(0)  # building may use every core
        index = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
        start = time.perf_counter()
        index.train(sample)
        index.add(data)
        out[f"{name}_build_s"] = time.perf_counter() - start
        out[f"{name}_bytes_per_chunk"] = len(faiss.serialize_index(index)) / n
        faiss.omp_set_num_threads(1)
        for nprobe in (8, 16, 32, 64):
            faiss.extract_index_ivf(index).nprobe = nprobe
            found, ms = _time_queries(index, queries, k)
            out[f"{name}_nprobe{nprobe}_recall10"] = recall_at(found, truth)
            out[f"{name}_nprobe{nprobe}_p50_ms"] = ms
        del index
    return out


def bench_store_growth(batch: int = 1_000) -> dict[str, float]:
    """What the FAISS store's own switch costs: adding one ingest-sized batch to a store
    just under its IVF threshold (the add that converts it: reconstruct every vector, train,
    re-add) against the same add to an exact store, and the switched store's copy and save,
    which every committed write pays (a new generation)."""
    import tempfile
    from pathlib import Path

    from embeddings.faiss_store import IVF_THRESHOLD, FaissVectors

    n = IVF_THRESHOLD - batch // 2
    vectors = synthetic(n + batch, seed=5)
    ids = np.arange(n + batch, dtype=np.int64)
    store = FaissVectors(DIM)
    store.add(ids[:n], vectors[:n])
    start = time.perf_counter()
    exact = store.copy()
    exact.remove(ids[n - batch : n])
    exact.add(ids[n - batch : n], vectors[n - batch : n])  # stays exact: n < the threshold
    exact_add_s = time.perf_counter() - start
    start = time.perf_counter()
    store.add(ids[n:], vectors[n:])
    switch_s = time.perf_counter() - start
    assert store.ivf is not None
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        store.copy().save(Path(tmp) / "vectors.faiss")
        commit_s = time.perf_counter() - start
    return {
        "vectors": float(store.index.ntotal),
        "exact_copy_and_add_s": exact_add_s,
        "switch_to_ivf_add_s": switch_s,
        "ivf_copy_and_save_s": commit_s,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.ann_bench", description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--growth", action="store_true", help="the store's switch to IVF at its threshold instead"
    )
    args = parser.parse_args(argv)
    result = bench_store_growth() if args.growth else bench_million(args.n, args.queries)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:32} {value:12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
