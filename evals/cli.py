"""`rag eval`: score the pipeline on a dataset folder, optionally several configurations at once.

Examples:
    rag eval                                   # the seed gold set, default pipeline
    rag eval --dataset ../shared/data/squad2_dev500 --json
    rag eval --ablation --out report/          # bm25/dense/hybrid x extractive/generative/grounded
    rag eval --retriever bm25,hybrid --answerer grounded --limit 50
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

from evals.dataset import SEED_DATASET, DatasetError, load_dataset
from evals.runner import ANSWERERS, RETRIEVERS, Config

__all__ = ["configure_parser", "parse_configs", "run"]


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dataset",
        metavar="DIR",
        default=None,
        help="dataset folder (questions.jsonl + docs.jsonl); default: the seed gold set",
    )
    p.add_argument("--limit", type=_positive, metavar="N", help="only the first N questions")
    p.add_argument(
        "--half",
        choices=["even", "odd"],
        help="only questions at even (0, 2, ...) or odd positions of questions.jsonl: the "
        "reader is calibrated on the even half, so the odd half is held out",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the metrics as JSON (a list when several configurations run)",
    )
    p.add_argument("--out", metavar="DIR", help="also write report.md, results.json and plots here")
    p.add_argument(
        "--retriever",
        action="append",
        metavar="NAME",
        help=f"{', '.join(RETRIEVERS)}; repeat or comma-separate to compare (default hybrid)",
    )
    p.add_argument(
        "--answerer",
        action="append",
        metavar="NAME",
        help=f"{', '.join(ANSWERERS)}; repeat or comma-separate to compare (default reader)",
    )
    p.add_argument(
        "--ablation",
        action="store_true",
        help="compare each part against the default: every retriever with the grounded "
        "answerer, plus every answerer with the hybrid retriever",
    )
    p.add_argument(
        "--k",
        type=_positive,
        default=5,
        metavar="N",
        help="chunks the answerer reads (retrieval metrics always use the top 10)",
    )
    p.add_argument(
        "--cache",
        metavar="DIR",
        help="where dataset indexes are cached (default: the user cache folder)",
    )


def parse_configs(
    retrievers: list[str] | None, answerers: list[str] | None, ablation: bool = False
) -> list[Config]:
    """Every combination of the chosen retrievers and answerers, or the one-at-a-time ablation.

    Raises ValueError naming an unknown choice.
    """
    rs = _choices(retrievers, RETRIEVERS, "retriever")
    ans = _choices(answerers, ANSWERERS, "answerer")
    if ablation:
        base = Config()
        star = [Config(r, base.answerer) for r in (rs or RETRIEVERS)]
        star += [Config(base.retriever, a) for a in (ans or ANSWERERS)]
        return list(dict.fromkeys(star))
    base = Config()
    return [Config(r, a) for r in (rs or [base.retriever]) for a in (ans or [base.answerer])]


def run(args: argparse.Namespace) -> int:
    try:
        configs = parse_configs(args.retriever, args.answerer, args.ablation)
        dataset = load_dataset(args.dataset or SEED_DATASET)
    except (ValueError, DatasetError) as exc:
        print(f"rag eval: error: {exc}", file=sys.stderr)
        return 2
    from evals.report import format_table, metrics_json, write_report
    from evals.runner import cached_index, evaluate, open_pipeline
    from rag import RagError

    started = time.perf_counter()
    try:
        index_dir = cached_index(dataset, args.cache, progress=True)
        if args.half:
            parity = 0 if args.half == "even" else 1
            kept = [q for i, q in enumerate(dataset.questions) if i % 2 == parity]
            dataset = dataclasses.replace(dataset, questions=kept)
        pipeline = open_pipeline(
            index_dir, **{k: getattr(args, k, None) for k in ("generator", "model", "base_url")}
        )
        runs = evaluate(pipeline, dataset, configs, k=args.k, limit=args.limit, progress=True)
    except (RagError, DatasetError, OSError) as exc:
        print(f"rag eval: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("rag eval: interrupted", file=sys.stderr)
        return 130
    wall = time.perf_counter() - started
    if args.json:
        print(json.dumps(metrics_json(runs), indent=2))
    else:
        print(
            f"{dataset.name}: {len(runs[0].questions)} questions, {wall:.1f} s, index {index_dir}"
        )
        print(format_table(runs))
    if args.out:
        path = write_report(
            runs,
            args.out,
            title=dataset.name,
            notes=[
                f"dataset: {dataset.root}",
                f"index: {index_dir}",
                f"answer k={args.k}, retrieval: first 10 distinct documents of 50 chunks",
                f"wall time {wall:.1f} s",
            ],
        )
        print(f"report written to {path}", file=sys.stderr)
    return 0


def _choices(values: list[str] | None, allowed: tuple[str, ...], what: str) -> list[str]:
    chosen = [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]
    bad = [v for v in chosen if v not in allowed]
    if bad:
        raise ValueError(f"unknown {what} {bad[0]!r}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(chosen))


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
