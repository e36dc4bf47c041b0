"""`rag ui`: options, start-up checks, model warm-up and the server's lifetime."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rag.errors import RagError

if TYPE_CHECKING:
    import gradio as gr

    from rag.pipeline import Pipeline
    from rag.settings import RagSettings

__all__ = [
    "AUTH_ENV",
    "THEME_FONT",
    "Readiness",
    "WarmUp",
    "configure_parser",
    "page_css",
    "parse_auth",
    "run",
    "serve",
]

AUTH_ENV = "RAG_UI_AUTH"
API_KEYS_ENV = "RAG_API_KEYS"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
WARM_UP_QUESTION = "How many vaccine doses has the US delivered abroad?"
log = logging.getLogger("rag.ui")
# System fonts: no web-font requests, and gradio's bundled subsets lack some bold glyphs,
# which rendered titles in mixed fonts.
THEME_FONT = ("ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Liberation Sans", "sans-serif")


class Readiness(Protocol):
    """What the page asks about model loading: `ready` once a question can be answered
    quickly; `start` begins loading if nothing has yet."""

    ready: threading.Event

    def start(self) -> None: ...


class WarmUp:
    """Loads the models once, in the background, so the first real question answers quickly;
    `ready` tells the page whether to say "loading"."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._started = threading.Event()
        self.ready = threading.Event()

    def start(self) -> None:
        if not self._started.is_set():
            self._started.set()
            threading.Thread(target=self._run, name="rag-warm-up", daemon=True).start()

    def _run(self) -> None:
        try:
            self._pipeline.ask(WARM_UP_QUESTION, k=1)
        except Exception as e:  # a failed warm-up only costs speed; the question will say why
            log.warning("warm-up failed: %s", e)
        finally:
            self.ready.set()


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """`user:pass` -> ("user", "pass"); raises ValueError with a one-line reason."""
    if value is None or value == "":
        return None
    user, sep, password = value.partition(":")
    if not sep or not user.strip() or not password:
        raise ValueError("--auth / RAG_UI_AUTH must look like USER:PASS")
    return user.strip(), password


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Options of `rag ui` (the CLI adds `--index`; added here only if missing)."""
    with contextlib.suppress(argparse.ArgumentError):
        p.add_argument("--index", default=None, metavar="DIR", help="index directory")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--auth",
        default=None,
        metavar="USER:PASS",
        help=f"require a login (or set {AUTH_ENV}=USER:PASS)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=int,
        default=10,
        metavar="MB",
        help="largest accepted upload (default 10)",
    )


def page_css() -> str:
    """The UI's own styles (source cards, refusals, notices), for `rag ui` and `rag serve`."""
    return resources.files("rag.ui").joinpath("style.css").read_text(encoding="utf-8")


def serve(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    max_upload_mb: int = 10,
    block: bool = False,
) -> str:
    """Start the server (never a public share link) and return its local URL."""
    import gradio as gr

    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        auth=auth,
        inbrowser=False,
        prevent_thread_lock=True,
        quiet=True,
        show_error=False,  # gr.Error messages still show; internals never reach the page
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        max_file_size=f"{int(max_upload_mb)}mb",
        footer_links=["api", "settings"],
        css=page_css(),
        theme=gr.themes.Default(font=list(THEME_FONT)),
        enable_monitoring=False,
    )
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"
    if block:
        demo.block_thread()
    return url


def port_free(host: str, port: int) -> bool:
    """Whether `host:port` can be bound now: checked before the models load."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _check_args(
    args: argparse.Namespace, settings: RagSettings
) -> tuple[tuple[str, str] | None, str, int]:
    """(auth, host, port) or ValueError with the one-line reason."""
    auth = parse_auth(settings.runtime.ui_auth)  # --auth, else RAG_UI_AUTH
    if args.max_upload_mb < 1:
        raise ValueError("--max-upload-mb must be at least 1")
    host, port = args.host or "127.0.0.1", int(args.port)
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {port}")
    return auth, host, port


def run(args: argparse.Namespace) -> int:
    """`rag ui`: serve until interrupted. Errors are one line on stderr."""
    from rag.settings import settings_for
    from rag.ui.app import build_app
    from rag.ui.inputs import Access

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        settings = settings_for(args)
        auth, host, port = _check_args(args, settings)
    except ValueError as e:
        print(f"rag ui: {e}", file=sys.stderr)
        return 2
    if not port_free(host, port):
        print(
            f"rag ui: cannot listen on {host}:{port} (port busy or address not available); "
            "choose another with --port",
            file=sys.stderr,
        )
        return 1
    # Anyone who can reach the port may change the index unless a login is required; with
    # API keys configured for the HTTP API, the UI does not silently stay the open door.
    access = Access(login=auth is not None, changes=auth is not None or not settings.serve.api_keys)
    try:
        from rag.pipeline import Pipeline

        pipeline = Pipeline(getattr(args, "index", None), settings=settings.reader, config=settings)
        index_dir = Path(pipeline.stats().path)
        warm_up = WarmUp(pipeline)
        demo = build_app(
            pipeline,
            upload_dir=index_dir / "uploads",
            max_upload_mb=args.max_upload_mb,
            warm_up=warm_up,
            access=access,
        )
        url = serve(demo, host=host, port=port, auth=auth, max_upload_mb=args.max_upload_mb)
    except (RagError, OSError) as e:
        print(f"rag ui: {e}", file=sys.stderr)
        return 1
    warm_up.start()
    print(
        f"rag ui: serving {index_dir} at {url}" + ("  (login required)" if auth else ""), flush=True
    )
    if host not in LOOPBACK:
        print(f"rag ui: listening on {host}: reachable from other machines", flush=True)
        if auth is None:
            print(
                "rag ui: no --auth: anyone who can reach it can add and delete articles", flush=True
            )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly under a service manager
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0
