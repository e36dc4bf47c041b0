"""Question in, grounded answer with citations out: `from rag import ask`."""

from rag.errors import (
    GeneratorError,
    IndexUnavailableError,
    IngestError,
    InvalidQuestionError,
    RagError,
)
from rag.pipeline import Filters, Pipeline, Settings, ask
from rag.types import Answer, Citation

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
