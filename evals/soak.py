"""Soak: many questions through one pipeline in one process; do memory, descriptors or
latency creep?

    python -m evals.soak                 # 2,000 questions over the seed index
    python -m evals.soak -n 500 --index /path/to/index --out soak.json

The questions cycle through the pinned seed set (answerable, unanswerable and out-of-corpus
ones, so every answer path runs). The models are loaded and one question answered before
the first measurement, so "start" is a warm process. Reports resident memory (RSS) and open
file descriptors at start and end, and latency p50/p95 of the first and the last 100.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

WINDOW = 100


@dataclass(frozen=True)
class SoakReport:
    questions: int
    seconds: float
    rss_start_mb: float
    rss_end_mb: float
    fds_start: int
    fds_end: int
    first_p50_ms: float
    first_p95_ms: float
    last_p50_ms: float
    last_p95_ms: float
    errors: int


def rss_mb() -> float:
    """Resident set size of this process, from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the value below which `q` percent of `values` fall."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(rank) - 1]


def seed_questions() -> list[str]:
    path = Path(__file__).resolve().parent / "seed" / "questions.jsonl"
    return [json.loads(line)["question"] for line in path.read_text("utf-8").splitlines() if line]


def soak(index_dir: Path, n: int, *, progress: bool = True) -> SoakReport:
    from rag.errors import RagError
    from rag.pipeline import Pipeline

    questions = seed_questions()
    pipeline = Pipeline(index_dir)
    pipeline.ask(questions[0])  # loads the models and, in an empty index, the seed articles
    rss0, fds0 = rss_mb(), open_fds()
    latencies: list[float] = []
    errors = 0
    started = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        try:
            pipeline.ask(questions[i % len(questions)])
        except RagError as exc:  # counted, not fatal: a soak wants the whole curve
            errors += 1
            print(f"question {i}: {exc}", file=sys.stderr)
        latencies.append((time.perf_counter() - t) * 1000)
        if progress and (i + 1) % 100 == 0:
            print(
                f"{i + 1:5d} questions, RSS {rss_mb():.0f} MB, {open_fds()} fds, "
                f"p95 of the last 100 {percentile(latencies[-WINDOW:], 95):.0f} ms",
                flush=True,
            )
    first, last = latencies[:WINDOW], latencies[-WINDOW:]
    return SoakReport(
        n,
        round(time.perf_counter() - started, 1),
        round(rss0, 1),
        round(rss_mb(), 1),
        fds0,
        open_fds(),
        round(percentile(first, 50), 1),
        round(percentile(first, 95), 1),
        round(percentile(last, 50), 1),
        round(percentile(last, 95), 1),
        errors,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.soak", description=__doc__)
    parser.add_argument("-n", "--questions", type=int, default=2000)
    parser.add_argument("--index", type=Path, help="index folder (default: seeds, temporary)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.questions < 1:
        parser.error("--questions must be at least 1")
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        report = soak(args.index or Path(tmp) / "index", args.questions)
    print(
        f"{report.questions} questions in {report.seconds:.0f} s, {report.errors} errors\n"
        f"RSS {report.rss_start_mb:.0f} MB -> {report.rss_end_mb:.0f} MB; "
        f"open fds {report.fds_start} -> {report.fds_end}\n"
        f"latency first {WINDOW}: p50 {report.first_p50_ms:.0f} ms, p95 "
        f"{report.first_p95_ms:.0f} ms; last {WINDOW}: p50 {report.last_p50_ms:.0f} ms, "
        f"p95 {report.last_p95_ms:.0f} ms"
    )
    if args.out:
        args.out.write_text(json.dumps(asdict(report), indent=2) + "\n", "utf-8")
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
