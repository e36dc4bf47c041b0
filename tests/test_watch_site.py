"""A small web site on 127.0.0.1 for the watcher's tests, and the polite client's own tests.

`Site` serves what a test writes into it (feeds, pages) plus misbehaviours on request: a
hang, a redirect loop, a 50 MB page produced on the fly, statuses that fail N times first.
It answers conditional requests like a real server (ETag, Last-Modified -> 304) and logs
every request, so tests can check what the watcher asked for and when.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from embeddings.sources.fetch import Fetcher, FetchError, FetchOptions

LAST_MODIFIED = "Mon, 30 Nov 2026 08:00:00 GMT"
FAST = FetchOptions(timeout_s=1.0, retries=2, backoff_s=0.01, host_delay_s=0.0)


@dataclass
class Page:
    body: bytes = b""
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    fail_first: int = 0  # answer 500 this many times before the real answer
    hang: bool = False  # accept, then never answer
    redirect_to: str | None = None
    stream_bytes: int = 0  # a body this large, produced on the fly (no Content-Length)
    served: int = 0


@dataclass
class Hit:
    path: str
    at: float
    headers: dict[str, str]
    status: int = 0


@dataclass
class Site:
    """Routes by path; `url(path)` is the address to give the watcher."""

    port: int = 0
    pages: dict[str, Page] = field(default_factory=dict)
    log: list[Hit] = field(default_factory=list)
    active: int = 0
    max_active: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path: str, body: str | bytes, **kw: object) -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.pages[path] = Page(body=data, **kw)  # type: ignore[arg-type]

    def hits(self, path: str) -> list[Hit]:
        return [h for h in self.log if h.path == path]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            hit = Hit(self.path, time.monotonic(), {k.lower(): v for k, v in self.headers.items()})
            with site.lock:
                site.log.append(hit)
                site.active += 1
                site.max_active = max(site.max_active, site.active)
            try:
                hit.status = self._answer(hit)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with site.lock:
                    site.active -= 1

        def _answer(self, hit: Hit) -> int:
            page = site.pages.get(self.path.split("?")[0])
            if page is None:
                return self._send(404, b"not found", "text/plain")
            page.served += 1
            if page.hang:
                site.release.wait(30)
                return 0
            if page.served <= page.fail_first:
                return self._send(500, b"oops", "text/plain")
            if page.redirect_to:
                self.send_response(302)
                self.send_header("Location", page.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return 302
            if page.stream_bytes:
                self.send_response(200)
                self.send_header("Content-Type", page.content_type)
                self.send_header("Connection", "close")
                self.end_headers()
                chunk = b"<p>" + b"x" * 65_530 + b"</p>"
                sent = 0
                while sent < page.stream_bytes:
                    self.wfile.write(chunk)
                    sent += len(chunk)
                return 200
            if page.status != 200:
                return self._send(page.status, page.body, page.content_type)
            etag = '"' + hashlib.sha1(page.body).hexdigest()[:12] + '"'
            if hit.headers.get("if-none-match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return 304
            return self._send(200, page.body, page.content_type, etag)

        def _send(self, status: int, body: bytes, ctype: str, etag: str | None = None) -> int:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if etag:
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", LAST_MODIFIED)
            self.end_headers()
            self.wfile.write(body)
            return status

    return Handler


@contextlib.contextmanager
def serve_site() -> Iterator[Site]:
    """A fresh site, bound to 127.0.0.1 only, for the length of the block."""
    s = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(s))
    server.daemon_threads = True
    s.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield s
    finally:
        s.release.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as s:
        yield s


# ---- the polite client ------------------------------------------------------------------------


def test_conditional_requests_get_304_and_no_body(site: Site) -> None:
    site.put("/a.html", "<p>hello</p>")
    f = Fetcher(FAST)
    first = f.get(site.url("/a.html"))
    assert first.status == 200 and first.body == b"<p>hello</p>" and first.etag
    again = f.get(site.url("/a.html"), etag=first.etag, last_modified=first.last_modified)
    assert again.not_modified and again.body == b""
    assert site.hits("/a.html")[1].headers["if-none-match"] == first.etag
    assert site.hits("/a.html")[1].headers["if-modified-since"] == LAST_MODIFIED


def test_one_request_at_a_time_per_host_with_a_pause(site: Site) -> None:
    for i in range(4):
        site.put(f"/{i}.html", f"<p>{i}</p>")
    f = Fetcher(FetchOptions(timeout_s=2, host_delay_s=0.2, retries=0))
    threads = [threading.Thread(target=f.get, args=(site.url(f"/{i}.html"),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times = sorted(h.at for h in site.log)
    assert site.max_active == 1
    assert all(b - a >= 0.18 for a, b in itertools.pairwise(times))


def test_500_is_retried_with_back_off_then_succeeds(site: Site) -> None:
    site.put("/flaky.html", "<p>ok</p>", fail_first=2)
    r = Fetcher(FAST).get(site.url("/flaky.html"))
    assert r.status == 200 and len(site.hits("/flaky.html")) == 3


def test_404_is_not_retried_and_500_gives_up_after_the_retries(site: Site) -> None:
    f = Fetcher(FAST)
    with pytest.raises(FetchError, match="HTTP 404"):
        f.get(site.url("/missing.html"))
    assert len(site.hits("/missing.html")) == 1
    site.put("/down.html", "x", fail_first=99)
    with pytest.raises(FetchError, match=r"HTTP 500 .*after 3 tries"):
        f.get(site.url("/down.html"))
    assert len(site.hits("/down.html")) == 3


def test_a_hanging_server_times_out(site: Site) -> None:
    site.put("/hang.html", "", hang=True)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"no answer within 0.3 s \(after 2 tries\)"):
        Fetcher(FetchOptions(timeout_s=0.3, retries=1, backoff_s=0.01, host_delay_s=0)).get(
            site.url("/hang.html")
        )
    assert time.monotonic() - started < 3


def test_a_50_mb_page_is_cut_at_the_cap_without_reading_it_all(site: Site) -> None:
    site.put("/huge.html", "", stream_bytes=50_000_000)
    started = time.monotonic()
    with pytest.raises(FetchError, match="larger than the 1 MB cap"):
        Fetcher(FetchOptions(max_bytes=1_000_000, retries=0, host_delay_s=0)).get(
            site.url("/huge.html")
        )
    assert time.monotonic() - started < 5


def test_a_redirect_loop_is_bounded(site: Site) -> None:
    site.put("/a", "", redirect_to="/b")
    site.put("/b", "", redirect_to="/a")
    with pytest.raises(FetchError, match="more than 5 redirects"):
        Fetcher(FAST).get(site.url("/a"))
    assert len(site.log) == 6
