"""What `rag` writes to the terminal: status lines, the ingest bar, skipped files, listings.

Progress goes to stderr and only when stderr is a terminal, so piped output and `--json`
stay clean.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from embeddings.embedder import Embedder
from embeddings.loaders import Skipped
from embeddings.types import Document
from rag.types import Citation


class Status:
    """One line on a terminal's stderr saying what is happening, replaced by the next one."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self._shown = False

    def show(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\033[K{text}")
            self.stream.flush()
            self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._shown = False


class ProgressEmbedder(Embedder):
    """The embedder with a chunks/s bar: sentence-transformers' own bar counts batches."""

    GROUP = 256  # chunks per encode call: a bar update about every 5 s on 2 cores

    def __init__(
        self, model_path: str | None = None, *, before_bar: Callable[[], None], **options: Any
    ) -> None:
        super().__init__(model_path, **options)
        self.before_bar = before_bar  # clears the status line the bar replaces

    def encode(
        self, texts: Sequence[str], *, progress: bool = False, documents: bool = False
    ) -> np.ndarray:
        if not progress or not texts:
            return super().encode(texts, documents=documents)
        from tqdm import tqdm

        self.before_bar()
        parts = []
        cols, rows = _screen()
        bar = tqdm(
            total=len(texts),
            unit="chunk",
            desc="embedding",
            file=sys.stderr,
            ncols=cols,
            nrows=rows,
        )
        with bar:
            for i in range(0, len(texts), self.GROUP):
                group = texts[i : i + self.GROUP]
                parts.append(super().encode(group, documents=documents))
                bar.update(len(group))
        return np.concatenate(parts)


def _screen() -> tuple[int, int]:
    """The terminal's columns and rows; 80 x 24 where it reports 0 x 0, as some pseudo-terminals
    do (tqdm then hides the bar as if it were off-screen)."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError):
        return 80, 24
    return size.columns or 80, size.lines or 24


def skipped_lines(skipped: Iterable[Skipped]) -> list[str]:
    """One line per file: the loader reports each bad record of a JSON/JSONL file separately."""
    by_path: dict[str, list[str]] = {}
    for s in skipped:
        by_path.setdefault(s.path, []).append(s.reason)
    lines = []
    for path, reasons in by_path.items():
        if len(reasons) == 1:
            reason = "empty file" if _is_empty(Path(path)) else reasons[0]
            lines.append(f"skipped {path}: {reason}")
        else:
            shown = "; ".join(reasons[:3]) + ("; …" if len(reasons) > 3 else "")
            lines.append(f"skipped {len(reasons)} records in {path}: {shown}")
    return lines


def _is_empty(path: Path) -> bool:
    """An empty file would otherwise be reported by its format ("invalid JSON at line 1")."""
    try:
        return path.is_file() and path.stat().st_size < 4096 and not path.read_bytes().strip()
    except OSError:
        return False


def also_line(citation: Citation) -> str | None:
    """ "also published by SOURCE (url), …" for a cited story other outlets ran too."""
    if not citation.also:
        return None
    outlets = [f"{a.source or a.title}" + (f" ({a.url})" if a.url else "") for a in citation.also]
    return "also published by " + ", ".join(outlets)


@dataclass(frozen=True)
class Listed:
    """One row of `rag list`."""

    doc_id: str
    date: str | None
    title: str
    source: str | None
    chunks: int
    path: str | None
    duplicate_of: str | None = None  # a copy of this story, searched through its canonical

    def line(self) -> str:
        copy = f"  (copy of {self.duplicate_of})" if self.duplicate_of else ""
        return f"{self.doc_id}  {self.date or 'undated':10}  {self.chunks:>3} chunks  " + (
            f"{self.source or '-'}  {self.title}{copy}"
        )

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def listing(docs: Iterable[Document], chunk_counts: dict[str, int]) -> list[Listed]:
    return [
        Listed(
            d.doc_id,
            d.date,
            d.title,
            d.source,
            chunk_counts.get(d.doc_id, 0),
            d.path,
            d.duplicate_of,
        )
        for d in docs
    ]


def ingested_from(doc: Document, target: Path) -> bool:
    """Whether `doc` came from the file `target`, or from a file inside the folder `target`."""
    if not doc.path:
        return False
    source = Path(doc.path).resolve()
    target = target.resolve()
    return source == target or target in source.parents
