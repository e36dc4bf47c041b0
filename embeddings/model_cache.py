"""Faster forms of the packaged models, derived once into the user cache.

The packages stay the source of truth: a derived file is named after its source's size, so a
new package version gets a new copy, and it is written to a temporary name and renamed, so a
killed build never leaves a half-written model behind. When the cache cannot be written the
caller runs the packaged file as it is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def model_cache_dir() -> Path:
    """The platform's user cache folder (~/.cache/rag/models on Linux); RAG_MODEL_CACHE
    (read by rag.settings) reaches `derived` as its `cache_dir` instead."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("rag", appauthor=False)) / "models"


def derived(
    source: Path,
    suffix: str,
    build: Callable[[Path, Path], None],
    cache_dir: Path | None = None,
    *,
    stem: str | None = None,
) -> Path:
    """`build(source, tmp)` run once into `<cache>/<stem>-<source size><suffix>`; that path,
    or `source` itself when the build fails (OSError: no writable cache, a missing tool)."""
    folder = cache_dir or model_cache_dir()
    target = folder / f"{stem or source.stem}-{source.stat().st_size}{suffix}"
    if target.is_file():
        return target
    tmp = folder / f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        build(source, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        log.warning("running %s as packaged (no faster copy in %s: %s)", source.name, folder, exc)
        return source
    return target


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Native converters print a line per tensor to fd 2 with no switch to stop them."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to silence
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
