"""`rag serve --workers 2`: one /metrics for the whole server, whichever worker answers."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_run import ROOT, running_server

STATS_OK = 'rag_requests_total{route="/v1/stats",status="200"}'


def _workers(text: str) -> dict[str, float]:
    """pid -> requests that worker has handled, from rag_worker_requests."""
    pairs = re.findall(r'^rag_worker_requests\{pid="(\d+)"\} ([\d.]+)$', text, re.M)
    return {pid: float(n) for pid, n in pairs}


def _total(text: str, series: str) -> float:
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(series)]
    assert len(values) == 1, f"{series}: {values}"
    return values[0]


@pytest.fixture
def two_workers(seed_index_dir: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    index = tmp_path / "index"
    shutil.copytree(seed_index_dir, index)
    temp = tmp_path / "tmp"  # where `rag serve` makes its metrics folder
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TMPDIR": str(temp)}
    for name in ("RAG_API_KEYS", "PROMETHEUS_MULTIPROC_DIR", "RAG_INDEX_DIR"):
        env.pop(name, None)
    command = ["serve", "--workers", "2", "--no-ui", "--index", str(index)]
    with running_server(command, env, ready="/healthz") as (url, proc):
        yield url, temp
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert list(temp.iterdir()) == [], "the metrics folder is removed at exit"


def test_two_workers_export_one_consistent_metrics(two_workers: tuple[str, Path]) -> None:
    url, temp = two_workers
    (folder,) = temp.iterdir()
    assert folder.name.startswith("rag-metrics-") and folder.stat().st_mode & 0o077 == 0
    # requests until both workers have answered some (the kernel picks the worker)
    sent, seen = 0, {}
    while len(seen) < 2 and sent < 400:
        for _ in range(10):
            assert httpx.get(f"{url}/v1/stats", timeout=30).status_code == 200
            sent += 1
        seen = {p: n for p, n in _workers(httpx.get(f"{url}/metrics").text).items() if n > 0}
    assert len(seen) == 2, f"one worker answered all {sent} requests: {seen}"

    # Scrapes until each worker has answered one; a scrape's own request is counted after
    # it is answered, so the pid whose count grew by the next scrape is the one that served
    # it. Every scrape must show the same total, the sum over both workers.
    served_by: set[str] = set()
    before = _workers(httpx.get(f"{url}/metrics").text)
    for _ in range(60):
        time.sleep(0.05)
        text = httpx.get(f"{url}/metrics").text
        assert _total(text, STATS_OK) == sent
        assert _total(text, "rag_queue_running") == 0
        assert _total(text, "rag_index_chunks") > 0
        now = _workers(text)
        served_by |= {p for p, n in now.items() if n > before.get(p, 0)}
        before = now
        if len(served_by) == 2:
            break
    assert len(served_by) == 2, f"every scrape went to one worker: {served_by}"
