"""Exceptions a caller of `ask()` can catch. Each message is one line meant for a person."""

from embeddings.errors import IndexUnavailableError, IngestError, RagError


class InvalidQuestionError(RagError, ValueError):
    """The question is empty, too long, or not a string."""


class GeneratorError(RagError):
    """The configured generator cannot be loaded or reached."""


__all__ = [
    "GeneratorError",
    "IndexUnavailableError",
    "IngestError",
    "InvalidQuestionError",
    "RagError",
]
