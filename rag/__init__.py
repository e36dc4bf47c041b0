"""Question in, grounded answer with citations out: `from rag import ask`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rag.errors import (
    GeneratorError,
    IndexUnavailableError,
    IngestError,
    InvalidQuestionError,
    RagError,
)
from rag.types import Answer, Citation

if TYPE_CHECKING:
    from rag.pipeline import Filters, Pipeline, Settings, ask

__all__ = [
    "Answer",
    "Citation",
    "Filters",
    "GeneratorError",
    "IndexUnavailableError",
    "IngestError",
    "InvalidQuestionError",
    "Pipeline",
    "RagError",
    "Settings",
    "ask",
]
_PIPELINE = frozenset({"Filters", "Pipeline", "Settings", "ask"})


def __getattr__(name: str) -> Any:
    """The pipeline (FAISS, llama.cpp, the index code) is imported on first use, so `rag
    --help`, `rag ui`'s start and the CLI's first status line do not wait for it (~1 s)."""
    if name in _PIPELINE:
        from rag import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
