"""Performance benchmark: `python -m evals.bench [--quick] [--large] [--json]`.

Measures what the README reports: warm `ask()` latency and time to first streamed token on
the seed (with the time per stage), a fresh process's first answer, retrieval latency at
100,000 chunks, and ingest throughput. Beside each figure it measures the raw limit of the
part underneath on the same machine — llama.cpp's prompt and generation tokens/s, the
embedder's sentences/s, FAISS search alone — and prints the ratio, so a regression shows as
a ratio rather than as a noisy absolute. `--large` adds the million-chunk vector search
(evals/ann_bench.py). Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from embeddings.embedder import Embedder
from embeddings.index import Index
from embeddings.loaders import load_paths
from embeddings.types import Document
from rag.pipeline import SEEDS_DIR, Pipeline
from rag.types import Answer

SEED_QUESTIONS = [
    "How many vaccine doses has the US delivered abroad?",
    "To how many countries were vaccines delivered?",
    "Who is the US Secretary of State?",
    "Which country did the US back in its row with Beijing?",
    "What infrastructure initiative did the US launch?",
    "Why did the US boycott the Beijing Olympics?",
    "How many vaccines will be donated next year?",
    "Which global partnership distributes vaccines equitably?",
    "Who won the 2022 World Cup?",
    "What did Blinken threaten Russia with?",
]
REALTIMEQA_DOCS = Path(__file__).resolve().parents[2] / "shared/data/realtimeqa_dev/docs.jsonl"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def bench_warm(pipeline: Pipeline, rounds: int) -> dict[str, float]:
    totals, first_tokens = [], []
    stages: dict[str, list[float]] = {}
    pipeline.ask(SEED_QUESTIONS[0])  # warm-up
    for _ in range(rounds):
        for q in SEED_QUESTIONS:
            start = time.perf_counter()
            first = None
            for item in pipeline.stream(q):
                if first is None:
                    first = time.perf_counter() - start  # a token, or a refusal's answer
                if isinstance(item, Answer):
                    totals.append((time.perf_counter() - start) * 1000)
                    for stage, ms in item.timings.items():
                        stages.setdefault(stage, []).append(ms)
            first_tokens.append((first or 0) * 1000)
    out = {
        "ask_p50_ms": statistics.median(totals),
        "ask_p95_ms": pct(totals, 95),
        "first_token_p50_ms": statistics.median(first_tokens),
        "first_token_p95_ms": pct(first_tokens, 95),
        "questions": len(totals),
    }
    out.update({f"stage_{k}_p50_ms": statistics.median(v) for k, v in stages.items()})
    return out


def bench_parts(pipeline: Pipeline, embedder: Embedder) -> dict[str, float]:
    """The raw limits underneath: what llama.cpp and the embedder do on their own here."""
    from rag.models.llama import LlamaCppGenerator, llama_threads, prompt_threads
    from rag.reader.answerers import build_messages

    out: dict[str, float] = {}
    gen = pipeline.generator
    if isinstance(gen, LlamaCppGenerator):
        focus = pipeline.focus(SEED_QUESTIONS[0])
        messages = build_messages(
            focus.question, focus.context[: pipeline.settings.context_sentences]
        )
        llm = gen.llm
        tokens = llm.tokenize(
            "\n".join(m["content"] for m in messages).encode(), add_bos=True, special=True
        )
        llm._ctx.set_n_threads(llama_threads(), prompt_threads())
        reads = []
        for _ in range(3):
            llm.reset()
            start = time.perf_counter()
            llm.eval(tokens)
            reads.append(time.perf_counter() - start)
        out["llama_prompt_tokens"] = len(tokens)
        out["llama_prompt_tok_per_s"] = len(tokens) / statistics.median(reads)
        start = time.perf_counter()
        n = 0
        for _ in llm.generate(tokens, temp=0.0, top_k=1, reset=False):
            n += 1
            if n == 32:
                break
        out["llama_gen_tok_per_s"] = n / (time.perf_counter() - start)
    sentences = [s for s in (SEEDS_DIR.glob("*.txt").__next__().read_text().split(". ")) if s]
    batch = (sentences * (256 // max(1, len(sentences)) + 1))[:256]
    start = time.perf_counter()
    embedder.encode(batch)
    out["embedder_sentences_per_s"] = len(batch) / (time.perf_counter() - start)
    return out


def bench_cold(index_dir: Path, runs: int) -> dict[str, float]:
    """A new `rag ask` process on an existing index, wall clock from exec to exit."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rag.cli",
                "ask",
                SEED_QUESTIONS[0],
                "--json",
                "--index",
                str(index_dir),
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        times.append((time.perf_counter() - start) * 1000)
    return {"cold_first_answer_p50_ms": statistics.median(times), "runs": runs}


