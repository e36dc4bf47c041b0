"""Rounds over watched sources: each source's changes go into the index, then into the
seen-state, then one report line. Used by `rag watch` and by `rag serve --watch`."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from embeddings.errors import IngestError, RagError
from embeddings.index import Index, IngestReport
from embeddings.sources.feeds import poll_feed
from embeddings.sources.fetch import Fetcher, FetchOptions
from embeddings.sources.folders import poll_folder
from embeddings.sources.report import SourceReport, now_iso
from embeddings.sources.state import SeenState, watcher_lock
from embeddings.types import Document

__all__ = ["RoundReport", "Source", "Watcher", "parse_every", "parse_sources"]

log = logging.getLogger("embeddings")
_EVERY_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Source:
    kind: str  # "feed" | "folder"
    key: str  # the feed URL, or the folder's absolute path


@dataclass(frozen=True)
class RoundReport:
    started_at: str
    sources: tuple[SourceReport, ...]

    @property
    def all_failed(self) -> bool:
        return bool(self.sources) and not any(s.ok for s in self.sources)


def parse_sources(given: Sequence[str]) -> list[Source]:
    """Feed URLs and folders, checked before anything loads; `IngestError` says which is
    wrong and what to give instead."""
    out: list[Source] = []
    for raw in given:
        scheme = urlsplit(raw).scheme.lower()
        if scheme in ("http", "https"):
            if not urlsplit(raw).netloc:
                raise IngestError(f"{raw!r} is not a feed URL: it names no host")
            out.append(Source("feed", raw))
        elif "://" in raw:
            raise IngestError(f"cannot watch {raw!r}: give an http(s) feed URL or a folder")
        else:
            path = Path(raw).expanduser().absolute()
            if not path.exists():
                raise IngestError(f"no such folder: {raw}")
            if not path.is_dir():
                raise IngestError(f"{raw} is a file: watch its folder, or `rag ingest` it once")
            out.append(Source("folder", str(path)))
    if len({s.key for s in out}) != len(out):
        raise IngestError("a source is given twice")
    return out


def parse_every(value: str) -> float:
    """Seconds from "90", "30s", "10m", "2h" or "1d"."""
    m = _EVERY_RE.fullmatch(value)
    seconds = float(m.group(1)) * _UNIT_S[m.group(2)] if m else 0.0
    if seconds < 1:
        raise IngestError(f"--every must be a duration such as 30s, 10m or 1h, not {value!r}")
    return seconds


class _IndexSink:
    """The index as a source module sees it; `lock` is shared with the server's uploads."""

    def __init__(
        self,
        index: Index,
        state: SeenState,
        stop: threading.Event,
        lock: AbstractContextManager[object],
    ) -> None:
        self.index, self.state, self.stop, self.lock = index, state, stop, lock

    def stop_requested(self) -> bool:
        return self.stop.is_set()

    def commit(self, docs: Sequence[Document], deletions: Sequence[str] = ()) -> IngestReport:
        with self.lock:
            report = self.index.ingest(docs) if docs else IngestReport()
            if deletions:  # one commit for all: a deleted folder is one new generation
                self.index.delete_many(deletions)
        return report

    def existing(self, doc_id: str) -> Document | None:
        return self.index.document(doc_id)

    def save(self) -> None:
        self.state.save()


class Watcher:
    """Follows `sources` into `index`. One per index (a lock file in the index folder)."""

    def __init__(
        self,
        index: Index,
        sources: Sequence[Source],
        *,
        fetch: FetchOptions | None = None,
        lock: AbstractContextManager[object] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.index = index
        self.sources = list(sources)
        self.stop = stop or threading.Event()
        self.fetcher = Fetcher(fetch, sleep=self.stop.wait)  # a stop cuts any pause short
        self._lock = lock or nullcontext()

    def run_round(self) -> RoundReport:
        """Every source once; a failing source is reported and the others still run."""
        started = now_iso()
        state = SeenState.load(self.index.path)  # re-read: it may have been moved away
        sink = _IndexSink(self.index, state, self.stop, self._lock)
        reports = []
        for source in self.sources:
            if self.stop.is_set():
                break
            part = state.source(source.key)
            try:
                if source.kind == "feed":
                    report = poll_feed(source.key, part, self.fetcher, sink)
                else:
                    report = poll_folder(Path(source.key), part, sink)
            except RagError as exc:  # the index itself could not be written: no source can
                report = SourceReport(
                    source.key, source.kind, str(part.get("name") or source.key),
                    error=str(exc), finished_at=now_iso(),
                )  # fmt: skip
            part["last_round"] = report.to_state()
            state.save()
            reports.append(report)
        return RoundReport(started, tuple(reports))

    def rounds(self, every_s: float, once: bool = False) -> Iterator[RoundReport]:
        """Rounds until `stop` is set (or one, with `once`), holding the index's watcher lock."""
        with watcher_lock(self.index.path):
            while not self.stop.is_set():
                yield self.run_round()
                if once or self.stop.wait(every_s):
                    return

    def close(self) -> None:
        self.stop.set()
        self.fetcher.close()


def start_background(
    make_index: Callable[[], Index],
    sources: Sequence[Source],
    every_s: float,
    *,
    lock: AbstractContextManager[object] | None = None,
    fetch: FetchOptions | None = None,
) -> tuple[threading.Thread, threading.Event]:
    """The watcher in a daemon thread (`rag serve --watch`); set the event to stop it. Errors
    are logged and the next round tries again, so the server never loses its watcher."""
    stop = threading.Event()

    def loop() -> None:
        try:
            watcher = Watcher(make_index(), sources, fetch=fetch, lock=lock, stop=stop)
        except Exception as exc:  # e.g. the embedder cannot load: said once, server stays up
            log.error("watch: cannot start: %s", exc)
            return
        try:
            while not stop.is_set():
                try:
                    for report in watcher.rounds(every_s):
                        for s in report.sources:
                            (log.warning if not s.ok or s.failed else log.info)(
                                "watch: %s", s.line()
                            )
                except RagError as exc:
                    log.error("watch: %s", exc)
                except Exception as exc:  # a bug must not end the watching for good
                    log.exception("watch: round failed: %s", exc)
                stop.wait(every_s)
        finally:
            watcher.close()

    thread = threading.Thread(target=loop, name="rag-watch", daemon=True)
    thread.start()
    return thread, stop
