"""The records `ask()` returns: what a caller, the CLI, the UI and the evaluator all read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["extracted", "generated", "quoted", "refused"]


@dataclass(frozen=True)
class AlsoPublished:
    """Another outlet's copy of the cited story (merged at ingest, see embeddings.dedup)."""

    doc_id: str
    source: str | None
    url: str | None
    title: str
    date: str | None


@dataclass(frozen=True)
class Citation:
    """One numbered piece of evidence: a sentence of an article and the passage around it.

    `n` is the number the answer text uses (`[n]`). `text`, `start` and `end` give the
    supporting sentence and its character offsets in the article, so a reader can jump to
    it; `passage` (starting at `passage_start` in the article) is the surrounding chunk,
    for display with `text` highlighted inside it. `also` lists the other outlets that
    published the same story (their copies are not searched separately).
    """

    n: int
    doc_id: str
    title: str
    date: str | None
    text: str
    start: int
    end: int
    score: float
    passage: str = ""
    passage_start: int = 0
    source: str | None = None
    url: str | None = None
    also: tuple[AlsoPublished, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """A grounded answer.

    `text` is the short answer itself ("Antony Blinken", "12,500"), the quoted sentences
    when no short answer could be chosen with confidence, or the refusal. `evidence` quotes
    the cited sentences with their `[n]` numbers. `mode` says how the text was produced:
    "extracted" (a span copied from a cited sentence, chosen among typed candidates),
    "generated" (the model's own words, checked against what it cites), "quoted" (no short
    answer was supported, so the best sentences are quoted), or "refused" (nothing retrieved
    answers the question). `confidence` is the reader's estimate (0-1) that its chosen span
    is the answer, when there was one; `candidates` are its best few spans, best first.
    `context` holds every numbered sentence the model was shown, so a refusal can still show
    what was looked at; `citations` holds the ones the answer relies on. `timings` are
    milliseconds per stage.
    """

    question: str
    text: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    context: list[Citation] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    mode: Mode = "generated"
    evidence: str = ""
    confidence: float | None = None
    candidates: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "text": self.text,
            "refused": self.refused,
            "mode": self.mode,
            "evidence": self.evidence,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "citations": [c.to_dict() for c in self.citations],
            "context": [c.to_dict() for c in self.context],
            "candidates": list(self.candidates),
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
        }
