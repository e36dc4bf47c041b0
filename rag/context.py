"""Focused context: the few sentences of the retrieved chunks that best match the question.

A 135M model reads ~420 tokens/s and loses the thread in long prompts, so it is shown a
handful of numbered sentences instead of whole chunks; the same scores decide refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embeddings.chunking import split_sentences
from embeddings.embedder import Embedder
from rag.retrieve import Hit
from rag.text import INJECTION, content_terms

LEXICAL_WEIGHT = 0.3


@dataclass(frozen=True)
class Sentence:
    """A candidate sentence with offsets into its article and its relevance to the question."""

    hit: Hit
    text: str
    start: int
    end: int
    similarity: float  # cosine to the question
    overlap: float  # share of the question's content terms the sentence contains

    @property
    def score(self) -> float:
        return self.similarity + LEXICAL_WEIGHT * self.overlap


def term_overlap(question_terms: list[str], text: str) -> float:
    if not question_terms:
        return 0.0
    present = set(content_terms(text))
    return sum(1 for t in question_terms if t in present) / len(question_terms)


def candidate_sentences(hits: list[Hit]) -> list[tuple[Hit, str, int, int]]:
    """Sentences of the hits, deduplicated across overlapping chunks, injections dropped."""
    seen: set[tuple[str, int]] = set()
    out = []
    for hit in hits:
        chunk = hit.chunk
        for s, e in split_sentences(chunk.text):
            start, end = chunk.start + s, chunk.start + e
            text = chunk.text[s:e]
            key = (chunk.doc_id, start)
            if key in seen or len(text) < 12 or INJECTION.search(text):
                continue
            seen.add(key)
            out.append((hit, text, start, end))
    return out


def select_sentences(
    question: str, hits: list[Hit], embedder: Embedder, *, limit: int = 4
) -> list[Sentence]:
    """All candidate sentences scored, best first; the caller keeps the first `limit`."""
    candidates = candidate_sentences(hits)
    if not candidates:
        return []
    vectors = embedder.encode([question] + [c[1] for c in candidates])
    sims = vectors[1:] @ vectors[0]
    q_terms = list(dict.fromkeys(content_terms(question)))
    scored = [
        Sentence(hit, text, start, end, float(sim), term_overlap(q_terms, text))
        for (hit, text, start, end), sim in zip(candidates, np.asarray(sims), strict=True)
    ]
    scored.sort(key=lambda s: -s.score)
    return scored[:limit]
