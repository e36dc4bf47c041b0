"""`rag` command line: ingest, ask, chat, delete, stats, eval, ui, serve.

Every error a user can cause ends as one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from rag.errors import RagError


def _pipeline(args: argparse.Namespace):  # -> Pipeline, imported late so --help is instant
    from rag.pipeline import Pipeline, Settings

    settings = Settings.from_env(generator=args.generator, model=args.model, base_url=args.base_url)
    return Pipeline(args.index, settings=settings)


def cmd_ingest(args: argparse.Namespace) -> int:
    report = _pipeline(args).ingest(args.paths, progress=not args.quiet)
    for s in report.skipped:
        print(f"skipped {s.path}: {s.reason}", file=sys.stderr)
    print(report.summary())
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.pipeline import check_question
    from rag.types import Answer

    check_question(args.question)  # before loading any model
    pipeline = _pipeline(args)
    kwargs = {
        "k": args.k,
        "as_of": args.as_of,
        "retriever": args.retriever,
        "answerer": args.answerer,
    }
    if args.json:
        print(
            json.dumps(
                pipeline.ask(args.question, **kwargs).to_dict(), ensure_ascii=False, indent=2
            )
        )
        return 0
    streamed = False
    for item in pipeline.stream(args.question, **kwargs):
        if isinstance(item, Answer):
            if streamed:
                print("\r\033[K", end="")  # replace the draft with the checked answer
            _print_answer(item)
        elif sys.stdout.isatty():
            streamed = True
            print(item, end="", flush=True)
    return 0


def _print_answer(answer) -> None:  # type: ignore[no-untyped-def]
    print(answer.text)
    if answer.mode == "extracted" and answer.evidence:
        print(f"  {answer.evidence}")
    for c in answer.citations:
        print(f"  [{c.n}] {c.title} ({c.date or 'undated'}) {c.doc_id}:{c.start}-{c.end}")


def cmd_chat(args: argparse.Namespace) -> int:
    """A terminal conversation: follow-ups are rewritten with the earlier turns, as in the UI."""
    pipeline = _pipeline(args)
    history: list[tuple[str, str]] = []
    interactive = sys.stdin.isatty()
    while True:
        try:
            line = input("? " if interactive else "")
        except EOFError:
            return 0
        if not line.strip():
            continue
        try:
            answer = pipeline.ask(line, k=args.k, history=history)
        except RagError as exc:
            print(f"error: {exc}", file=sys.stderr)
            continue
        if answer.question != line.strip():
            print(f"(understood as: {answer.question})")
        _print_answer(answer)
        history.append((answer.question, answer.text))


def cmd_delete(args: argparse.Namespace) -> int:
    if not _pipeline(args).delete(args.doc_id):
        print(f"error: no article with doc_id {args.doc_id!r} in the index", file=sys.stderr)
        return 1
    print(f"deleted {args.doc_id}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    stats = _pipeline(args).stats()
    print(json.dumps(stats.__dict__, indent=2))
    return 0


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--index",
        type=Path,
        help="index directory (default: $RAG_INDEX_DIR, else a per-user data folder)",
    )
    common.add_argument(
        "--generator",
        choices=["llama-cpp", "transformers", "openai"],
        help="answer model backend (default: $RAG_GENERATOR or llama-cpp)",
    )
    common.add_argument("--model", help="GGUF file / HF folder, or the served model's name")
    common.add_argument("--base-url", help="OpenAI-compatible server URL for --generator openai")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("ingest", parents=[common], help="add or update articles")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("ask", parents=[common], help="answer a question with citations")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print Answer.to_dict() as JSON")
    p.add_argument("-k", type=int, default=5, help="passages to retrieve (default 5)")
    p.add_argument("--as-of", help="date the question is asked, YYYY-MM-DD")
    p.add_argument("--retriever", default="hybrid", choices=["bm25", "dense", "hybrid"])
    p.add_argument(
        "--answerer",
        default="reader",
        choices=["reader", "grounded", "extractive", "generative"],
        help="reader (default): a short span chosen among typed candidates; grounded: the "
        "model's own checked words; extractive: always quote; generative: unchecked",
    )
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "chat", parents=[common], help="a conversation in the terminal; follow-ups understood"
    )
    p.add_argument("-k", type=int, default=5, help="passages to retrieve (default 5)")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("delete", parents=[common], help="remove an article by doc_id")
    p.add_argument("doc_id")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("stats", parents=[common], help="articles, chunks, last update")
    p.set_defaults(func=cmd_stats)

    for name, module, help_text in (
        ("eval", "evals.cli", "measure answer quality"),
        ("ui", "rag.ui", "start the web UI"),
        ("serve", "rag.serve.cli", "start the HTTP API (REST, OpenAI-compatible chat, UI)"),
    ):
        p = sub.add_parser(name, parents=[common], help=help_text)
        p.set_defaults(module=module)
        if name not in argv:  # importing gradio/matplotlib would slow every other command
            continue
        __import__(module, fromlist=["configure_parser"]).configure_parser(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        if hasattr(args, "module"):
            return int(__import__(args.module, fromlist=["run"]).run(args))
        return int(args.func(args))
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
