"""Following folders and RSS/Atom feeds into an index (`rag watch`, `rag serve --watch`)."""

from embeddings.sources.fetch import FetchOptions
from embeddings.sources.report import SourceReport
from embeddings.sources.state import newest_articles, read_sources
from embeddings.sources.watcher import RoundReport, Source, Watcher, parse_every, parse_sources

__all__ = [
    "FetchOptions",
    "RoundReport",
    "Source",
    "SourceReport",
    "Watcher",
    "newest_articles",
    "parse_every",
    "parse_sources",
    "read_sources",
]
