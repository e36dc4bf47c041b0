"""What the watcher has seen, kept in the index folder as one JSON file.

The file is replaced atomically (temp file, fsync, os.replace, fsync of the folder) and only
after the index write it describes has committed: a kill in between costs a re-fetch of
what the index already holds (an unchanged hash, so no new embedding), never an article.
Servers read it to answer GET /v1/sources, so every worker sees the same state.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from embeddings.errors import IndexUnavailableError, IngestError

__all__ = [
    "LOCK_FILE",
    "STATE_FILE",
    "RoundSummary",
    "SeenState",
    "SourceView",
    "newest_articles",
    "read_sources",
    "watcher_lock",
]

STATE_FILE = "watch-state.json"
LOCK_FILE = ".watch.lock"
VERSION = 1


@dataclass(frozen=True)
class RoundSummary:
    """A source's last round as stored (and shown by GET /v1/sources)."""

    finished_at: str  # ISO time, UTC
    new: int
    updated: int
    unchanged: int
    removed: int
    failed: int
    error: str | None  # the source as a whole failed (feed unreachable, folder gone)
    problems: tuple[str, ...]  # per-entry or per-file failures, one line each

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RoundSummary:
        return cls(
            finished_at=str(d.get("finished_at", "")),
            new=int(d.get("new", 0)),
            updated=int(d.get("updated", 0)),
            unchanged=int(d.get("unchanged", 0)),
            removed=int(d.get("removed", 0)),
            failed=int(d.get("failed", 0)),
            error=d.get("error"),
            problems=tuple(d.get("problems", ())),
        )


@dataclass(frozen=True)
class SourceView:
    """One watched source as the API and UI show it."""

    source: str
    kind: str  # "feed" | "folder"
    name: str
    articles: int
    last_round: RoundSummary | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class SeenState:
    """The whole state: `sources[key]` is a plain dict owned by that source's module."""

    def __init__(self, path: Path, sources: dict[str, dict[str, Any]]) -> None:
        self.path = path
        self.sources = sources

    @classmethod
    def load(cls, index_dir: Path) -> SeenState:
        """An unreadable state file is an error, not an empty state: starting over would
        re-fetch every feed and forget which folder files were deleted."""
        path = Path(index_dir) / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path, {})
        except (OSError, ValueError) as exc:
            raise IndexUnavailableError(
                f"cannot read the watch state {path}: {exc}; move it away to start over "
                "(articles already indexed stay)"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("sources"), dict):
            raise IndexUnavailableError(
                f"{path} is not a watch state file; move it away to start over"
            )
        return cls(path, data["sources"])

    def source(self, key: str) -> dict[str, Any]:
        return self.sources.setdefault(key, {})

    def save(self) -> None:
        data = json.dumps({"version": VERSION, "sources": self.sources}, ensure_ascii=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".watch-state-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o644)  # as readable as the index beside it (mkstemp gives 0600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def read_sources(index_dir: Path) -> list[SourceView]:
    """The watched sources of an index, from its state file (empty when never watched)."""
    views = []
    for key, src in SeenState.load(index_dir).sources.items():
        last = src.get("last_round")
        views.append(
            SourceView(
                source=key,
                kind=str(src.get("kind", "")),
                name=str(src.get("name") or key),
                articles=len(src.get("entries") or src.get("files") or {}),
                last_round=RoundSummary.from_dict(last) if isinstance(last, dict) else None,
            )
        )
    return views


def newest_articles(index_dir: Path, limit: int = 20) -> list[dict[str, str | None]]:
    """The articles the watcher added most recently: title, source, date, url, seen_at."""
    rows: list[dict[str, str | None]] = []
    for key, src in SeenState.load(index_dir).sources.items():
        folder_articles = [
            a for f in (src.get("files") or {}).values() for a in f.get("articles", ())
        ]
        for entry in [*(src.get("entries") or {}).values(), *folder_articles]:
            rows.append(
                {
                    "title": entry.get("title"),
                    "source": src.get("name") or key,
                    "date": entry.get("date"),
                    "url": entry.get("url"),
                    "seen_at": entry.get("seen_at"),
                }
            )
    rows.sort(key=lambda r: (r["seen_at"] or "", r["date"] or ""), reverse=True)
    return rows[:limit]


@contextlib.contextmanager
def watcher_lock(index_dir: Path) -> Iterator[None]:
    """One watcher per index: a second `rag watch` (or serve --watch) would race the state."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK_FILE, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IngestError(
                f"another watcher is already following sources into {index_dir}; stop it "
                "first (one watcher per index)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
