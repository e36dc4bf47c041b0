"""A round's outcome per source, and the one line the watcher prints for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from embeddings.index import IngestReport
from embeddings.types import Document

__all__ = ["Sink", "SourceReport", "now_iso"]


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Sink(Protocol):
    """Where a source's articles go. `commit` returns once the index write has committed;
    only then may the source update its seen-state and call `save`."""

    def stop_requested(self) -> bool: ...

    def commit(self, docs: Sequence[Document], deletions: Sequence[str] = ()) -> IngestReport: ...

    def existing(self, doc_id: str) -> Document | None: ...

    def save(self) -> None: ...


@dataclass(frozen=True)
class SourceReport:
    """What one round did to one source."""

    source: str  # the folder path or feed URL as given
    kind: str  # "feed" | "folder"
    name: str  # feed title or host; folder path
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    error: str | None = None  # the source as a whole failed this round
    problems: tuple[str, ...] = ()  # entries or files that failed, or notes, one line each
    finished_at: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        """One line: `name: 2 new, 1 updated, 5 unchanged, 0 removed, 1 failed (why; …)`."""
        if self.error:
            return f"{self.name}: failed: {self.error}"
        counts = (
            f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.removed} removed, {self.failed} failed"
        )
        why = f" ({'; '.join(self.problems)})" if self.problems else ""
        return f"{self.name}: {counts}{why}"

    @classmethod
    def counted(
        cls, source: str, kind: str, name: str, counts: dict[str, int], problems: list[str]
    ) -> SourceReport:
        """A report from a round's tallies (keys: new, updated, unchanged, removed, failed)."""
        return cls(
            source,
            kind,
            name,
            new=counts.get("new", 0),
            updated=counts.get("updated", 0),
            unchanged=counts.get("unchanged", 0),
            removed=counts.get("removed", 0),
            failed=counts.get("failed", 0),
            problems=tuple(problems),
            finished_at=now_iso(),
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "finished_at": self.finished_at,
            "new": self.new,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "failed": self.failed,
            "error": self.error,
            "problems": list(self.problems),
        }
