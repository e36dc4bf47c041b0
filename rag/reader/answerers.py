"""Answerers: from the numbered sentences of the focused context to the answer text.

One small object per strategy, one `answer()` method, chosen by name from `ANSWERERS` (the way
Haystack's `DocumentJoiner` maps its join modes to functions):

    >>> answerer = make_answerer(AnswererName.READER, model)
    >>> for item in answerer.answer(Focus(question, context)):
    ...     print(item)  # str deltas, then one Draft

- `reader` (default): typed candidate spans from spaCy, ranked by their features and by the
  model's likelihood of each as the answer; a confident span is the answer (with the names
  its sentence coordinates with it, `rag.reader.lists`), else a quote.
- `grounded`: the model writes freely; its answer is kept only when the cited sentence
  supports it (and, for a typed question, it contains a candidate of that type).
- `extractive`: always quote the best sentences. `generative`: the model's unchecked answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Protocol

from rag.models.generate import CandidateScorer, Generator, Messages
from rag.reader.answer_type import answer_type, can_answer
from rag.reader.candidates import Candidate, Scored, extract
from rag.reader.freshness import long_date, revision
from rag.reader.ground import (
    answers_question,
    evidence_text,
    is_model_refusal,
    parse_citations,
    previous_sentence,
    quote,
    quoted_evidence,
    supporting,
)
from rag.reader.lists import coordinated
from rag.reader.ranker import Ranker, rank
from rag.types import Citation, Mode

REFUSAL = "The indexed articles don't contain an answer to this question."
NO_ARTICLE_IN_FILTERS = (
    "No article in the chosen dates or sources; "
    "widen the date range, the as-of date or the sources."
)

# Measured on SmolLM2-135M: a one-line instruction and a bare "Question:" get short copied
# phrases; worked examples in the prompt get copied back verbatim instead.
SYSTEM_PROMPT = "Answer the question with a short phrase copied from the numbered sentences."
STOP = ["\n\n", "Question:", "Sentences:"]

SCORED = 6  # candidates the model scores: one batch of the scoring context's sequences


class AnswererName(str, Enum):
    READER = "reader"
    GROUNDED = "grounded"
    EXTRACTIVE = "extractive"
    GENERATIVE = "generative"


@dataclass(frozen=True)
class Focus:
    """What an answerer sees: the question (injections stripped) and the numbered sentences,
    best first. Answerers add their stages' milliseconds to `timings`."""

    question: str
    context: list[Citation]
    timings: dict[str, float] = field(default_factory=dict)
    read: int = 4  # the best sentences a model reading the context whole is shown

    @property
    def shown(self) -> list[Citation]:
        return self.context[: self.read]


@dataclass(frozen=True)
class Draft:
    text: str
    mode: Mode
    citations: list[Citation] = field(default_factory=list)
    evidence: str = ""
    confidence: float | None = None
    candidates: tuple[str, ...] = ()  # the reader's best few answers, best first


class Answerer(Protocol):
    def answer(self, focus: Focus) -> Iterator[str | Draft]:
        """Yields text deltas as they come, then exactly one Draft."""
        ...


class Model:
    """The generator, loaded on first use and used by one question at a time."""

    def __init__(self, load: Callable[[], Generator]) -> None:
        self._load = load
        self.lock = threading.Lock()

    @property
    def generator(self) -> Generator:
        return self._load()


def build_messages(question: str, context: list[Citation]) -> Messages:
    numbered = "\n".join(f"[{c.n}] {c.text}" for c in context)
    user = f"{numbered}\n\nQuestion: {question}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def scoring_messages(question: str, context: list[Citation], top: list[Candidate]) -> Messages:
    """What the model reads to score candidates: only the sentences they come from, with
    their original numbers. That was half the prompt on the seed questions, so the reading
    takes ~40% less; held-out halves of seed, RealTime QA and SQuAD scored the same or better."""
    held = {c.n for c in top}
    return build_messages(question, [c for c in context if c.n in held])


def refusal() -> Draft:
    return Draft(REFUSAL, "refused")


def quoted(focus: Focus, best: Candidate | None = None) -> Draft:
    """The best sentences, quoted; when the reader had a candidate it did not trust, the
    sentence that candidate comes from leads (issue 18: the first retrieved sentence was
    quoted even when it named nothing of the kind asked for)."""
    cites = quoted_evidence(focus.context)
    if best is not None:
        lead = focus.context[best.n - 1]
        cites = [lead, *(c for c in cites if c.n != lead.n)][:2]
    cites = numbered(cites)
    confidence = best.probability if best is not None else None
    return Draft(quote(cites, focus.question), "quoted", cites, evidence_text(cites), confidence)


def numbered(cites: list[Citation]) -> list[Citation]:
    """Citations numbered 1..n in the order shown, so one cited sentence is [1], not [3]."""
    return [replace(c, n=i) for i, c in enumerate(cites, 1)]


def _lap(focus: Focus, stage: str, since: float) -> float:
    now = time.perf_counter()
    focus.timings[stage] = focus.timings.get(stage, 0.0) + (now - since) * 1000
    return now


def _stream_model(model: Model, focus: Focus, out: list[str]) -> Iterator[str]:
    """The model's free answer, streamed; the whole text is left in `out[0]`."""
    draft = ""
    with model.lock:
        t = time.perf_counter()
        for delta in model.generator.stream(
            build_messages(focus.question, focus.shown), max_tokens=48, stop=STOP
        ):
            draft += delta
            yield delta
        _lap(focus, "generate", t)
    out.append(draft)


