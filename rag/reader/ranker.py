"""How the reader weighs candidates: a logistic regression over their features, fitted.

`Weights` turn a candidate's features into a logit (`Candidate.probability`); `Ranker` holds
the two fitted ones (`prerank` before the model scores the best few, `final` after) and the
thresholds of answering, quoting and refusing, as `python -m evals.calibrate --fit` wrote
them to `ranker.json` beside this module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path

from rag.reader.candidates import Candidate

# The weight of `Candidate.clause`, chosen on the even halves of seed, squad2_dev500 and
# realtimeqa_dev by re-ranking stored contexts on the features alone (no model): at 0.2 seed EM
# 0.31 -> 0.34 and squad2 F1 0.420 -> 0.425 (held out: realtimeqa lost one question, squad2
# gained 0.006 F1). For names it gained nothing on the even halves and cost realtimeqa's odd
# half 0.03-0.06 F1 at 0.1-0.3, so only figures get it.
CLAUSE_WEIGHT = 0.2

RANKER_FILE = Path(__file__).with_name("ranker.json")


@dataclass(frozen=True)
class Weights:
    """How features combine into a candidate's score, a logit: `Candidate.probability` is
    the chance that it is the answer (`Ranker` holds the fitted ones); the defaults here are
    the hand weights the fitted ones replaced."""

    type_match: float = 0.2
    attach: float = 0.6
    coverage: float = 0.4
    near_head: float = 0.0
    entity: float = 0.0
    support: float = 0.4
    clause: float = CLAUSE_WEIGHT
    sentence: float = 0.5
    repeat: float = 0.0
    rank: float = 0.0
    fine: float = 0.0
    role: float = 0.0
    newest: float = 0.0
    lead: float = 0.0
    window: float = 0.0
    model: float = 0.05
    bias: float = 0.0

    def vector(self) -> list[float]:
        return [getattr(self, f) for f in FEATURES]


# The features a candidate carries and a regression weighs, in `Weights`' order.
FEATURES = tuple(f.name for f in fields(Weights) if f.name != "bias")


@dataclass(frozen=True)
class Ranker:
    """The reader's two fitted rankers and its thresholds (probabilities): `prerank` orders
    every candidate on its features, `final` re-orders the best few once the model has
    scored them. Below `min_confidence` the answer is quoted, not extracted; a typed
    question whose best candidate is below `min_answer` is refused; below `min_relevance`
    no retrieved sentence is close enough to the question to answer it (`Pipeline.focus`)."""

    prerank: Weights
    final: Weights
    min_confidence: float
    min_answer: float
    min_relevance: float = 0.4  # the pipeline's relevance gate, chosen with the rest

    @classmethod
    def fitted(cls, path: Path = RANKER_FILE) -> Ranker:
        return _load_ranker(str(path))

    def to_json(self) -> dict[str, object]:
        def weights(w: Weights) -> dict[str, float]:
            return {"bias": round(w.bias, 4), **{f: round(getattr(w, f), 4) for f in FEATURES}}

        return {
            "format": 1,
            "prerank": weights(self.prerank),
            "final": weights(self.final),
            "min_confidence": self.min_confidence,
            "min_answer": self.min_answer,
            "min_relevance": self.min_relevance,
        }


@lru_cache(maxsize=4)
def _load_ranker(path: str) -> Ranker:
    data = json.loads(Path(path).read_text())
    return Ranker(
        Weights(**data["prerank"]),
        Weights(**data["final"]),
        data["min_confidence"],
        data["min_answer"],
        data.get("min_relevance", 0.4),
    )


def rank(candidates: Sequence[Candidate], weights: Weights) -> list[Candidate]:
    """Candidates scored and sorted, best first."""
    w = weights.vector()
    scored = [
        replace(
            c, score=weights.bias + sum(x * getattr(c, f) for x, f in zip(w, FEATURES, strict=True))
        )
        for c in candidates
    ]
    return sorted(scored, key=lambda c: -c.score)
