"""Atomic, crash-safe generations of an index directory: manifest, swap and locks.

Layout (format 2; the store decides what the files in the store folder are)::

    manifest.json        format, version, generation, id counter, the files that make it up
    gen-000001/          the store folder: files are immutable once a manifest names them,
                         except the store's own in-place transactional database
    .lock                serialises writers across processes
    .merge.lock          held by whoever is merging, so leftovers of dead mergers are known

A change writes its new files beside the current ones, makes them durable, then swaps
`manifest.json` with one `os.replace`: a crash at any point leaves the previous manifest
and everything it names readable. Format 1 (every change a whole new `gen-N` folder) is
still read: its current folder becomes the store folder.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from embeddings.errors import IndexUnavailableError

FORMAT = "rag-index"
VERSION = 2
READABLE = (1, 2)  # format 1: one folder per generation, read as a single segment
MANIFEST = "manifest.json"


def rebuild_hint(path: Path) -> str:
    return f"delete {path} and rebuild it with `rag ingest PATH --index {path}`"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


def write_durably(folder: Path, name: str, write: Callable[[Path], Any]) -> None:
    """Writes `folder/name` under a temporary name first, fsyncs it and renames it, so the
    name only ever holds a whole file (a killed writer leaves a `.tmp-w-*` behind)."""
    tmp = folder / f".tmp-w-{name}"
    write(tmp)
    fsync_file(tmp)
    os.replace(tmp, folder / name)


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Generations:
    """The manifest of one index directory and the commit protocol around it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest: dict[str, Any] = self.empty()
        self._seen: tuple[int, int, int] | None = None  # stat of the manifest last read
        self._held = 0  # writer() depth in this process (callers serialise with their lock)

    @staticmethod
    def empty() -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "generation": 0, "next_id": 1}

    @property
    def current_dir(self) -> Path | None:
        name = self.manifest.get("generation_dir")
        return self.path / name if name else None

    def read(self) -> dict[str, Any] | None:
        """The manifest on disk, None when there is no index yet; raises if it is unusable."""
        if self.path.exists() and not self.path.is_dir():
            raise IndexUnavailableError(f"index path {self.path} is a file, not a directory")
        manifest_path = self.path / MANIFEST
        if not manifest_path.exists():
            if self.path.is_dir() and any(p.name.startswith("gen-") for p in self.path.iterdir()):
                raise IndexUnavailableError(
                    f"index at {self.path} is damaged (manifest missing); {rebuild_hint(self.path)}"
                )
            return None
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexUnavailableError(
                f"index at {self.path} is damaged (unreadable manifest: {exc.__class__.__name__}); "
                f"{rebuild_hint(self.path)}"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise IndexUnavailableError(
                f"{self.path} does not hold a rag index; {rebuild_hint(self.path)}"
            )
        if manifest.get("version") not in READABLE:
            raise IndexUnavailableError(
                f"index at {self.path} has format version {manifest.get('version')}, this "
                f"program reads version {VERSION}; {rebuild_hint(self.path)}"
            )
        return manifest

    def changed(self) -> bool:
        """Whether another process may have committed since the last `changed()` call.

        `os.replace` gives every commit a new inode, so a stat answers without reading.
        """
        try:
            st = os.stat(self.path / MANIFEST)
            seen: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            seen = None
        if seen is not None and seen == self._seen:
            return False
        self._seen = seen
        return True

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        """Holds the directory's write lock (across processes) for one change; re-entrant
        for the thread that holds it (a second flock on the same file would deadlock)."""
        if self._held:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._held = 1
            try:
                yield
            finally:
                self._held = 0
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def merge_lock(self, *, wait: bool) -> Iterator[bool]:
        """Holds `.merge.lock`; yields False (without waiting) when another merger has it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".merge.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def swap(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Makes a new manifest current (the caller has made every file it names durable);
        `commit` counts every swap, `generation` only the ones that change the contents."""
        manifest = {
            **self.manifest,
            **fields,
            "format": FORMAT,
            "version": VERSION,
            "commit": int(self.manifest.get("commit", self.manifest.get("generation", 0))) + 1,
            "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        staged = self.path / f".{MANIFEST}.tmp"
        staged.write_text(json.dumps(manifest, indent=2), "utf-8")
        fsync_file(staged)
        os.replace(staged, self.path / MANIFEST)  # <- the commit point
        fsync_dir(self.path)
        self.manifest = manifest
        return manifest
