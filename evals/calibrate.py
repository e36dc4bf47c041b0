"""Calibrate the reader's weights and thresholds on one half of each dataset, report the other.

    python -m evals.calibrate --dataset seed --dataset ../shared/data/squad2_dev500 \\
        --dataset ../shared/data/realtimeqa_dev [--model] [--limit N]

Questions at even positions of `questions.jsonl` calibrate; odd positions are only reported.
Retrieval, sentence focus and candidate extraction run once per question through the real
pipeline (`Pipeline.focus`, `rag.candidates.extract`); the grid then re-ranks the stored
candidates, so hundreds of settings cost seconds. `--model` adds the generator's
log-probability of the best candidates as a feature (as `ReaderAnswerer` does).
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from evals import metrics as m
from evals.dataset import SEED_DATASET, Dataset, load_dataset
from evals.runner import cached_index
from rag.answer_type import AnswerType, answer_type
from rag.answerers import scoring_messages
from rag.candidates import Candidate, Scored, Weights, extract, rank
from rag.ground import quote, quoted_evidence
from rag.types import Citation

FEATURES = [f.name for f in fields(Weights)]
SCORED = 6  # candidates the model re-scores, as in ReaderAnswerer


@dataclass
class Case:
    dataset: str
    calibrate: bool  # even position: used to choose settings
    gold: list[str]
    relevance: float
    kind: AnswerType
    candidates: list[Candidate]
    quote: str

    @property
    def features(self) -> np.ndarray:
        if not hasattr(self, "_features"):
            rows = [[getattr(c, f) for f in FEATURES] for c in self.candidates]
            self._features = np.array(rows, dtype=float).reshape(-1, len(FEATURES))
        return self._features


@dataclass(frozen=True)
class Setting:
    weights: Weights
    min_relevance: float
    min_confidence: float  # below: quote instead of a span
    strict_heads: bool  # "which country" without any place -> refuse
    min_answer: float = -9.0  # a typed question whose best candidate scores below: refuse


def collect(dataset: Dataset, cache: str | None, limit: int | None, model: bool) -> list[Case]:
    from tqdm import tqdm

    from rag import Pipeline

    pipeline = Pipeline(cached_index(dataset, cache))
    scorer = pipeline.generator if model else None
    cases = []
    questions = dataset.questions[:limit] if limit else dataset.questions
    for i, q in enumerate(tqdm(questions, desc=dataset.name, file=sys.stderr)):
        focus = pipeline.focus(q.question, as_of=q.date)
        kind = answer_type(focus.question)
        ctx: list[Citation] = focus.context
        found = rank(
            extract(focus.question, kind, [Scored(c.n, c.text, c.score) for c in ctx]),
            Weights(),
        )
        if scorer is not None and found:
            top = found[:SCORED]
            messages = scoring_messages(focus.question, ctx, top)
            logp = scorer.score(messages, [c.text for c in top])  # type: ignore[attr-defined]
            found = [replace(c, model=lp) for c, lp in zip(top, logp, strict=True)]
        text = quote(quoted_evidence(ctx), focus.question) if ctx else ""
        cases.append(
            Case(dataset.name, i % 2 == 0, list(q.answers), focus.relevance, kind, found, text)
        )
    return cases


def outcome(case: Case, s: Setting) -> tuple[str, bool, str]:
    """(text, refused, mode) as the reader would answer with setting `s`."""
    if case.relevance < s.min_relevance:
        return "", True, "refused"
    strict = case.kind.strict or case.kind.numeric or (s.strict_heads and bool(case.kind.labels))
    if strict and not case.candidates:
        return "", True, "refused"
    if not case.candidates:
        return case.quote, False, "quoted"
    scores = case.features @ np.array([getattr(s.weights, f) for f in FEATURES])
    best = int(np.argmax(scores))
    if strict and scores[best] < s.min_answer:
        return "", True, "refused"
    if scores[best] < s.min_confidence:
        return case.quote, False, "quoted"
    return case.candidates[best].text, False, "extracted"


def score(cases: list[Case], s: Setting) -> dict[str, float | None]:
    f1, em, cont, refused, unanswerable, extracted = [], [], [], [], [], []
    for c in cases:
        text, ref, mode = outcome(c, s)
        refused.append(ref)
        unanswerable.append(not c.gold)
        if c.gold:
            f1.append(0.0 if ref else m.best_over(m.token_f1, text, c.gold))
            em.append(0.0 if ref else m.best_over(m.exact_match, text, c.gold))
            cont.append(0.0 if ref else m.best_over(m.contains, text, c.gold))
            extracted.append(float(mode == "extracted"))
    return {
        "f1": m.mean(f1),
        "exact_match": m.mean(em),
        "contains": m.mean(cont),
        "refusal_precision": m.refusal_precision(refused, unanswerable),
        "refusal_recall": m.refusal_recall(refused, unanswerable),
        "extracted": m.mean(extracted),
        "n": len(cases),
    }


def objective(metrics: list[dict[str, float | None]]) -> float:
    """Mean over datasets of F1 + contains on answerable questions, plus refusal recall where
    a set has unanswerable questions, minus a heavy penalty below 0.8 refusal precision."""
    total = 0.0
    for r in metrics:
        total += (r["f1"] or 0.0) + (r["contains"] or 0.0)
        if r["refusal_recall"] is not None:
            total += r["refusal_recall"]
            precision = r["refusal_precision"]
            if precision is not None and precision < 0.8:
                total -= 2 * (0.8 - precision)
    return total / max(1, len(metrics))


def grid(model: bool) -> list[Setting]:
    out = []
    for tm, at, cov, nh, ent, sup, sent, mw, rel, conf, strict, floor in itertools.product(
        (0.2, 0.4),
        (0.3, 0.6),
        (0.0, 0.4),
        (0.0, 0.4),
        (0.0, 0.2),
        (0.0, 0.4),
        (0.5, 1.0),
        (0.0, 0.05, 0.15) if model else (0.0,),
        (0.40, 0.45),
        (-9.0, 0.4, 0.6),
        (False, True),
        (-9.0, 0.3, 0.5),
    ):
        if floor > conf:
            continue
        weights = Weights(
            type_match=tm,
            attach=at,
            coverage=cov,
            near_head=nh,
            entity=ent,
            support=sup,
            sentence=sent,
            repeat=0.0,
            model=mw,
        )
        out.append(Setting(weights, rel, conf, strict, floor))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.calibrate", description=__doc__)
    p.add_argument("--dataset", action="append", required=True, help='a folder, or "seed"')
    p.add_argument("--limit", type=int)
    p.add_argument("--cache")
    p.add_argument("--model", action="store_true", help="add the model's log-probability")
    p.add_argument("--dump", type=Path, help="write per-setting results here (JSON)")
    p.add_argument("--cases", type=Path, help="keep the collected cases in this pickle file")
    args = p.parse_args(argv)

    names = []
    cases: list[Case] = []
    if args.cases and args.cases.exists():
        names, cases = pickle.loads(args.cases.read_bytes())
    else:
        for d in args.dataset:
            ds = load_dataset(SEED_DATASET if d == "seed" else Path(d))
            names.append(ds.name)
            cases += collect(ds, args.cache, args.limit, args.model)
        if args.cases:
            args.cases.write_bytes(pickle.dumps((names, cases)))

    def halves(setting: Setting, calibrate: bool) -> list[dict[str, float | None]]:
        return [
            score([c for c in cases if c.dataset == n and c.calibrate == calibrate], setting)
            for n in names
        ]

    settings = grid(args.model)
    ranked = sorted(settings, key=lambda s: -objective(halves(s, True)))
    best = ranked[0]
    report = [("best", best)]
    if args.model:  # what the model adds: the best setting that ignores it
        report.append(("best without the model", next(s for s in ranked if not s.weights.model)))
    for title, setting in report:
        print(f"\n{title} of {len(settings)} settings on the calibration half: {setting}")
        for label, calibrate in (("calibration (even)", True), ("held out (odd)", False)):
            print(f"  {label}")
            for n, r in zip(names, halves(setting, calibrate), strict=True):
                print(f"    {n}: " + json.dumps({k: _round(v) for k, v in r.items()}))
    if args.dump:
        args.dump.write_text(
            json.dumps([{"setting": repr(s), "even": halves(s, True)} for s in ranked[:50]])
        )
    return 0


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


if __name__ == "__main__":
    sys.exit(main())