class ReaderAnswerer:
    """Typed candidates, ranked by features and the model's likelihood; see module doc.

    Candidates come from every retrieved sentence; a logistic regression on their features
    (`Ranker.prerank`) keeps the best `scored`, the model scores those, and a second one with
    the model's score (`Ranker.final`) gives each its probability of being the answer.
    `min_confidence`: below it the best candidate is not trusted and the sentence it comes
    from is quoted instead. `min_answer`: below it, a question that asks for a definite kind
    of thing (who, when, where, how many) is refused: no sentence holds a believable answer.
    Defaults: `python -m evals.calibrate --fit` (`rag/reader/ranker.json`).
    """

    def __init__(
        self,
        model: Model | None,
        ranker: Ranker | None = None,
        *,
        scored: int = SCORED,
    ) -> None:
        self.model = model
        self.ranker = ranker or Ranker.fitted()
        self.scored = scored

    def candidates(self, focus: Focus) -> list[Candidate] | None:
        """Ranked candidates; None when the question wants a type no sentence holds."""
        t = time.perf_counter()
        kind = answer_type(focus.question)
        sentences = [
            Scored(c.n, c.text, c.score, c.date, c.start, previous_sentence(c))
            for c in focus.context
        ]
        found = rank(extract(focus.question, kind, sentences), self.ranker.prerank)
        t = _lap(focus, "candidates", t)
        if kind.strict and not found:
            return None
        top = found[: self.scored]
        scorer = self.model.generator if self.model else None
        if top and isinstance(scorer, CandidateScorer):
            assert self.model is not None
            messages = scoring_messages(focus.question, focus.context, top)
            with self.model.lock:
                logp = scorer.score(messages, [c.text for c in top])
            top = [replace(c, model=lp) for c, lp in zip(top, logp, strict=True)]
            _lap(focus, "score", t)
        found = rank(top, self.ranker.final)  # the rest were never likely enough
        if kind.strict and found[0].probability < self.ranker.min_answer:
            return None
        return found

    def answer(self, focus: Focus) -> Iterator[str | Draft]:
        found = self.candidates(focus)
        if found is None:
            yield refusal()
            return
        best = found[0] if found else None
        others = tuple(c.text for c in found[:5]) if found else ()  # `Answer.candidates`
        if best is None or best.probability < self.ranker.min_confidence:
            draft = quoted(focus, best)
            draft = replace(draft, candidates=others)
            yield draft.text
            yield draft
            return
        revised = revision(found, focus.context)
        if revised is not None:
            best = revised.newer
        cite = focus.context[best.n - 1]
        best = coordinated(focus.question, answer_type(focus.question), best, cite.text)
        cites = numbered([cite])
        evidence = evidence_text(cites)
        if revised is not None:
            older = replace(focus.context[revised.older.n - 1], n=2)
            cites.append(older)
            evidence += f" Earlier, on {long_date(older.date or '')}: {evidence_text([older])}"
        yield best.text
        yield Draft(best.text, "extracted", cites, evidence, best.probability, others)


class GroundedAnswerer:
    """The model's own words when the cited sentence supports them, else a quote."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def answer(self, focus: Focus) -> Iterator[str | Draft]:
        if not can_answer(focus.question, [c.text for c in focus.context[:2]]):
            yield refusal()
            return
        out: list[str] = []
        yield from _stream_model(self.model, focus, out)
        text, cited = parse_citations(out[0].strip(), len(focus.shown))
        evidence = [c.text for c in focus.shown]
        cited = cited or supporting(text, evidence)[:1]
        kind = answer_type(focus.question)
        typed = kind.labels and not kind.explain
        spans = extract(focus.question, kind, [Scored(c.n, c.text, c.score) for c in focus.shown])
        if (
            text
            and not is_model_refusal(text)
            and cited
            and answers_question(text, focus.question, [evidence[n - 1] for n in cited])
            and (not typed or any(s.text.lower() in text.lower() for s in spans))
        ):
            cites = [focus.context[n - 1] for n in cited]
            yield Draft(text, "generated", cites, evidence_text(cites))
        else:
            yield quoted(focus)


class ExtractiveAnswerer:
    """Quotes the best sentences; no model."""

    def answer(self, focus: Focus) -> Iterator[str | Draft]:
        if not can_answer(focus.question, [c.text for c in focus.context[:2]]):
            yield refusal()
            return
        draft = quoted(focus)
        yield draft.text
        yield draft


class GenerativeAnswerer:
    """The model's answer as written, unchecked: the baseline the checks are measured against."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def answer(self, focus: Focus) -> Iterator[str | Draft]:
        out: list[str] = []
        yield from _stream_model(self.model, focus, out)
        text, cited = parse_citations(out[0].strip(), len(focus.shown))
        if not text:
            yield refusal()
            return
        cites = [focus.context[n - 1] for n in cited]
        yield Draft(text, "generated", cites, evidence_text(cites))


ANSWERERS: dict[AnswererName, Callable[[Model], Answerer]] = {
    AnswererName.READER: lambda model: ReaderAnswerer(model),
    AnswererName.GROUNDED: GroundedAnswerer,
    AnswererName.EXTRACTIVE: lambda model: ExtractiveAnswerer(),
    AnswererName.GENERATIVE: GenerativeAnswerer,
}


def make_answerer(name: AnswererName | str, model: Model) -> Answerer:
    return ANSWERERS[AnswererName(name)](model)
