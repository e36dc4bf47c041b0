"""Prometheus metrics: requests by route and status, latency per stage, queue depth and
index size. Each app has its own registry (tests build several apps).

With `rag serve --workers N` each worker writes its values to files in a private folder
(prometheus_client's multiprocess mode, PROMETHEUS_MULTIPROC_DIR, set up by `rag serve`)
and whichever worker answers a scrape reads them all: counters and histograms are summed
over workers (exited ones included, so totals never go back), queue gauges are summed over
live workers, index sizes are the most recent any worker saw. Gauges are set when their
value changes, since `Gauge.set_function` cannot be read from another process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Answers take 0.1-10 s on CPU; retrieval and selection take milliseconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        """`multiprocess_dir`: the folder shared by `rag serve`'s workers (None: one process);
        prometheus_client must already have found it in PROMETHEUS_MULTIPROC_DIR at import."""
        self.multiprocess_dir = multiprocess_dir
        self._sources: tuple[Callable[[], int], Callable[[], int], Callable[[], tuple[int, int]]]
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rag_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "rag_request_seconds", "HTTP request latency", ["route"], buckets=_BUCKETS, registry=r
        )
        self.stages = Histogram(
            "rag_stage_seconds",
            "Time per answer stage (retrieve, select, answer, total...)",
            ["stage"],
            buckets=_BUCKETS,
            registry=r,
        )
        # The modes matter with --workers N only: queues add up over live workers, and the
        # index size is the latest any worker read (all read the same index).
        self.queue_waiting = Gauge(
            "rag_queue_waiting", "Questions waiting", registry=r, multiprocess_mode="livesum"
        )
        self.queue_running = Gauge(
            "rag_queue_running", "Questions being answered", registry=r, multiprocess_mode="livesum"
        )
        self.index_chunks = Gauge(
            "rag_index_chunks",
            "Chunks in the index",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.index_documents = Gauge(
            "rag_index_documents",
            "Articles in the index",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.worker_requests = Gauge(
            "rag_worker_requests",
            "Requests handled by each live worker process (a pid label with --workers N)",
            registry=r,
            multiprocess_mode="liveall",
        )

    def watch(
        self,
        waiting: Callable[[], int],
        running: Callable[[], int],
        size: Callable[[], tuple[int, int]],
    ) -> None:
        """Where the gauges come from. `size` returns (documents, chunks). One process reads
        them at scrape time; workers call `sample_queue` on each change (GenerationQueue's
        `on_change`) and sample the index size when they answer a scrape."""
        self._sources = (waiting, running, size)
        if self.multiprocess_dir is None:
            self.queue_waiting.set_function(waiting)
            self.queue_running.set_function(running)
            self.index_documents.set_function(lambda: size()[0])
            self.index_chunks.set_function(lambda: size()[1])

    def sample_queue(self) -> None:
        if self.multiprocess_dir is not None:
            self.queue_waiting.set(self._sources[0]())
            self.queue_running.set(self._sources[1]())

    def process_exited(self) -> None:
        """This worker's live gauges leave the shared totals (its counters stay in them)."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), str(self.multiprocess_dir))

    def observe_stages(self, timings: Mapping[str, float]) -> None:
        for stage, ms in timings.items():
            self.stages.labels(stage).observe(ms / 1000)

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        documents, chunks = self._sources[2]()
        self.index_documents.set(documents)
        self.index_chunks.set(chunks)
        _forget_dead_workers(self.multiprocess_dir)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))
        return generate_latest(registry), CONTENT_TYPE_LATEST


def _forget_dead_workers(folder: Path) -> None:
    """`mark_process_dead` for workers that exited without saying so (killed, crashed): uvicorn
    starts a replacement, and the dead one's queue gauges must not count on."""
    pids = {int(p.stem.rsplit("_", 1)[1]) for p in folder.glob("gauge_live*_*.db")}
    for pid in pids - {os.getpid()}:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            mark_process_dead(pid, str(folder))
        except PermissionError:
            pass  # alive, under another user


class RequestMetrics:
    """ASGI middleware counting requests by their route template (not the raw path, which
    would give every doc id its own series). Streams are timed until their last byte."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, skip: tuple[str, ...] = ()) -> None:
        self.app, self.metrics, self.skip = app, metrics, skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).startswith(self.skip):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(name, str(status)).inc()
            self.metrics.worker_requests.inc()
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)
