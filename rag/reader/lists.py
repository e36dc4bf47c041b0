"""List answers: "Who voted against the bridge?" -> "Maria Lindqvist and Tomas Brandt".

The reader chooses one span. When its sentence coordinates that span with others of the same
kind ("Maria Lindqvist and Tomas Brandt voted against", spaCy's `conj`), each fills the same
role in the sentence, so each answers the question and the answer names them all. Whether a
question wants several things is read from the evidence, not from its wording ("Who voted…?"
can have one answer or five); only a question whose grammar asks for one thing ("which
country", "who is the president", `AnswerType.singular`) keeps the single span. Only named
entities are listed: "how many" asks for one count (two figures joined by "and" usually
count different things), and on squad2_dev500 joined noun phrases ("terrestrial offering
and cable services") added words, not answers.

    >>> best = coordinated(question, kind, best, sentence_text)
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from rag.english import nlp
from rag.english.text import content_terms
from rag.reader.answer_type import AnswerType
from rag.reader.candidates import Candidate

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

_AND = frozenset({"and", "&"})
_NOT_AND = frozenset({"or", "nor", "but", "either", "neither"})  # "A or B" is not both
_STRIP = " ,.;:\"'“”‘’()"


def coordinated(question: str, kind: AnswerType, best: Candidate, sentence: str) -> Candidate:
    """`best`, or the list of it and the same-kind spans coordinated with it by "and" in its
    sentence ("A and B", "A, B and C"), in sentence order; offsets then span the whole list."""
    if kind.numeric or kind.singular or kind.explain or best.label in {"NUM", "NP"}:
        return best
    doc = nlp.parse(sentence)
    span = doc.char_span(best.start, best.end, alignment_mode="expand")
    if span is None or not span.root.conjuncts or not _joined_by_and(span.root):
        return best
    asked = set(content_terms(question))
    parts: dict[int, Span] = {span.start: span}
    for token in span.root.conjuncts:
        part = _same_kind(doc, token, best.label, kind)
        if part is None or part.start in parts:
            continue
        text = part.text.strip(_STRIP)
        terms = content_terms(text)
        if text and terms and not set(terms) <= asked:
            parts[part.start] = part
    if len(parts) < 2:
        return best
    ordered = [parts[i] for i in sorted(parts)]
    texts = [p.text.strip(_STRIP) for p in ordered]
    start = sentence.find(texts[0], ordered[0].start_char)
    end = sentence.find(texts[-1], ordered[-1].start_char) + len(texts[-1])
    return replace(best, text=_join(texts), start=start, end=end)


def _joined_by_and(root: Token) -> bool:
    """The coordination says "and" (not "or", "nor", "but"): then every conjunct holds."""
    words = {
        c.lower_ for t in (root, *root.conjuncts) for c in t.children if c.dep_ in {"cc", "preconj"}
    }
    return bool(words & _AND) and not words & _NOT_AND


def _same_kind(doc: Doc, token: Token, label: str, kind: AnswerType) -> Span | None:
    """The entity of the asked kind (else of `label`) around `token`."""
    # any kind asked for: spaCy's small NER calls some names ORG, others PERSON
    labels = kind.labels or {label}
    return next((e for e in doc.ents if e.start <= token.i < e.end and e.label_ in labels), None)


def _join(texts: list[str]) -> str:
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]