class RandomVectors(Embedder):
    """Fills a size-test index fast: random unit vectors stand in for 10^5 chunk embeddings
    (search cost does not depend on their values); queries still use the real model."""

    def __init__(self, real: Embedder) -> None:
        super().__init__(real.model_path)
        self.real = real
        self.rng = np.random.default_rng(0)

    @property
    def dim(self) -> int:
        return self.real.dim

    # Chunk by the estimate below, which the synthetic articles are sized for (the real word
    # pieces of "w1234"-style words would make three times the chunks).
    token_starts = None

    def count_tokens(self, text: str) -> int:
        return len(text.split()) * 4 // 3 + 2

    def encode(self, texts, *, progress=False, documents=False):  # type: ignore[no-untyped-def]
        v = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def bench_scale(embedder: Embedder, n_chunks: int, workdir: Path) -> dict[str, float]:
    rng = np.random.default_rng(1)
    vocab = [f"w{i}" for i in range(20000)] + [
        "vaccine",
        "doses",
        "harbour",
        "election",
        "court",
        "storm",
        "market",
        "minister",
        "bridge",
        "council",
        "budget",
    ]
    per_doc = 4
    docs = []
    for d in range(n_chunks // per_doc):
        sentences = [" ".join(rng.choice(vocab, 18)) + "." for _ in range(per_doc * 5)]
        docs.append(
            Document(
                f"s{d}",
                f"synthetic {d}",
                " ".join(sentences),
                date=f"20{10 + d % 14}-0{1 + d % 9}-1{d % 9}",
            )
        )
    index = Index(workdir / "scale", RandomVectors(embedder))
    start = time.perf_counter()
    index.ingest(docs)
    build_s = time.perf_counter() - start
    pipeline = Pipeline(workdir / "scale", embedder=embedder)
    questions = SEED_QUESTIONS * 5
    pipeline.retrieve(questions[0])
    times = []
    for q in questions:
        start = time.perf_counter()
        pipeline.retrieve(q, k=5)
        times.append((time.perf_counter() - start) * 1000)
    dated = []  # as_of filters inside both searches (the UI's and the evaluations' path)
    for q in questions:
        start = time.perf_counter()
        pipeline.retrieve(q, k=5, as_of="2017-06-01")
        dated.append((time.perf_counter() - start) * 1000)
    vectors = embedder.encode(questions)
    raw = []
    for v in vectors:
        start = time.perf_counter()
        pipeline.index.dense_search(v, 30, None)
        raw.append((time.perf_counter() - start) * 1000)
    return {
        "chunks": len(pipeline.index),
        "retrieve_p50_ms": statistics.median(times),
        "retrieve_p95_ms": pct(times, 95),
        "retrieve_as_of_p50_ms": statistics.median(dated),
        "faiss_search_p50_ms": statistics.median(raw),
        "build_s_random_vectors": build_s,
    }


def bench_ingest(embedder: Embedder, n_docs: int, workdir: Path) -> dict[str, float]:
    docs = (
        load_paths([REALTIMEQA_DOCS]).documents[:n_docs]
        if REALTIMEQA_DOCS.exists()
        else load_paths([SEEDS_DIR]).documents
    )
    index = Index(workdir / "ingest", embedder)
    start = time.perf_counter()
    report = index.ingest(docs)
    ingest_s = time.perf_counter() - start
    texts = [r[0] for r in index.db.execute("SELECT text FROM chunks")]
    start = time.perf_counter()
    embedder.encode(texts, documents=True)
    raw_s = time.perf_counter() - start
    return {
        "documents": len(docs),
        "chunks": report.chunks_added,
        "ingest_chunks_per_s": report.chunks_added / ingest_s,
        "embedder_raw_chunks_per_s": len(texts) / raw_s,
    }


def ratios(r: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each figure over the raw limit beneath it (1.0 = no overhead at all)."""
    parts, warm = r["parts"], r["warm_seed"]
    out = {
        "ingest_over_embedder": r["ingest"]["ingest_chunks_per_s"]
        / r["ingest"]["embedder_raw_chunks_per_s"],
        "retrieve_over_faiss": r["scale"]["retrieve_p50_ms"] / r["scale"]["faiss_search_p50_ms"],
    }
    if "llama_prompt_tok_per_s" in parts:
        read_ms = 1000 * parts["llama_prompt_tokens"] / parts["llama_prompt_tok_per_s"]
        out["ask_over_prompt_read"] = warm["ask_p50_ms"] / read_ms
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--large", action="store_true", help="also the million-chunk search (several minutes)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results: dict[str, dict[str, float]] = {}
    embedder = Embedder()
    embedder.encode(["warm"])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        seed_pipeline = Pipeline(work / "seed", embedder=embedder)
        seed_pipeline.ingest([SEEDS_DIR])
        results["warm_seed"] = bench_warm(seed_pipeline, 1 if args.quick else 3)
        results["cold_process"] = bench_cold(work / "seed", 1 if args.quick else 5)
        results["scale"] = bench_scale(embedder, 10_000 if args.quick else 100_000, work)
        results["ingest"] = bench_ingest(embedder, 20 if args.quick else 100, work)
        results["parts"] = bench_parts(seed_pipeline, embedder)
    results["ratios"] = ratios(results)
    if args.large:
        from evals.ann_bench import bench_million

        results["large"] = bench_million()
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for section, values in results.items():
            for key, value in values.items():
                print(f"{section:14} {key:28} {value:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
