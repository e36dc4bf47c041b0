"""Options shared by several `rag` commands, as argparse parent parsers."""

from __future__ import annotations

import argparse
import importlib.metadata
from pathlib import Path


def version() -> str:
    try:
        return importlib.metadata.version("rag-news")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


Parents = tuple[argparse.ArgumentParser, argparse.ArgumentParser, argparse.ArgumentParser]


def option_parents() -> Parents:
    """Parent parsers: the index, the answer model, and the question's search options."""
    index = argparse.ArgumentParser(add_help=False)
    index.add_argument(
        "--index",
        type=Path,
        metavar="DIR",
        help="index directory (default: $RAG_INDEX_DIR, else a per-user data folder); "
        "it must exist, except for `rag ingest`, which creates it",
    )
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument(
        "--generator",
        choices=["llama-cpp", "transformers", "openai"],
        help="answer model backend (default: $RAG_GENERATOR or llama-cpp)",
    )
    model.add_argument("--model", help="GGUF file / HF folder, or the served model's name")
    model.add_argument("--base-url", help="OpenAI-compatible server URL for --generator openai")
    search = argparse.ArgumentParser(add_help=False)
    search.add_argument("-k", type=int, default=5, help="passages to retrieve (default 5)")
    search.add_argument(
        "--as-of", metavar="YYYY-MM-DD", help="date the question is asked (default: today)"
    )
    search.add_argument(
        "--from", dest="date_from", metavar="YYYY-MM-DD", help="only articles dated on or after"
    )
    search.add_argument(
        "--to", dest="date_to", metavar="YYYY-MM-DD", help="only articles dated on or before"
    )
    search.add_argument(
        "--source",
        action="append",
        metavar="NAME",
        help="only articles from this source (as `rag list` shows it); repeat for several",
    )
    search.add_argument(
        "--retriever",
        default="hybrid",
        choices=["bm25", "dense", "hybrid"],
        help="bm25: words; dense: meaning; hybrid (default): both, fused",
    )
    search.add_argument(
        "--answerer",
        default="reader",
        choices=["reader", "grounded", "extractive", "generative"],
        help="reader (default): a short span chosen among typed candidates; grounded: the "
        "model's own checked words; extractive: always quote; generative: unchecked",
    )
    return index, model, search


def watch_options(p: argparse.ArgumentParser) -> None:
    """`rag watch`'s sources and politeness."""
    p.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help="a folder (new and changed files are ingested, deleted ones removed) or an "
        "RSS/Atom feed URL (each entry's page is fetched and indexed)",
    )
    p.add_argument(
        "--every", default="10m", metavar="DURATION", help="time between rounds (default 10m)"
    )
    p.add_argument("--once", action="store_true", help="one round, then exit (for cron)")
    p.add_argument(
        "--delay",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="pause between two requests to the same host (default 1)",
    )
    p.add_argument(
        "--timeout", type=float, default=20.0, metavar="SECONDS", help="per request (default 20)"
    )
    p.add_argument(
        "--max-page-mb",
        type=float,
        default=5.0,
        metavar="MB",
        help="pages larger than this are reported and not read (default 5)",
    )
