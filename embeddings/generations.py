"""Atomic, crash-safe generations of an index directory: manifest, commit and writer lock.

Layout::

    manifest.json        format, version, current generation, id counter (replaced atomically)
    gen-000007/          the current generation (whatever files the store writes there)
    .lock                serialises writers across processes

Every change writes a complete new generation beside the current one and then swaps
`manifest.json` with one `os.replace`, so a crash at any point leaves the previous generation
readable. Nothing here knows what the files inside a generation are.
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
VERSION = 1
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


class Generations:
    """The manifest of one index directory and the commit protocol around it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest: dict[str, Any] = self.empty()
        self._seen: tuple[int, int, int] | None = None  # stat of the manifest last read

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
        if manifest.get("version") != VERSION:
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
        """Holds the directory's write lock (across processes) for one change."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def commit(self, write: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """Runs `write(tmp_dir)`, which fills a new generation and returns manifest fields,
        then makes that generation current with one `os.replace` of the manifest."""
        generation = int(self.manifest.get("generation", 0)) + 1
        name = f"gen-{generation:06d}"
        tmp = self.path / f".tmp-{name}-{os.getpid()}"
        for stale in self.path.glob(".tmp-gen-*"):  # killed writers' (other pids); we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            fields = write(tmp)
            for f in tmp.iterdir():
                fsync_file(f)
            # A writer killed between this rename and the manifest swap leaves `name` behind;
            # the manifest never pointed at it, and renaming onto a non-empty folder fails
            # (ENOTEMPTY), which made every later write fail. Under the lock it is an orphan.
            shutil.rmtree(self.path / name, ignore_errors=True)
            os.replace(tmp, self.path / name)
            manifest = {
                **self.manifest,
                **fields,
                "generation": generation,
                "generation_dir": name,
                "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            }
            staged = self.path / f".{MANIFEST}.tmp"
            staged.write_text(json.dumps(manifest, indent=2), "utf-8")
            fsync_file(staged)
            os.replace(staged, self.path / MANIFEST)  # <- the commit point
            fsync_dir(self.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.manifest = manifest
        return manifest

    def prune(self) -> None:
        """Removes older generations and leftovers of crashed writers."""
        current = self.manifest.get("generation_dir")
        for p in self.path.iterdir():
            if (p.name.startswith("gen-") and p.name != current) or p.name.startswith(".tmp-gen-"):
                shutil.rmtree(p, ignore_errors=True)
