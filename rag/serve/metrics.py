"""Prometheus metrics of one process: requests by route and status, latency per stage,
queue depth and index size. Each app has its own registry (tests build several apps);
with `--workers N` each worker reports its own numbers, so scrape replicas, not workers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Answers take 0.1-10 s on CPU; retrieval and selection take milliseconds.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
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
        self.queue_waiting = Gauge("rag_queue_waiting", "Questions waiting", registry=r)
        self.queue_running = Gauge("rag_queue_running", "Questions being answered", registry=r)
        self.index_chunks = Gauge("rag_index_chunks", "Chunks in the index", registry=r)
        self.index_documents = Gauge("rag_index_documents", "Articles in the index", registry=r)

    def watch(
        self,
        waiting: Callable[[], int],
        running: Callable[[], int],
        size: Callable[[], tuple[int, int]],
    ) -> None:
        """Gauges read at scrape time. `size` returns (documents, chunks)."""
        self.queue_waiting.set_function(waiting)
        self.queue_running.set_function(running)
        self.index_documents.set_function(lambda: size()[0])
        self.index_chunks.set_function(lambda: size()[1])

    def observe_stages(self, timings: Mapping[str, float]) -> None:
        for stage, ms in timings.items():
            self.stages.labels(stage).observe(ms / 1000)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


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
            self.metrics.latency.labels(name).observe(time.perf_counter() - started)
