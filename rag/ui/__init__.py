"""`rag ui`: a local Gradio app to ask questions, see the evidence, and manage the articles.

- `render`: pure functions from answers and documents to escaped HTML (no Gradio import);
- `uploads`: judging, storing and cleaning up uploaded files;
- `app`: the layout and the `Handlers` its events call;
- `server`: options, warm-up and the server's lifetime (`run` is the CLI entry point).
"""

from rag.ui.app import EXAMPLE_QUESTIONS, Handlers, build_app
from rag.ui.inputs import Access
from rag.ui.render import render_answer
from rag.ui.server import WarmUp, configure_parser, parse_auth, run, serve
from rag.ui.uploads import ALLOWED_SUFFIXES, UploadStore, safe_filename

__all__ = [
    "ALLOWED_SUFFIXES",
    "EXAMPLE_QUESTIONS",
    "Access",
    "Handlers",
    "UploadStore",
    "WarmUp",
    "build_app",
    "configure_parser",
    "parse_auth",
    "render_answer",
    "run",
    "safe_filename",
    "serve",
]
