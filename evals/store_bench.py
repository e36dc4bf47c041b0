"""Store benchmark: `python -m evals.store_bench [--chunks N] [--stores faiss,milvus] [--json]`.

`--recall DATASET` instead measures retrieval quality per store: the dataset's cached FAISS
index (evals.runner.cached_index) is copied, chunks and vectors as they are, into a fresh
milvus-lite file, and each answerable question is retrieved from both (hybrid, the
question's date as `as_of`, as `rag eval` does) for recall@5 over distinct articles.

Retrieval latency of each store backend at N chunks (default 100,000): synthetic articles
whose chunk vectors are drawn around 256 cluster centres (so nearest neighbours are not
uniform noise) and whose text mixes a Zipf-distributed vocabulary with per-cluster topic
words (so BM25 posting lists have realistic lengths). Questions go through the product's
own `Retriever` (dense + BM25 + fusion + chunk fetch) with the question vector drawn near a
centre instead of computed by the model: the model's ~12 ms is the same for every store and
is left out. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from embeddings.index import Index, content_hash
from embeddings.store import STORES, StoreConfig
from embeddings.types import Chunk, DateSourceFilter, Document, DocumentWrite
from evals import metrics
from rag.retrieve import Retriever, parse_date

DIM = 384
CLUSTERS = 256
CHUNKS_PER_DOC = 10
WORDS_PER_CHUNK = 60
SOURCES = ("Herald", "Gazette", "Courier", "Tribune")


class QueryVectors:
    """Stands in for the embedder at question time: a vector near one cluster centre."""

    name = "synthetic"
    dim = DIM

    def __init__(self, centres: np.ndarray, seed: int) -> None:
        self.centres = centres
        self.rng = np.random.default_rng(seed)

    def encode(
        self, texts: list[str], *, progress: bool = False, documents: bool = False
    ) -> np.ndarray:
        c = self.centres[self.rng.integers(len(self.centres), size=len(texts))]
        return normalise(c + 0.35 * self.rng.standard_normal(c.shape).astype(np.float32))


def normalise(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic(n_chunks: int, seed: int = 7) -> tuple[list[DocumentWrite], np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = normalise(rng.standard_normal((CLUSTERS, DIM)).astype(np.float32))
    vocab = np.array([f"w{i}" for i in range(20_000)])
    zipf = 1.0 / np.arange(1, len(vocab) + 1)
    zipf /= zipf.sum()
    topics = [[f"topic{c}x{j}" for j in range(8)] for c in range(CLUSTERS)]
    puts = []
    for d in range(n_chunks // CHUNKS_PER_DOC):
        cluster = int(rng.integers(CLUSTERS))
        texts = []
        for _ in range(CHUNKS_PER_DOC):
            words = list(rng.choice(vocab, WORDS_PER_CHUNK - 6, p=zipf))
            words += list(rng.choice(topics[cluster], 6))
            texts.append(" ".join(words) + ".")
        body = " ".join(texts)
        chunks, start = [], 0
        for i, t in enumerate(texts):
            chunks.append(Chunk(f"s{d}", t, start, start + len(t), i))
            start += len(t) + 1
        doc = Document(
            f"s{d}",
            f"Synthetic article {d}",
            body,
            date=f"{2014 + d % 10}-{1 + d % 12:02d}-{1 + d % 28:02d}",
            source=SOURCES[d % len(SOURCES)],
        )
        noise = rng.standard_normal((CHUNKS_PER_DOC, DIM)).astype(np.float32)
        vectors = normalise(centres[cluster] + 0.35 * noise)
        puts.append(DocumentWrite(doc, content_hash(doc), tuple(chunks), vectors))
    questions = [
        " ".join(
            [*rng.choice(topics[int(rng.integers(CLUSTERS))], 2), *rng.choice(vocab[:2000], 3)]
        )
        for _ in range(200)
    ]
    return puts, centres, questions


def timed(fn: object, questions: list[str]) -> list[float]:
    times = []
    for q in questions:
        start = time.perf_counter()
        fn(q)  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return times


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench_store(kind: str, n_chunks: int, workdir: Path, n_questions: int) -> dict[str, float]:
    puts, centres, questions = synthetic(n_chunks)
    questions = questions[:n_questions]
    embedder = QueryVectors(centres, seed=11)
    index = Index(workdir / kind, embedder, StoreConfig(kind=kind))  # type: ignore[arg-type]
    start = time.perf_counter()
    # One FAISS generation for the whole build (ten would each copy everything before them);
    # Milvus in batches of 1,000 articles (~20 insert calls each).
    batch = len(puts) if kind == "faiss" else 1000
    for i in range(0, len(puts), batch):
        index.store.write(puts[i : i + batch])
    build_s = time.perf_counter() - start
    print(f"{kind}: {len(index)} chunks written in {build_s:.0f} s", file=sys.stderr, flush=True)
    retriever = Retriever(index, embedder)  # type: ignore[arg-type]
    recent = DateSourceFilter(date_from="2023-01-01", sources=("Herald", "Gazette"))
    vector = embedder.encode(["warm"])[0]
    for q in questions[:5]:  # warm caches and connections
        retriever.retrieve(q, k=5)
    cases = {
        "dense_ms": lambda q: index.dense_search(vector, 30),
        "bm25_ms": lambda q: index.lexical_search(q, 30),
        "hybrid_retrieve_ms": lambda q: retriever.retrieve(q, k=5),
        "filtered_retrieve_ms": lambda q: retriever.retrieve(q, k=5, filters=recent),
        "dense_filter_in_store_ms": lambda q: index.dense_search(vector, 30, flt=recent),
    }
    out: dict[str, float] = {"chunks": float(len(index)), "build_s": build_s}
    for name, fn in cases.items():
        times = timed(fn, questions)
        out[f"{name}_p50"] = statistics.median(times)
        out[f"{name}_p95"] = pct(times, 95)
        print(f"{kind} {name} p50 {out[f'{name}_p50']:.1f} ms", file=sys.stderr, flush=True)
    index.close()
    return out


def copy_index(source: Index, target: Index, batch: int = 100) -> int:
    """Every article of a FAISS-backed `source`, with its chunks and stored vectors (no
    re-embedding), written into `target`; returns the number of chunks."""
    store = source.store
    vectors = getattr(store, "vectors", None)
    if vectors is None:
        raise ValueError("copy_index reads vectors from a FAISS store")
    hashes = store.content_hashes()
    puts: list[DocumentWrite] = []
    n = 0
    for doc in store.documents():
        ids = store.chunk_ids(doc.doc_id)
        records = store.chunks(ids)
        chunks = tuple(
            Chunk(doc.doc_id, records[i].text, records[i].start, records[i].end, records[i].ordinal)
            for i in ids
        )
        matrix = np.vstack([vectors.index.reconstruct(int(i)) for i in ids])
        puts.append(DocumentWrite(doc, hashes[doc.doc_id], chunks, matrix))
        n += len(ids)
        if len(puts) >= batch:
            target.store.write(puts)
            puts = []
    if puts:
        target.store.write(puts)
    return n


def bench_recall(dataset_dir: Path, workdir: Path, k: int = 5) -> dict[str, float]:
    from evals.dataset import load_dataset
    from evals.runner import CHUNK_DEPTH, cached_index
    from rag.pipeline import Pipeline

    dataset = load_dataset(dataset_dir)
    faiss_index = cached_index(dataset)
    faiss = Pipeline(faiss_index)
    milvus_index = Index(workdir / "milvus", faiss.embedder, StoreConfig(kind="milvus"))
    start = time.perf_counter()
    n = copy_index(faiss.index, milvus_index)
    print(f"milvus: {n} chunks copied in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    retrievers = {"faiss": faiss.retriever, "milvus": Retriever(milvus_index, faiss.embedder)}
    recalls: dict[str, list[float]] = {kind: [] for kind in retrievers}
    times: dict[str, list[float]] = {kind: [] for kind in retrievers}
    for q in dataset.questions:
        if not q.doc_ids:
            continue
        for kind, retriever in retrievers.items():
            t = time.perf_counter()
            hits = retriever.retrieve(q.question, k=CHUNK_DEPTH, as_of=parse_date(q.date))
            times[kind].append((time.perf_counter() - t) * 1000)
            docs = [h.doc_id for h in hits]
            recalls[kind].append(metrics.recall_at_k(docs, q.doc_ids, k))
    out: dict[str, float] = {"questions": float(len(recalls["faiss"]))}
    for kind in retrievers:
        out[f"{kind}_recall@{k}"] = round(statistics.mean(recalls[kind]), 4)
        out[f"{kind}_retrieve_p50_ms"] = round(statistics.median(times[kind]), 1)
    milvus_index.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--stores", default=",".join(STORES))
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--recall", type=Path, metavar="DATASET", help="recall@5 per store")
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    if args.recall:
        with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
            results["recall"] = bench_recall(args.recall, Path(tmp))
        print(json.dumps(results["recall"], indent=2))
        return 0
    with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
        for kind in args.stores.split(","):
            results[kind] = bench_store(kind, args.chunks, Path(tmp), args.questions)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for kind, values in results.items():
            for key, value in values.items():
                print(f"{kind:8} {key:32} {value:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
