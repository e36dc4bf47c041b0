"""Admission control: a bounded queue in front of the generator, and a request body cap.

Questions run on a dedicated pool of `concurrency` threads; at most `queue_size` more may wait,
and fewer when the measured answer time says they would time out waiting. Past that a request
is refused at once with 429 and a Retry-After estimate, so a burst never piles up unbounded
work (or memory) behind a 2-core generator.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.serve.errors import ApiError, error_body

T = TypeVar("T")
_END = object()


class GenerationQueue:
    """Runs question jobs `concurrency` at a time with at most `queue_size` waiting."""

    def __init__(self, concurrency: int, queue_size: int, timeout_s: float) -> None:
        self.concurrency, self.queue_size, self.timeout_s = concurrency, queue_size, timeout_s
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="rag-answer")
        self._lock = threading.Lock()
        self._pending = 0  # admitted and not finished: running + waiting
        self._running = 0
        self._avg_s = 1.0  # moving average of a job's duration, for Retry-After
        # Called after `waiting` or `running` changes: with --workers N the metrics gauges
        # are files shared by the workers, set on change rather than read at scrape time.
        self.on_change: Callable[[], None] = lambda: None

    @property
    def waiting(self) -> int:
        with self._lock:
            return self._pending - self._running

    @property
    def running(self) -> int:
        with self._lock:
            return self._running

    def _admit(self) -> None:
        """Takes a place, or refuses with 429 when the queue is full or when the wait it
        would face (measured job time x questions ahead) would outlast the timeout anyway:
        under a 2-core load at ~6 s per answer, 8 places per replica turned into 504s after
        60 s of waiting instead of an immediate 429 (evals.load, README)."""
        with self._lock:
            ahead = self._pending - self.concurrency + 1  # > 0: it would have to wait
            # x1.5: answer times vary; by the mean alone, 16 clients on 2 replicas still
            # saw 10 of 88 questions time out (evals.load, 2026-11-29)
            expected_s = 1.5 * self._avg_s * (max(0, ahead) / self.concurrency + 1)
            full = self._pending >= self.concurrency + self.queue_size
            if full or (ahead > 0 and expected_s > self.timeout_s):
                retry = max(1, math.ceil(self._avg_s * max(1, ahead) / self.concurrency))
                raise ApiError(
                    429,
                    f"too many questions in flight ({self._pending}); retry in {retry} s",
                    "rate_limit_error",
                    {"Retry-After": str(retry)},
                )
            self._pending += 1
        self.on_change()

    def _wrap(self, fn: Callable[[], T]) -> Callable[[], T]:
        def job() -> T:
            started = time.perf_counter()
            with self._lock:
                self._running += 1
            self.on_change()
            try:
                return fn()
            finally:
                took = time.perf_counter() - started
                with self._lock:
                    self._running -= 1
                    self._pending -= 1
                    self._avg_s = 0.8 * self._avg_s + 0.2 * took
                self.on_change()

        return job

    def _cancelled(self, future: Future[Any]) -> None:
        if future.cancel():  # never started: its slot in the queue is free again
            with self._lock:
                self._pending -= 1
            self.on_change()

    def _timeout(self) -> ApiError:
        return ApiError(
            504, f"no answer within {self.timeout_s:g} s; try again later", "timeout_error"
        )

    async def run(self, fn: Callable[[], T]) -> T:
        """`fn()` on the pool; 429 when the queue is full, 504 past the timeout (a job that
        has started cannot be interrupted: it finishes and frees its slot afterwards)."""
        self._admit()
        future = self._pool.submit(self._wrap(fn))
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except asyncio.TimeoutError:
            self._cancelled(future)
            raise self._timeout() from None

    async def stream(self, make: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
        """Items of `make()` as they come, produced on the pool. The first item is awaited
        before this returns, so errors before any output still get their own status code."""
        self._admit()
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                iterator = make()
                for item in iterator:
                    loop.call_soon_threadsafe(items.put_nowait, item)
                    if stop.is_set():  # the client went away
                        break
                close = getattr(iterator, "close", None)
                if close:
                    close()
            except BaseException as exc:
                loop.call_soon_threadsafe(items.put_nowait, exc)
            loop.call_soon_threadsafe(items.put_nowait, _END)

        future = self._pool.submit(self._wrap(produce))
        deadline = loop.time() + self.timeout_s

        async def next_item() -> Any:
            try:
                item = await asyncio.wait_for(items.get(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                stop.set()
                self._cancelled(future)
                raise self._timeout() from None
            if isinstance(item, BaseException):
                raise item
            return item

        first = await next_item()

        async def rest() -> AsyncIterator[T]:
            try:
                item = first
                while item is not _END:
                    yield item
                    item = await next_item()
            finally:
                stop.set()

        return rest()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class BodyLimit:
    """ASGI middleware: 413 for a body over its route's cap, declared or sent chunked.

    `caps` maps a path prefix to its own cap (uploads take more than questions); paths
    under `skip` (the Gradio UI, which has its own upload limit) pass untouched. A chunked
    body is read (at most cap bytes) before the app sees it, so the app never runs on a
    request that is then cut off.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        *,
        caps: dict[str, int] | None = None,
        skip: tuple[str, ...] = (),
    ) -> None:
        self.app, self.max_bytes, self.caps, self.skip = app, max_bytes, caps or {}, skip

    def _cap(self, path: str) -> int:
        return next((c for p, c in self.caps.items() if path.startswith(p)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(self.skip):
            await self.app(scope, receive, send)
            return
        cap = self._cap(path)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > cap:
                await _reject(send, cap)
                return
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > cap:
                await _reject(send, cap)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


async def _reject(send: Send, cap: int) -> None:
    body = json.dumps(
        error_body(f"request body is larger than {cap} bytes", "request_too_large")
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
