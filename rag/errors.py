"""Exceptions a caller of `ask()` can catch. Each message is one line meant for a person."""

from embeddings.errors import IndexUnavailableError, IngestError, RagError


class InvalidQuestionError(RagError, ValueError):
    """The question is empty, too long, or not a string."""


class GeneratorError(RagError):
    """The configured generator cannot be loaded or reached."""


class GeneratorUnavailableError(GeneratorError):
    """The generation server is down, times out or fails (5xx), after bounded retries."""


__all__ = [
    "GeneratorError",
    "GeneratorUnavailableError",
    "IndexUnavailableError",
    "IngestError",
    "InvalidQuestionError",
    "RagError",
]
