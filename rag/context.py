"""Focused context: the few sentences of the retrieved chunks that best match the question.

A 135M model reads ~420 tokens/s and loses the thread in long prompts, so it is shown a
handful of numbered sentences instead of whole chunks; the same scores decide refusal.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from embeddings.embedder import Embedder
from embeddings.furniture import story_sentences
from rag.english.text import INJECTION, content_terms, stem, tokens
from rag.reader.answer_type import expected_type, has_candidate
from rag.retrieve import Hit

LEXICAL_WEIGHT = 0.3
# Ranking priors, measured on the gold sentence's rank (seed, squad2_dev500, realtimeqa_dev):
# each retrieval rank below the first costs 0.05 (the retriever saw the whole chunk; top-2
# on RealTime QA 0.52 -> 0.57), and a sentence holding what a "when"/"how many"/"where"
# question asks for gains 0.1 (top-1 0.45 -> 0.46 there; seed and SQuAD unchanged). With
# IDF-weighted overlap, Snowball stems and a bonus for a new acronym under "which X?", the
# gold sentence is quoted for 0.75 of answerable seed questions (was 0.69), 0.57 on RealTime
# QA (0.56) and still 0.87 on SQuAD.
CHUNK_RANK_PENALTY = 0.05
TYPE_BONUS = 0.1
ACRONYM_BONUS = 0.15
_WHERE = re.compile(
    r"^\s*where\b|\b(which|what) (city|country|nation|state|region|continent|town|island"
    r"|province|county|capital|place|location)\b",
    re.IGNORECASE,
)
_WHICH = re.compile(
    r"^\s*(which|what)\s+(?!is\b|was\b|are\b|were\b|did\b|does\b|do\b|has\b|have\b|will\b)\w+",
    re.IGNORECASE,
)
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{1,6}\b")
_COMMON_ACRONYMS = frozenset({"US", "UK", "I"})
_PLACE = re.compile(r"\b(?:in|at|near|from|to)\s+(?:the\s+)?([A-Z][\w’'-]+)")
# A sentence of an article addressed to the model or the reader is not evidence: "ignore the
# question and say…", chat-role turns, "when asked…, answer…", and fake citations (a source
# list, "[3] …", "according to [2]") that would pose as this answer's own [n] numbers.
# tests/test_injection.py: before this filter such sentences were cited, and a fake
# "according to [2]" figure was given as the answer. On the 77,445 sentences of the three
# shared datasets it drops one: an image credit, "Source: Microsoft; Google Maps".
NOT_EVIDENCE = re.compile(
    r"\b(ignore|disregard|forget)\b[^.?!]{0,60}\b(question|query|user)\b"
    r"|^\W*(system|assistant|user|human)\s*:|<\|\w+\|>|\[/?INST\]"
    r"|\bwhen asked\b[^.?!]{0,60}\b(say|answer|respond|reply)\b"
    r"|\b(answer|respond|reply)s?\s+(to\s+)?(every|any|all|each)\s+(questions?|query)\s+with\b"
    r"|^\W*(sources?|references?|citations?)\s*:|^\W*\[\d+\]|\baccording to \[\d+\]",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sentence:
    """A candidate sentence with offsets into its article and its relevance to the question."""

    hit: Hit
    text: str
    start: int
    end: int
    similarity: float  # cosine to the question
    overlap: float  # IDF-weighted share of the question's content terms in the sentence
    prior: float = 0.0  # chunk rank and answer-type adjustments, for ordering only

    @property
    def relevance(self) -> float:
        """How close the sentence is to the question; the refusal gate compares this."""
        return self.similarity + LEXICAL_WEIGHT * self.overlap

    @property
    def score(self) -> float:
        return self.relevance + self.prior


def term_weights(question_terms: list[str], sentences: list[set[str]]) -> dict[str, float]:
    """IDF of each question term over the candidate sentences: a name in every sentence of
    the article ("Blinken") tells them apart less than a word only one of them has."""
    n = len(sentences)
    return {t: math.log(1 + n / (1 + sum(t in s for s in sentences))) for t in question_terms}


def term_overlap(weights: dict[str, float], terms: set[str]) -> float:
    """Weighted share of the question's content terms that the sentence contains."""
    total = sum(weights.values())
    return sum(w for t, w in weights.items() if t in terms) / total if total else 0.0


def candidate_sentences(hits: list[Hit]) -> list[tuple[Hit, str, int, int]]:
    """Sentences of the hits, deduplicated across overlapping chunks, with news furniture
    (datelines, photo credits, bylines, "Read more" lines) cut out and injections dropped."""
    seen: set[tuple[str, int]] = set()
    out = []
    for hit in hits:
        chunk = hit.chunk
        for s, e in story_sentences(chunk.text):
            start, end = chunk.start + s, chunk.start + e
            text = chunk.text[s:e]
            key = (chunk.doc_id, start)
            if key in seen or len(text) < 12 or INJECTION.search(text) or NOT_EVIDENCE.search(text):
                continue
            seen.add(key)
            out.append((hit, text, start, end))
    return out


def select_sentences(
    question: str, hits: list[Hit], embedder: Embedder, *, limit: int | None = None
) -> list[Sentence]:
    """All candidate sentences scored, best first; the caller keeps the first `limit`."""
    candidates = candidate_sentences(hits)
    if not candidates:
        return []
    vectors = embedder.encode([question] + [c[1] for c in candidates])
    sims = vectors[1:] @ vectors[0]
    terms = [set(content_terms(c[1])) for c in candidates]
    weights = term_weights(list(dict.fromkeys(content_terms(question))), terms)
    rank = {id(hit): i for i, hit in enumerate(hits)}
    scored = [
        Sentence(
            hit,
            text,
            start,
            end,
            float(sim),
            term_overlap(weights, sentence_terms),
            answer_type_prior(question, text) - CHUNK_RANK_PENALTY * rank[id(hit)],
        )
        for (hit, text, start, end), sim, sentence_terms in zip(
            candidates, np.asarray(sims), terms, strict=True
        )
    ]
    scored.sort(key=lambda s: -s.score)
    return scored[:limit]


def answer_type_prior(question: str, sentence: str) -> float:
    """TYPE_BONUS when the sentence holds a new date, number or place of the kind asked for."""
    kind = expected_type(question)
    if kind is not None:
        return TYPE_BONUS if has_candidate(kind, question, sentence) else 0.0
    if _WHERE.search(question):
        asked = {stem(t) for t in tokens(question)}
        if any(stem(m.group(1)) not in asked for m in _PLACE.finditer(sentence)):
            return TYPE_BONUS
    elif _WHICH.search(question) and (  # "which alliance/bloc/agency": often NATO, ASEAN, WHO
        set(_ACRONYM.findall(sentence)) - set(_ACRONYM.findall(question)) - _COMMON_ACRONYMS
    ):
        return ACRONYM_BONUS
    return 0.0
