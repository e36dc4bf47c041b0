"""Exceptions raised on purpose; each message is one line meant for a person.

They live here, below `rag`, because the index raises them; `rag.errors` re-exports them.
"""


class RagError(Exception):
    """Base class for every error this project raises on purpose."""


class IndexUnavailableError(RagError):
    """The index directory cannot be read, is damaged, or is from an incompatible version."""


class IngestError(RagError):
    """A path to ingest does not exist or holds nothing that can be loaded."""
