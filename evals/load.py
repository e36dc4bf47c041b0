"""Load test of `rag serve`: `python -m evals.load [--replicas 2] [--levels 1,4,16]`.

Builds (or reuses) the dataset's index, copies it aside (with `--store milvus`: its chunks and
vectors into a milvus-lite server this script starts, or `--milvus-uri`), answers every
question once in this process (the reference answers and in-process `ask()` latency),
starts N `rag serve` replicas (one worker each) on the one copy, then drives 1, 4, 16
concurrent round-robin clients for a fixed time through /v1/ask and /v1/chat/completions.
Reports latency percentiles, throughput, errors, 429s, answers that differ from the
single-process answer, and replica RSS before/after; then ingests and deletes an article
through one replica while another answers, and checks the other sees each change on its
next request. Loopback only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from evals.dataset import load_dataset
from evals.metrics import percentile
from evals.runner import cached_index
from evals.store_bench import copy_index

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "realtimeqa_dev"
ENDPOINTS = ("/v1/ask", "/v1/chat/completions")
PROBE_ARTICLE = (
    "The Quenby Glass Museum named Maribel Okonkwo-Staines as its new director on 2 May 2022. "
    "She previously ran the city's botanical garden."
)
PROBE_QUESTION = "Who is the new director of the Quenby Glass Museum?"
PROBE_NAME = "Maribel Okonkwo-Staines"


@dataclass
class Level:
    endpoint: str
    clients: int
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    ok: int = 0
    rejected_429: int = 0
    errors: int = 0
    mismatched: int = 0
    first_error: str = ""

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {
            "endpoint": self.endpoint,
            "clients": self.clients,
            "requests": self.ok + self.rejected_429 + self.errors,
            "answers_per_s": round(self.ok / self.seconds, 2),
            "p50_ms": _round(percentile(lat, 50)),
            "p95_ms": _round(percentile(lat, 95)),
            "p99_ms": _round(percentile(lat, 99)),
            "errors": self.errors,
            "429s": self.rejected_429,
            "mismatched": self.mismatched,
            "first_error": self.first_error,
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def _wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"milvus-lite server did not listen on port {port}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[str]


def start_replicas(n: int, index: Path, env: dict[str, str]) -> list[Replica]:
    replicas = []
    for _ in range(n):
        port = free_port()
        cmd = [sys.executable, "-m", "rag.cli", "serve", "--index", str(index)]
        cmd += ["--port", str(port), "--workers", "1", "--no-ui"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        replicas.append(Replica(f"http://127.0.0.1:{port}", proc))  # type: ignore[arg-type]
    deadline = time.monotonic() + 600
    for r in replicas:
        while True:
            if r.process.poll() is not None:
                err = r.process.stderr.read() if r.process.stderr else ""
                raise SystemExit(f"evals.load: a replica exited: {str(err).strip()[-500:]}")
            try:
                if httpx.get(f"{r.url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("evals.load: replicas not ready within 600 s")
            time.sleep(0.5)
    return replicas


def request(client: httpx.Client, url: str, endpoint: str, question: str) -> tuple[int, str]:
    """(status, answer content) of one question."""
    if endpoint == "/v1/ask":
        r = client.post(url + endpoint, json={"question": question})
        return r.status_code, r.json().get("text", "") if r.status_code == 200 else r.text
    body = {"model": "rag", "messages": [{"role": "user", "content": question}]}
    r = client.post(url + endpoint, json=body)
    if r.status_code != 200:
        return r.status_code, r.text
    return 200, r.json()["choices"][0]["message"]["content"]


def drive(
    replicas: list[Replica],
    endpoint: str,
    clients: int,
    seconds: float,
    questions: list[str],
    expected: dict[str, str],
) -> Level:
    """`clients` threads asking round-robin across replicas until `seconds` have passed."""
    level = Level(endpoint, clients, seconds)
    counter = itertools.count()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client_loop() -> None:
        with httpx.Client(timeout=120) as client:
            while time.monotonic() < deadline:
                i = next(counter)
                q, rep = questions[i % len(questions)], replicas[i % len(replicas)]
                t = time.perf_counter()
                try:
                    status, text = request(client, rep.url, endpoint, q)
                except httpx.HTTPError as exc:
                    status, text = -1, f"{exc.__class__.__name__}: {exc}"
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    if status == 200:
                        level.ok += 1
                        level.latencies_ms.append(ms)
                        level.mismatched += text != expected[q]
                    elif status == 429:
                        level.rejected_429 += 1
                        time.sleep(0.2)
                    else:
                        level.errors += 1
                        level.first_error = level.first_error or f"{status} {text[:200]}"

    started = time.monotonic()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    level.seconds = time.monotonic() - started  # answers in flight at the deadline count too
    return level


def overhead(replica: Replica, questions: list[str]) -> dict[str, Any]:
    """HTTP cost per /v1/ask: client-side latency minus the server's own pipeline time
    (Answer.timings['total']), one request at a time, on an otherwise idle replica."""
    extra, total = [], []
    with httpx.Client(timeout=120) as client:
        for q in questions:
            t = time.perf_counter()
            r = client.post(f"{replica.url}/v1/ask", json={"question": q})
            ms = (time.perf_counter() - t) * 1000
            total.append(ms)
            extra.append(ms - r.json()["timings"]["total"])
    return {
        "http_ask_p50_ms": _round(percentile(total, 50)),
        "overhead_p50_ms": _round(percentile(extra, 50)),
    }


def consistency(writer: Replica, reader: Replica, questions: list[str]) -> dict[str, Any]:
    """Ingest then delete an article through `writer` while `reader` keeps answering; the
    reader's next request after each change must see it."""
    stop = threading.Event()
    background = {"ok": 0, "errors": 0}

    def keep_asking() -> None:
        with httpx.Client(timeout=120) as client:
            for q in itertools.cycle(questions):
                if stop.is_set():
                    return
                status, _ = request(client, reader.url, "/v1/ask", q)
                background["ok" if status == 200 else "errors"] += 1

    thread = threading.Thread(target=keep_asking)
    thread.start()
    try:
        with httpx.Client(timeout=120) as client:
            ask = {"question": PROBE_QUESTION}
            before = client.post(f"{reader.url}/v1/ask", json=ask).json()["text"]
            t = time.perf_counter()
            r = client.post(
                f"{writer.url}/v1/documents",
                json={"documents": [{"text": PROBE_ARTICLE, "date": "2022-05-02"}]},
            )
            ingest_ms = (time.perf_counter() - t) * 1000
            doc_id = r.json()["added"][0]
            after_ingest = client.post(f"{reader.url}/v1/ask", json=ask).json()["text"]
            client.delete(f"{writer.url}/v1/documents/{doc_id}").raise_for_status()
            after_delete = client.post(f"{reader.url}/v1/ask", json=ask).json()["text"]
    finally:
        stop.set()
        thread.join()
    return {
        "before": before,
        "after_ingest": after_ingest,
        "after_delete": after_delete,
        "seen_after_ingest": PROBE_NAME in after_ingest,
        "gone_after_delete": PROBE_NAME not in after_delete and PROBE_NAME not in before,
        "ingest_ms": round(ingest_ms, 1),
        "background_answers": background,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.load", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--levels", default="1,4,16", help="concurrent clients, comma-separated")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per level and endpoint")
    p.add_argument("--questions", type=int, default=40, help="first N questions of the dataset")
    p.add_argument("--store", choices=["faiss", "milvus"], default="faiss")
    p.add_argument(
        "--milvus-uri",
        help="RAG_MILVUS_URI for --store milvus (default: start a milvus-lite gRPC server here)",
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    levels = [int(x) for x in args.levels.split(",")]

    from embeddings.embedder import Embedder
    from embeddings.index import Index
    from embeddings.store import StoreConfig
    from rag.pipeline import Pipeline, Settings
    from rag.serve.chat import content

    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("RAG_API_KEYS", None)
    dataset = load_dataset(args.dataset)
    questions = [q.question for q in dataset.questions[: args.questions]]
    work = Path(tempfile.mkdtemp(prefix="rag-load-"))
    results: dict[str, Any] = {"machine": f"{os.cpu_count()} cores, shared with other jobs"}
    replicas: list[Replica] = []
    milvus: subprocess.Popen[bytes] | None = None
    try:
        index = work / "index"
        if args.store == "milvus":
            faiss_dir = cached_index(dataset)  # before RAG_STORE=milvus: it opens FAISS
            uri = args.milvus_uri
            if not uri:  # milvus-lite's own gRPC server: one store every replica shares
                port = free_port()
                milvus = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "milvus_lite",
                        "server",
                        "--data-dir",
                        str(work / "milvus"),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                uri = f"http://127.0.0.1:{port}"
                _wait_for_port(port)
            env.update({"RAG_STORE": "milvus", "RAG_MILVUS_URI": uri})
            os.environ.update({"RAG_STORE": "milvus", "RAG_MILVUS_URI": uri})
            embedder = Embedder(Settings.from_env().embedder_path)
            print(f"copying {dataset.name}'s index into Milvus at {uri}", file=sys.stderr)
            t = time.perf_counter()
            # The cached FAISS index's chunks and vectors, not a fresh embedding: the same
            # articles, chunked alike, in a fraction of the time.
            source = Index(faiss_dir, embedder, StoreConfig(kind="faiss"))
            copy_index(source, Index(index, embedder, StoreConfig.from_env()))
            results["milvus_copy_s"] = _round(time.perf_counter() - t)
        else:
            shutil.copytree(cached_index(dataset), index)
        print(f"reference: {len(questions)} questions in process", file=sys.stderr)
        pipeline = Pipeline(index, settings=Settings.from_env())
        pipeline.ask(questions[0])  # load the models
        expected_ask, expected_chat, in_process = {}, {}, []
        for q in questions:
            t = time.perf_counter()
            answer = pipeline.ask(q)
            in_process.append((time.perf_counter() - t) * 1000)
            expected_ask[q], expected_chat[q] = answer.text, content(answer)
        results["in_process_ask_p50_ms"] = _round(percentile(in_process, 50))
        del pipeline

        print(f"starting {args.replicas} replicas", file=sys.stderr)
        replicas = start_replicas(args.replicas, index, env)
        results["rss_mb_before"] = [rss_mb(r.process.pid) for r in replicas]
        results.update(overhead(replicas[0], questions[:10]))
        rows = []
        for n in levels:
            for endpoint in ENDPOINTS:
                expected = expected_ask if endpoint == "/v1/ask" else expected_chat
                print(f"{endpoint} with {n} clients for {args.duration:g} s", file=sys.stderr)
                rows.append(
                    drive(replicas, endpoint, n, args.duration, questions, expected).summary()
                )
        results["levels"] = rows
        results["rss_mb_after"] = [rss_mb(r.process.pid) for r in replicas]
        if len(replicas) > 1:
            results["consistency"] = consistency(replicas[0], replicas[1], questions)
    finally:
        for r in replicas:
            r.process.terminate()
        for r in replicas:
            r.process.wait(30)
        if milvus is not None:
            milvus.terminate()
            milvus.wait(30)
        shutil.rmtree(work, ignore_errors=True)
    print(render(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"{args.replicas} replicas x 1 worker, store {args.store}, {args.duration:g} s per row, "
        f"{args.questions} questions of {args.dataset.name}; {results['machine']}",
        "",
        "| endpoint | clients | answers/s | p50 ms | p95 ms | p99 ms | errors | 429s | differ |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["levels"]:
        lines.append(
            f"| {r['endpoint']} | {r['clients']} | {r['answers_per_s']} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['p99_ms']} | {r['errors']} | {r['429s']} | {r['mismatched']} |"
        )
    lines += [
        "",
        f"in-process ask() p50 {results['in_process_ask_p50_ms']} ms; /v1/ask p50 "
        f"{results['http_ask_p50_ms']} ms; HTTP overhead p50 {results['overhead_p50_ms']} ms",
        f"replica RSS MB before {results['rss_mb_before']}, after {results['rss_mb_after']}",
    ]
    if "consistency" in results:
        c = results["consistency"]
        lines.append(
            f"ingest via replica 1 seen by replica 2 next request: {c['seen_after_ingest']}; "
            f"delete seen: {c['gone_after_delete']} (ingest {c['ingest_ms']} ms; replica 2 "
            f"answered {c['background_answers']} meanwhile)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
