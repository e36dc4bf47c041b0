"""`rag serve`: its options and start-up. Errors are one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rag.errors import RagError
from rag.settings import settings_for
from rag.ui.server import port_free

if TYPE_CHECKING:
    from embeddings.index import Index
    from embeddings.sources import Source
    from rag.settings import RagSettings


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Options of `rag serve` (the common parser adds --index, --generator, --model...)."""
    with contextlib.suppress(argparse.ArgumentError):
        p.add_argument("--index", default=None, metavar="DIR", help="index directory")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=None, help="processes (default 1)")
    p.add_argument("--concurrency", type=int, default=None, help="questions at once (default 1)")
    p.add_argument(
        "--queue-size", type=int, default=None, help="questions waiting before 429 (default 8)"
    )
    p.add_argument(
        "--timeout", type=float, default=None, dest="timeout_s", help="seconds per question (60)"
    )
    p.add_argument("--no-ui", action="store_true", help="do not mount the web UI at /ui")
    p.add_argument(
        "--watch",
        nargs="+",
        default=None,
        metavar="SOURCE",
        help="follow these folders and RSS/Atom feed URLs into the index, as `rag watch` does",
    )
    p.add_argument(
        "--watch-every", default="10m", metavar="DURATION", help="time between rounds (10m)"
    )
    p.add_argument(
        "--print-settings",
        action="store_true",
        help="print the effective settings and where each comes from (secrets masked), and exit",
    )


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        settings = settings_for(args)
        if getattr(args, "print_settings", False):
            print(settings.describe())
            return 0
        config = settings.serve.checked()
    except ValueError as exc:
        print(f"rag serve: {exc}", file=sys.stderr)
        return 2
    try:  # checked before anything loads or listens
        watch = _watch_sources(args)
    except RagError as exc:
        print(f"rag serve: {exc}", file=sys.stderr)
        return 2
    if not port_free(config.host, config.port):
        print(
            f"rag serve: cannot listen on {config.host}:{config.port} (port busy or address "
            "not available); choose another with --port",
            file=sys.stderr,
        )
        return 1
    import uvicorn

    url = f"http://{config.host}:{config.port}"
    kwargs = dict(host=config.host, port=config.port, log_level="warning", access_log=False)
    if config.workers == 1:
        from rag.pipeline import Pipeline
        from rag.serve.app import create_app

        try:  # load here, so a bad index or model is one line before anything listens
            app = create_app(Pipeline(settings=settings.reader, config=settings), config)
        except RagError as exc:
            print(f"rag serve: {exc}", file=sys.stderr)
            return 1
        print(f"rag serve: {url} (API docs {url}/docs, UI {url}/ui)", flush=True)
        with _watching(watch, lambda: app.state.rag.pipeline.index, app.state.rag.ingest_lock):
            uvicorn.run(app, **kwargs)  # type: ignore[arg-type]
        return 0
    # Workers are separate processes: the one watcher runs here, in the parent, and they
    # see its writes as they see any other writer's (each question refreshes the index).
    with _metrics_dir() as metrics_dir, _watching(watch, lambda: _own_index(settings), None):
        os.environ.update(settings.to_env())  # read again by each worker's create_app_from_env
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        print(f"rag serve: {url} with {config.workers} workers", flush=True)
        factory = "rag.serve.app:create_app_from_env"
        uvicorn.run(factory, factory=True, workers=config.workers, **kwargs)  # type: ignore[arg-type]
    return 0


def _watch_sources(args: argparse.Namespace) -> tuple[list[Source], float] | None:
    from embeddings.sources import parse_every, parse_sources

    if not getattr(args, "watch", None):
        return None
    return parse_sources(args.watch), parse_every(args.watch_every)


def _own_index(settings: RagSettings) -> Index:
    """An index of the parent's own for the watcher (the workers hold theirs)."""
    from embeddings.embedder import Embedder
    from embeddings.index import Index
    from rag.pipeline import default_index_dir

    reader, runtime = settings.reader, settings.runtime
    embedder = Embedder(
        reader.embedder_path, backend=runtime.embedder_backend, cache_dir=runtime.model_cache
    )
    return Index(reader.index_dir or default_index_dir(), embedder, settings.store)


@contextlib.contextmanager
def _watching(
    watch: tuple[list[Source], float] | None,
    make_index: Callable[[], Index],
    lock: threading.Lock | None,
) -> Iterator[None]:
    """The watcher thread for as long as the server runs (one per server, whatever
    --workers is); stopped when uvicorn returns."""
    if watch is None:
        yield
        return
    from embeddings.sources.watcher import start_background

    sources, every = watch
    thread, stop = start_background(make_index, sources, every, lock=lock)
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


@contextlib.contextmanager
def _metrics_dir() -> Iterator[Path]:
    """A fresh folder, readable by this user only, for the workers' metric files: files left
    by an earlier run would count its requests again. Removed when the server stops."""
    with tempfile.TemporaryDirectory(prefix="rag-metrics-") as folder:
        yield Path(folder)
