"""Commits, search and merges of the segmented FAISS store at N chunks.

    python -m evals.segment_bench                          # 20,000 chunks, a minute
    python -m evals.segment_bench --chunks 1000000 --base-dir /tmp/segbench   # the target

Measures, on a store whose base holds N synthetic chunks (vectors shaped like text
embeddings, `evals.ann_bench.synthetic`; short texts, so SQLite is smaller than real news):

1. commit: `write` of 10 new articles (10-40 chunks each), wall time and bytes written
   (/proc/self/io `write_bytes`, and the new files' sizes), median and max of 5 writes;
2. search with 20 unmerged segments (and tombstones in the base): p50 / p95 of one query,
   one thread, and recall@10 against exact search over the live vectors;
3. a full merge of those segments into the base while a reader thread searches and a
   writer thread commits: merge time, the reader's max latency, the writes kept.

The base is built once into `--base-dir` and reused: each run hard-links its immutable
segment files and copies only `chunks.sqlite`, the one file written in place.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embeddings.faiss_store import FaissStore
from embeddings.segments import MergePolicy
from embeddings.types import Chunk, Document, DocumentWrite
from evals.ann_bench import DIM, recall_at, synthetic

BASE_CHUNKS_PER_ARTICLE = 25
WORDS = "harbour council bridge budget river festival election storm vaccine school".split()


def articles(first: int, vectors: np.ndarray, sizes: list[int]) -> list[DocumentWrite]:
    """Articles `first`, `first+1`, ... with `sizes` chunks, taking rows of `vectors`."""
    out, row = [], 0
    for n, size in enumerate(sizes):
        doc_id = f"a{first + n}"
        texts = [
            f"{WORDS[(first + n) % 10]} {WORDS[j % 10]} story {first + n} part {j}."
            for j in range(size)
        ]
        chunks, start = [], 0
        for j, t in enumerate(texts):
            chunks.append(Chunk(doc_id, t, start, start + len(t), j))
            start += len(t) + 1
        doc = Document(doc_id, doc_id, " ".join(texts), date=f"2020-01-{1 + n % 28:02d}")
        out.append(DocumentWrite(doc, doc_id, tuple(chunks), vectors[row : row + size]))
        row += size
    return out


def open_store(path: Path, policy: MergePolicy) -> FaissStore:
    store = FaissStore(path, dim=lambda: DIM, embedder_name="synthetic")
    store.policy = policy
    store.background_merge = False
    return store


def build_base(path: Path, n: int) -> None:
    if (path / "manifest.json").exists():
        return
    start = time.perf_counter()
    data = synthetic(n)
    sizes = [BASE_CHUNKS_PER_ARTICLE] * (n // BASE_CHUNKS_PER_ARTICLE)
    store = open_store(path, MergePolicy())
    store.write(articles(0, data, sizes))
    store.close()
    print(f"base of {n} chunks built in {time.perf_counter() - start:.0f} s", file=sys.stderr)


def fork_base(base: Path, run: Path) -> None:
    """A writable copy: immutable files hard-linked, the SQLite file copied."""
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    shutil.copy2(base / "manifest.json", run / "manifest.json")
    for folder in base.glob("gen-*"):
        (run / folder.name).mkdir()
        for f in folder.iterdir():
            target = run / folder.name / f.name
            if f.name.startswith("chunks.sqlite"):
                shutil.copy2(f, target)
            else:
                target.hardlink_to(f)


def written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def new_vectors(n: int, total: int, seed: int) -> np.ndarray:
    return synthetic(n, seed=seed, topics_of=total)


def bench(n: int, base_dir: Path, n_segments: int, n_queries: int) -> dict[str, float]:
    faiss.omp_set_num_threads(1)  # one question at a time: what a single query costs
    base = base_dir / f"base-{n}"
    build_base(base, n)
    run = base_dir / "run"
    fork_base(base, run)
    out: dict[str, float] = {"chunks": float(n)}
    start = time.perf_counter()
    store = open_store(run, MergePolicy())  # the default policy for the commits
    out["open_s"] = time.perf_counter() - start
    queries = synthetic(n_queries, seed=7, topics_of=n)
    _, times = search_all(store, queries)
    out["base_only_search_p50_ms"] = statistics.median(times)  # same machine load, 1 segment
    out["load_average_1min"] = os.getloadavg()[0]
    rng = np.random.default_rng(3)
    next_doc = n // BASE_CHUNKS_PER_ARTICLE
    added: dict[int, np.ndarray] = {}  # chunk id -> vector, to check recall against

    def write_articles(count: int, seed: int) -> tuple[float, int, int]:
        nonlocal next_doc
        sizes = [int(s) for s in rng.integers(10, 41, count)]
        vecs = new_vectors(sum(sizes), n, seed)
        puts = articles(next_doc, vecs, sizes)
        before_files = {p: p.stat().st_size for p in (run / "gen-000001").iterdir()}
        io_before = written_bytes()
        t0 = time.perf_counter()
        store.write(puts)
        elapsed = time.perf_counter() - t0
        io = written_bytes() - io_before
        files = sum(
            p.stat().st_size
            for p in (run / "gen-000001").iterdir()
            if p not in before_files and p.exists()
        )
        for put in puts:
            for cid, v in zip(store.chunk_ids(put.document.doc_id), put.vectors, strict=True):
                added[cid] = v
        next_doc += count
        return elapsed, io, files

    commits = [write_articles(10, 100 + i) for i in range(5)]
    out["commit_10_articles_p50_s"] = statistics.median(c[0] for c in commits)
    out["commit_10_articles_max_s"] = max(c[0] for c in commits)
    out["commit_write_bytes_max_mb"] = max(c[1] for c in commits) / 1e6
    out["commit_new_files_max_mb"] = max(c[2] for c in commits) / 1e6
    print(f"commits: {commits}", file=sys.stderr, flush=True)

    # 20 unmerged segments, and a few base articles deleted (tombstones in the base)
    store.policy = MergePolicy(coalesce_below=0, max_segments=10_000)
    while len(store.vectors.segments) < n_segments + 1:  # type: ignore[union-attr]
        write_articles(10, 200 + len(store.vectors.segments))  # type: ignore[union-attr]
    deleted = [f"a{i}" for i in range(0, n // BASE_CHUNKS_PER_ARTICLE, 97)][:50]
    dead = {i for d in deleted for i in store.chunk_ids(d)}
    store.write([], deleted)
    out["segments"] = float(len(store.vectors.segments))  # type: ignore[union-attr]
    out["tombstones"] = float(len(store.vectors.tombstones))  # type: ignore[union-attr]

    truth = exact_top10(n, added, dead, queries)
    found, times = search_all(store, queries)
    out["search_p50_ms"] = statistics.median(times)
    out["search_p95_ms"] = float(np.percentile(times, 95))
    out["recall10"] = recall_at(found, truth)
    print(f"search: {out['search_p50_ms']:.1f} ms, recall {out['recall10']:.3f}", file=sys.stderr)

    out.update(merge_under_load(store, queries, write_articles))
    found, times = search_all(store, queries)
    out["merged_segments"] = float(len(store.vectors.segments))  # type: ignore[union-attr]
    out["merged_search_p50_ms"] = statistics.median(times)
    truth = exact_top10(n, added, dead, queries)
    out["merged_recall10"] = recall_at(found, truth)
    store.close()
    shutil.rmtree(run, ignore_errors=True)
    return out


def exact_top10(
    n: int, added: dict[int, np.ndarray], dead: set[int], queries: np.ndarray
) -> np.ndarray:
    """Exact top 10 over the base's vectors (ids 1..n) plus the added ones, minus `dead`."""
    data = synthetic(n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    keep = ~np.isin(ids, np.fromiter(dead, np.int64, len(dead)))
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    flat.add_with_ids(data[keep], ids[keep])
    del data
    if added:
        flat.add_with_ids(np.vstack(list(added.values())), np.array(list(added), np.int64))
    return flat.search(queries, 10)[1]


def search_all(store: FaissStore, queries: np.ndarray) -> tuple[np.ndarray, list[float]]:
    found = np.full((len(queries), 10), -1, np.int64)
    times = []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        hits = store.search(q, 10)
        times.append((time.perf_counter() - t0) * 1000)
        found[i, : len(hits)] = [h for h, _ in hits]
    return found, times


def merge_under_load(store: FaissStore, queries: np.ndarray, write: Any) -> dict[str, float]:
    """A full merge in a thread while this thread searches and another commits."""
    done = threading.Event()
    latencies: list[float] = []
    commits: list[float] = []
    merged: list[bool] = []

    def merge() -> None:
        merged.append(store.merge([s.name for s in store.vectors.segments]))  # type: ignore[union-attr]
        done.set()

    def writer() -> None:
        while not done.is_set():
            commits.append(write(10, 900 + len(commits))[0])
            time.sleep(0.5)

    docs_before = store.count_documents()
    t0 = time.perf_counter()
    threads = [threading.Thread(target=merge), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    i = 0
    while not done.is_set():
        s = time.perf_counter()
        store.search(queries[i % len(queries)], 10)
        latencies.append((time.perf_counter() - s) * 1000)
        i += 1
    merge_s = time.perf_counter() - t0
    for t in threads:
        t.join()
    kept = store.count_documents() - docs_before == 10 * len(commits)
    return {
        "merge_committed": float(bool(merged and merged[0])),
        "merge_s": merge_s,
        "reader_queries_during_merge": float(len(latencies)),
        "reader_p50_ms_during_merge": statistics.median(latencies) if latencies else 0.0,
        "reader_max_ms_during_merge": max(latencies) if latencies else 0.0,
        "writes_during_merge": float(len(commits)),
        "write_max_s_during_merge": max(commits) if commits else 0.0,
        "writes_during_merge_kept": float(kept),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.segment_bench", description=__doc__)
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--base-dir", type=Path, default=Path("/tmp/segment-bench"))
    parser.add_argument("--segments", type=int, default=20)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = bench(args.chunks, args.base_dir, args.segments, args.queries)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:32} {value:12.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
