"""Soak over HTTP: many questions to one `rag serve` process; do its memory, descriptors or
latency creep?

    python -m evals.soak_http                       # 2,000 questions, a temporary seed index
    python -m evals.soak_http -n 500 --out soak.json --plot soak.png

Starts `rag serve` (UI mounted, as deployed) on a free loopback port, waits for /readyz,
then asks the pinned seed questions in turn over `POST /v1/ask`, one at a time. Every 100
questions it reads the server's resident memory (RSS) and open descriptors from
/proc/<pid>, and the p50 latency of those 100. "Flat" means the last window is within 5%
of the first for RSS and p50, and descriptors did not grow.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evals.soak import percentile, seed_questions

WINDOW = 100
FLAT = 0.05
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Window:
    questions: int  # answered so far
    rss_mb: float
    fds: int
    p50_ms: float
    p95_ms: float
    load1: float  # the machine's 1-minute load average: latency follows it


@dataclass
class HttpSoakReport:
    questions: int
    seconds: float
    errors: int
    windows: list[Window] = field(default_factory=list)

    def drift(self) -> dict[str, float]:
        """Last window against the first, as a fraction (0.03 = 3% more)."""
        first, last = self.windows[0], self.windows[-1]
        return {
            "rss": last.rss_mb / first.rss_mb - 1,
            "p50": last.p50_ms / first.p50_ms - 1,
            "fds": float(last.fds - first.fds),
        }

    def flat(self) -> bool:
        d = self.drift()
        return abs(d["rss"]) <= FLAT and abs(d["p50"]) <= FLAT and d["fds"] <= 0


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def soak(index_dir: Path, n: int, *, progress: bool = True) -> HttpSoakReport:
    import httpx

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.pop("RAG_API_KEYS", None)
    if not (index_dir / "manifest.json").exists():
        subprocess.run(
            [sys.executable, "-m", "rag.cli", "ingest", str(ROOT / "seeds"), "--index",
             str(index_dir), "-q"],
            env=env, check=True,
        )  # fmt: skip
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--index", str(index_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    questions = seed_questions()
    report = HttpSoakReport(n, 0.0, 0)
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            for _ in range(3000):
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    raise SystemExit(
                        f"rag serve exited: {server.stderr.read() if server.stderr else ''}"
                    )
                time.sleep(0.1)
            client.post("/v1/ask", json={"question": questions[0]})  # a warm process
            latencies: list[float] = []
            started = time.perf_counter()
            for i in range(n):
                t = time.perf_counter()
                try:
                    r = client.post("/v1/ask", json={"question": questions[i % len(questions)]})
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t) * 1000)
                if not ok:
                    report.errors += 1
                if (i + 1) % WINDOW == 0 or i + 1 == n:
                    last = latencies[-WINDOW:]
                    w = Window(
                        i + 1,
                        round(proc_rss_mb(server.pid), 1),
                        proc_fds(server.pid),
                        round(percentile(last, 50), 1),
                        round(percentile(last, 95), 1),
                        round(os.getloadavg()[0], 2),
                    )
                    report.windows.append(w)
                    if progress:
                        print(
                            f"{w.questions:5d} questions, RSS {w.rss_mb:.0f} MB, {w.fds} fds, "
                            f"p50 {w.p50_ms:.0f} ms, p95 {w.p95_ms:.0f} ms, load {w.load1:.1f}",
                            flush=True,
                        )
            report.seconds = round(time.perf_counter() - started, 1)
    finally:
        server.terminate()
        server.wait(30)
    return report


def plot(report: HttpSoakReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [w.questions for w in report.windows]
    fig, axes = plt.subplots(3, 1, figsize=(7, 7), sharex=True)
    series = [
        ([w.rss_mb for w in report.windows], "server RSS (MB)"),
        ([w.fds for w in report.windows], "open descriptors"),
        ([w.p50_ms for w in report.windows], f"p50 of each {WINDOW} (ms)"),
    ]
    for ax, (ys, label) in zip(axes, series, strict=True):
        ax.plot(xs, ys, marker="o")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("questions answered over HTTP")
    fig.suptitle(f"rag serve soak: {report.questions} questions, {report.errors} errors")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.soak_http", description=__doc__)
    parser.add_argument("-n", "--questions", type=int, default=2000)
    parser.add_argument("--index", type=Path, help="index folder (default: seeds, temporary)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--plot", type=Path, help="also plot RSS, descriptors and p50 here")
    args = parser.parse_args(argv)
    if args.questions < 1:
        parser.error("--questions must be at least 1")
    with tempfile.TemporaryDirectory(prefix="soak-http-") as tmp:
        report = soak(args.index or Path(tmp) / "index", args.questions)
    d = report.drift()
    print(
        f"{report.questions} questions in {report.seconds:.0f} s, {report.errors} errors; "
        f"last window against the first: RSS {d['rss']:+.1%}, p50 {d['p50']:+.1%}, "
        f"descriptors {d['fds']:+.0f} -> {'flat' if report.flat() else 'NOT flat'} "
        f"(within {FLAT:.0%})"
    )
    if args.out:
        body = {**asdict(report), "drift": d, "flat": report.flat()}
        args.out.write_text(json.dumps(body, indent=2) + "\n", "utf-8")
    if args.plot:
        plot(report, args.plot)
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
