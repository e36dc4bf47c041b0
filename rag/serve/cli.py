"""`rag serve`: its options and start-up. Errors are one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rag.errors import RagError
from rag.settings import settings_for
from rag.ui.server import port_free


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
        uvicorn.run(app, **kwargs)  # type: ignore[arg-type]
        return 0
    with _metrics_dir() as metrics_dir:
        os.environ.update(settings.to_env())  # read again by each worker's create_app_from_env
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        print(f"rag serve: {url} with {config.workers} workers", flush=True)
        factory = "rag.serve.app:create_app_from_env"
        uvicorn.run(factory, factory=True, workers=config.workers, **kwargs)  # type: ignore[arg-type]
    return 0


@contextlib.contextmanager
def _metrics_dir() -> Iterator[Path]:
    """A fresh folder, readable by this user only, for the workers' metric files: files left
    by an earlier run would count its requests again. Removed when the server stops."""
    with tempfile.TemporaryDirectory(prefix="rag-metrics-") as folder:
        yield Path(folder)
