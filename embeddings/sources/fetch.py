"""A polite HTTP client for feeds and article pages.

One request at a time per host with a pause between them, conditional requests, bounded
redirects, timeouts, retries with exponential back-off for transient failures, and a size
cap enforced while streaming (a 50 MB page is never held whole in memory).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

__all__ = ["FetchError", "FetchOptions", "Fetcher", "Response"]

# Statuses worth asking again: the server said "later" or broke for a moment.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class FetchError(Exception):
    """A URL could not be fetched; the message is one line for a person."""


@dataclass(frozen=True)
class FetchOptions:
    """How politely and patiently to fetch. Tests shrink the waits to milliseconds."""

    timeout_s: float = 20.0
    retries: int = 2  # extra tries after the first, for 5xx, 429, timeouts, connection errors
    backoff_s: float = 1.0  # first pause before a retry; doubled each time
    host_delay_s: float = 1.0  # pause between two requests to the same host
    max_bytes: int = 5 * 1024 * 1024  # per response body; more is reported, not read
    max_redirects: int = 5
    user_agent: str = "rag-watch/0.1 (+https://github.com/rag-news)"


@dataclass(frozen=True)
class Response:
    """A fetched body, or `not_modified` with no body when the server answered 304."""

    url: str  # after redirects
    status: int
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class _HostGate:
    """Serialises requests per host and spaces them by `delay_s`."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._locks: dict[str, threading.Lock] = {}
        self._last: dict[str, float] = {}
        self._guard = threading.Lock()

    def hold(self, host: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(host, threading.Lock())

    def wait_turn(self, host: str, sleep: Callable[[float], object]) -> None:
        """Called with the host's lock held."""
        wait = self._last.get(host, -1e9) + self.delay_s - time.monotonic()
        if wait > 0:
            sleep(wait)

    def done(self, host: str) -> None:
        self._last[host] = time.monotonic()


class Fetcher:
    """Thread-safe; one per watcher. `sleep` is injectable so a stop request can cut a wait."""

    def __init__(
        self,
        options: FetchOptions | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.options = options or FetchOptions()
        self._sleep = sleep
        self._gate = _HostGate(self.options.host_delay_s)
        # trust_env=False: a proxy from the environment must not see (or break) the requests.
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.options.timeout_s),
            follow_redirects=True,
            max_redirects=self.options.max_redirects,
            trust_env=False,
            headers={"User-Agent": self.options.user_agent},
        )

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
    ) -> Response:
        """GET `url`, conditionally when `etag`/`last_modified` are known; `FetchError` when
        every try failed or the answer cannot be used (4xx, too large, redirect loop)."""
        host = urlsplit(url).netloc.lower()
        if urlsplit(url).scheme not in ("http", "https") or not host:
            raise FetchError(f"not an http(s) URL: {url!r}")
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        cap = max_bytes or self.options.max_bytes
        tries = self.options.retries + 1
        for attempt in range(tries):
            with self._gate.hold(host):
                self._gate.wait_turn(host, self._sleep)
                try:
                    return self._get_once(url, headers, cap)
                except _TransientError as exc:
                    if attempt + 1 == tries:
                        raise FetchError(f"{exc} (after {tries} tries)") from None
                finally:
                    self._gate.done(host)
            if self._sleep(self.options.backoff_s * 2**attempt) is True:  # Event.wait: stopped
                raise FetchError("stopped before the next try")
        raise AssertionError("unreachable")

    def _get_once(self, url: str, headers: dict[str, str], cap: int) -> Response:
        try:
            with self._client.stream("GET", url, headers=headers) as r:
                if r.status_code in RETRY_STATUSES:
                    raise _TransientError(f"HTTP {r.status_code} {r.reason_phrase}".rstrip())
                if r.status_code == 304:
                    return _response(r, b"")
                if r.status_code >= 400:
                    raise FetchError(f"HTTP {r.status_code} {r.reason_phrase}".rstrip())
                declared = r.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise FetchError(_too_large(int(declared), cap))
                body = bytearray()
                for part in r.iter_bytes():
                    body += part
                    if len(body) > cap:
                        raise FetchError(_too_large(None, cap))
                return _response(r, bytes(body))
        except httpx.TooManyRedirects:
            raise FetchError(
                f"more than {self.options.max_redirects} redirects (a redirect loop?)"
            ) from None
        except httpx.TimeoutException:
            raise _TransientError(f"no answer within {self.options.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise _TransientError(f"connection failed: {exc or exc.__class__.__name__}") from None
        except httpx.InvalidURL as exc:
            raise FetchError(f"invalid URL: {exc}") from None


class _TransientError(Exception):
    """A failure that may pass: retried with back-off."""


def _response(r: httpx.Response, body: bytes) -> Response:
    return Response(
        url=str(r.url),
        status=r.status_code,
        body=body,
        content_type=r.headers.get("content-type", "").split(";")[0].strip().lower(),
        etag=r.headers.get("etag"),
        last_modified=r.headers.get("last-modified"),
    )


def _too_large(size: int | None, cap: int) -> str:
    got = f"{size / 1e6:.1f} MB" if size else "more than that"
    return f"larger than the {cap / 1e6:g} MB cap ({got}); not read"
