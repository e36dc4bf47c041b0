"""The FastAPI app: routes, error shape, limits, metrics and the Gradio UI at /ui."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from rag.errors import RagError
from rag.pipeline import Pipeline, missing_index
from rag.serve import errors
from rag.serve.auth import key_matches
from rag.serve.chat import build_chat_router
from rag.serve.config import ServeConfig
from rag.serve.limits import BodyLimit, GenerationQueue
from rag.serve.metrics import Metrics, RequestMetrics
from rag.serve.routes import build_router
from rag.serve.state import ServeState
from rag.ui.uploads import UploadStore

UI_PATH = "/ui"


def create_app(
    pipeline: Pipeline, config: ServeConfig | None = None, *, metrics_dir: Path | None = None
) -> FastAPI:
    """The whole API around one loaded `pipeline`; warm-up starts with the server.
    `metrics_dir`: the folder `rag serve --workers N` shares between its workers' metrics."""
    config = config or ServeConfig()
    queue = GenerationQueue(config.concurrency, config.queue_size, config.timeout_s)
    index_dir = pipeline.index.path  # stats().path names a Milvus server's URI instead
    uploads = UploadStore(index_dir / "uploads", config.max_upload_mb * 1024 * 1024)
    state = ServeState(pipeline, config, queue, Metrics(metrics_dir), uploads)
    state.metrics.watch(lambda: queue.waiting, lambda: queue.running, state.index_size)
    queue.on_change = state.metrics.sample_queue

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.metrics.sample_queue()
        state.start_warm_up()
        yield
        queue.shutdown()
        state.metrics.process_exited()

    app = FastAPI(
        title="rag",
        summary="Answers from your news articles, with checked citations.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.rag = state
    errors.install(app)
    app.include_router(build_router(state))
    app.include_router(build_chat_router(state))
    upload_cap = config.max_upload_body_mb * 1024 * 1024
    app.add_middleware(
        BodyLimit,
        max_bytes=config.max_body_bytes,
        caps={"/v1/documents": upload_cap},
        skip=(UI_PATH,),
    )
    app.add_middleware(RequestMetrics, metrics=state.metrics, skip=(UI_PATH,))
    if config.ui:
        _mount_ui(app, state)
    return app


class _ServerReadiness:
    """The page's "Models ready" follows the server's own warm-up, so it says ready exactly
    when /readyz does."""

    def __init__(self, state: ServeState) -> None:
        self.ready = state.ready

    def start(self) -> None:
        """The server warms up at start; nothing to begin here."""


def _mount_ui(app: FastAPI, state: ServeState) -> None:
    """The web UI on the same pipeline, with the same styles as `rag ui`. With API keys
    set, its login takes any user name and an API key as the password."""
    import gradio as gr

    from rag.ui import build_app
    from rag.ui.server import THEME_FONT, page_css

    keys = state.config.api_keys
    demo = build_app(
        state.pipeline,
        upload_dir=state.uploads.root,
        max_upload_mb=state.config.max_upload_mb,
        warm_up=_ServerReadiness(state),
    )
    gr.mount_gradio_app(
        app,
        demo,
        path=UI_PATH,
        auth=(lambda user, password: key_matches(password, keys)) if keys else None,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        enable_monitoring=False,
        max_file_size=f"{state.config.max_upload_mb}mb",
        footer_links=["api", "settings"],
        css=page_css(),
        theme=gr.themes.Default(font=list(THEME_FONT)),
    )


def create_app_from_env() -> FastAPI:
    """The uvicorn factory each worker calls: `rag serve` passes its settings as RAG_* and
    the metrics folder as PROMETHEUS_MULTIPROC_DIR, read here once (rag.settings)."""
    from rag.settings import load_settings

    try:
        settings = load_settings()
        config = settings.serve.checked()
        index_dir = settings.reader.index_dir
        problem = index_dir and missing_index(index_dir, settings.store)
        if problem:  # a mistyped RAG_INDEX_DIR must not become a new index
            raise ValueError(f"{problem} (RAG_INDEX_DIR); create one with `rag ingest`")
        pipeline = Pipeline(settings=settings.reader, config=settings)
        return create_app(pipeline, config, metrics_dir=settings.runtime.metrics_dir)
    except (RagError, ValueError, OSError) as exc:
        print(f"rag serve: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
