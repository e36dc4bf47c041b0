"""`rag` command line: ingest, watch, ask, chat, list, delete, stats, config, eval, ui, serve.

Every error a user can cause ends as one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.cli.options import option_parents, version, watch_options
from rag.errors import RagError

if TYPE_CHECKING:
    from embeddings.embedder import Embedder
    from rag.cli.format import Status
    from rag.pipeline import Pipeline
    from rag.settings import RagSettings


class UsageError(RagError):
    """A command line that cannot be run as given (e.g. an --index folder that does not exist)."""


def _settings(args: argparse.Namespace) -> RagSettings:
    """Read once, in `main`, from the environment and this command line."""
    from rag.settings import settings_for

    return settings_for(args)


def _index_dir(args: argparse.Namespace) -> Path:
    from rag.pipeline import default_index_dir

    return args.index or _settings(args).reader.index_dir or default_index_dir()


def _check_index_exists(args: argparse.Namespace) -> None:
    """A mistyped --index must not become a new index: only `rag ingest` and a watcher
    (`rag watch`, `rag serve --watch`) create one. The servers (`rag ui`, `rag serve`) hold
    RAG_INDEX_DIR to the same rule."""
    from rag.pipeline import missing_index

    settings = _settings(args)
    path, given = getattr(args, "index", None), "--index"
    if path is None and args.command in ("ui", "serve") and settings.reader.index_dir:
        path, given = settings.reader.index_dir, "RAG_INDEX_DIR"
    if path is None or args.command in ("ingest", "watch") or getattr(args, "watch", None):
        return  # the default index is created on first use, with the seed article
    problem = missing_index(path, settings.store)
    if problem:
        shown = Path(path).expanduser()
        raise UsageError(
            f"{problem} ({given}); create one with `rag ingest PATH --index {shown}`"
            if given == "RAG_INDEX_DIR"
            else f"{problem}; create one with `rag ingest PATH --index {shown}`"
        )


def _pipeline(args: argparse.Namespace, embedder: Embedder | None = None) -> Pipeline:
    from rag.pipeline import Pipeline

    _check_index_exists(args)
    settings = _settings(args)
    return Pipeline(args.index, settings=settings.reader, embedder=embedder, config=settings)


def _show_progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() and not getattr(args, "json", False)


def cmd_ingest(args: argparse.Namespace) -> int:
    from rag.cli.format import ProgressEmbedder, Status, skipped_lines

    settings = _settings(args)
    status = Status(_show_progress(args) and not args.quiet)
    status.show(f"reading {', '.join(str(p) for p in args.paths)} (and loading the embedder)…")
    embedder = ProgressEmbedder(
        settings.reader.embedder_path,
        before_bar=status.clear,
        backend=settings.runtime.embedder_backend,
        cache_dir=settings.runtime.model_cache,
    )
    pipeline = _pipeline(args, embedder)
    if args.no_dedup:
        pipeline.index.dedup = False
    # Stored paths are absolute, so `rag delete PATH` works from any folder.
    paths = [Path(p).expanduser().absolute() for p in args.paths]
    logging.getLogger("embeddings").setLevel(logging.ERROR)  # skipped files are printed below
    report = pipeline.ingest(paths, progress=status.enabled)
    status.clear()
    for line in skipped_lines(report.skipped):
        print(line, file=sys.stderr)
    print(report.summary())
    loaded = report.added or report.updated or report.unchanged
    return 1 if report.skipped and not loaded else 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Rounds over feeds and folders; the first Ctrl-C finishes the current article and
    stops (nothing half-written), a second one quits at once."""
    import signal

    from embeddings.embedder import Embedder
    from embeddings.index import Index
    from embeddings.sources import FetchOptions, Watcher, parse_every, parse_sources

    sources = parse_sources(args.sources)  # checked before any model loads
    every = parse_every(args.every)
    fetch = FetchOptions(
        timeout_s=args.timeout, host_delay_s=args.delay, max_bytes=int(args.max_page_mb * 1e6)
    )
    settings = _settings(args)
    embedder = Embedder(
        settings.reader.embedder_path,
        backend=settings.runtime.embedder_backend,
        cache_dir=settings.runtime.model_cache,
    )
    watcher = Watcher(Index(_index_dir(args), embedder, settings.store), sources, fetch=fetch)

    def first_interrupt(signum: int, frame: object) -> None:
        print("stopping after the current article (Ctrl-C again to quit now)", file=sys.stderr)
        watcher.stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, first_interrupt)
    logging.getLogger("embeddings").setLevel(logging.ERROR)  # failures are in the lines below
    any_ok = False
    try:
        for report in watcher.rounds(every, once=args.once):
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            for s in report.sources:
                print(f"[{stamp}] {s.line()}", file=sys.stdout if s.ok else sys.stderr)
            sys.stdout.flush()
            any_ok = any_ok or not report.all_failed
    finally:
        watcher.close()
    return 0 if any_ok else 1


def _date(value: str | None, flag: str) -> str | None:
    """The filter compares ISO strings, so a malformed date would silently match nothing."""
    try:
        return None if value is None else dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise UsageError(f"{flag} must be a YYYY-MM-DD date, not {value!r}") from None


