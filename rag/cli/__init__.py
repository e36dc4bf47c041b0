"""The `rag` command line: `commands` runs each subcommand, `options` holds the flags several
share, `format` what they print. `rag = "rag.cli:main"` is the installed entry point."""

from rag.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
