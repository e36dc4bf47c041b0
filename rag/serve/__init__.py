"""`rag serve`: the HTTP API (REST + OpenAI-compatible chat) with the web UI at /ui.

`create_app(pipeline, config)` builds the FastAPI app around one loaded `Pipeline`;
`rag.serve.cli` holds the `rag serve` subcommand.
"""

from typing import Any

from rag.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]


def __getattr__(name: str) -> Any:
    """`create_app` on first use: every `rag` command reads `ServeConfig` (rag.settings), and
    importing FastAPI and prometheus_client for it cost `rag ask` ~0.5 s."""
    if name == "create_app":
        from rag.serve.app import create_app

        return create_app
    raise AttributeError(name)