def _ask_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The search options as `Pipeline.ask` takes them; checked before any model loads."""
    from rag.inputs import Filters

    return {
        "k": args.k,
        "as_of": args.as_of,
        "filters": Filters(
            date_from=_date(args.date_from, "--from"),
            date_to=_date(args.date_to, "--to"),
            sources=tuple(args.source or ()),
        ),
        "retriever": args.retriever,
        "answerer": args.answerer,
    }


def _loading_status(args: argparse.Namespace) -> Status:
    """Says what a fresh process waits for; the first run also indexes the seed article."""
    from rag.cli.format import Status

    status = Status(_show_progress(args))
    if status.enabled:
        first_run = args.index is None and not (_index_dir(args) / "manifest.json").exists()
        status.show(
            "first run: loading the models and indexing the bundled seed article…"
            if first_run
            else "loading the models…"
        )
    return status


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.inputs import check_question
    from rag.types import Answer

    check_question(args.question)  # before loading any model
    kwargs = _ask_kwargs(args)
    _check_index_exists(args)
    status = _loading_status(args)
    pipeline = _pipeline(args)
    if args.json:
        answer = pipeline.ask(args.question, **kwargs)
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    streamed = False
    for item in pipeline.stream(args.question, **kwargs):
        status.clear()
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
    from rag.cli.format import also_line

    for c in answer.citations:
        where = c.url or f"{c.doc_id}:{c.start}-{c.end}"  # a followed feed's link, when known
        print(f"  [{c.n}] {c.title} ({c.date or 'undated'}) {where}")
        also = also_line(c)
        if also:
            print(f"      {also}")


def cmd_chat(args: argparse.Namespace) -> int:
    """A terminal conversation: follow-ups are rewritten with the earlier turns, as in the UI."""
    kwargs = _ask_kwargs(args)
    _check_index_exists(args)
    status = _loading_status(args)
    pipeline = _pipeline(args)
    if status.enabled:  # load before the first prompt, so the first answer is not a long wait
        pipeline.warm(args.answerer)
        status.clear()
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
            answer = pipeline.ask(line, history=history, **kwargs)
        except RagError as exc:
            print(f"error: {exc}", file=sys.stderr)
            continue
        if answer.question != line.strip():
            print(f"(understood as: {answer.question})")
        _print_answer(answer)
        history.append((answer.question, answer.text))


def cmd_list(args: argparse.Namespace) -> int:
    from rag.cli.format import listing

    path = _index_dir(args)
    if args.index is None and not (path / "manifest.json").exists():
        rows = []  # a default index not created yet: nothing to load a model for
    else:
        pipeline = _pipeline(args)
        rows = listing(pipeline.documents(), pipeline.index.chunk_counts())
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], ensure_ascii=False, indent=2))
    elif not rows:
        print(f"no articles in {path}", file=sys.stderr)
    for row in [] if args.json else rows:
        print(row.line())
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """By doc_id, else by the file (or folder) the articles were ingested from."""
    from rag.cli.format import ingested_from

    pipeline = _pipeline(args)
    target = args.target
    if pipeline.document(target) is not None:
        doc_ids = [target]
    else:
        doc_ids = [d.doc_id for d in pipeline.documents() if ingested_from(d, Path(target))]
    if not doc_ids:
        raise UsageError(f"no article with doc_id or source path {target!r} in the index")
    for doc_id in doc_ids:
        pipeline.delete(doc_id)
        print(f"deleted {doc_id}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    stats = _pipeline(args).stats()
    print(json.dumps(stats.__dict__, indent=2))
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    """What `rag` would run with, and where each value comes from; secrets masked."""
    print(_settings(args).describe())
    return 0


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    index, model, search = option_parents()
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", parents=[index], help="add or update articles")
    p.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="article files (.txt .md .html .json .jsonl) or folders, searched recursively",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.add_argument(
        "--no-dedup",
        action="store_true",
        help="index every article, even a copy of a story already indexed "
        "(default: copies are merged into one article listing every outlet; $RAG_DEDUP=0)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("watch", parents=[index], help="follow folders and RSS/Atom feeds")
    watch_options(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser(
        "ask", parents=[index, model, search], help="answer a question with citations"
    )
    p.add_argument("question", help="the question, in quotes")
    p.add_argument("--json", action="store_true", help="print Answer.to_dict() as JSON")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "chat",
        parents=[index, model, search],
        help="a conversation in the terminal; follow-ups understood",
    )
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("list", parents=[index], help="the indexed articles, newest first")
    p.add_argument(
        "--json", action="store_true", help="print doc_id, date, title, source, chunks, path"
    )
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("delete", parents=[index], help="remove articles by doc_id or by path")
    p.add_argument(
        "target",
        metavar="DOC_ID_OR_PATH",
        help="a doc_id (see `rag list`), or the file or folder the articles were ingested from",
    )
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("stats", parents=[index], help="articles, chunks, last update")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser(
        "config", parents=[index, model], help="the effective settings and where each comes from"
    )
    p.set_defaults(func=cmd_config)

    for name, module, parents, help_text in (
        ("eval", "evals.cli", [model], "measure answer quality"),
        ("ui", "rag.ui", [index, model], "start the web UI"),
        (
            "serve",
            "rag.serve.cli",
            [index, model],
            "start the HTTP API (REST, OpenAI-compatible chat, UI)",
        ),
    ):
        p = sub.add_parser(name, parents=parents, help=help_text)
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
        from rag.settings import flags_from_args, load_settings

        args.settings = load_settings(flags=flags_from_args(args))
        if hasattr(args, "module"):
            if not getattr(args, "print_settings", False):
                _check_index_exists(args)
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
