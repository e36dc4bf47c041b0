"""`rag serve`: the HTTP API (REST + OpenAI-compatible chat) with the web UI at /ui.

`create_app(pipeline, config)` builds the FastAPI app around one loaded `Pipeline`;
`rag.serve.cli` holds the `rag serve` subcommand.
"""

from rag.serve.app import create_app
from rag.serve.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
