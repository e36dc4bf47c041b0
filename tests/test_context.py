"""Sentence selection: which few sentences the model sees, and which one is quoted."""

from __future__ import annotations

import pytest

from embeddings.embedder import Embedder
from embeddings.index import ChunkRecord
from rag.context import (
    ACRONYM_BONUS,
    TYPE_BONUS,
    answer_type_prior,
    select_sentences,
    term_overlap,
    term_weights,
)
from rag.english.text import content_terms, stem
from rag.retrieve import Hit


def _hit(text: str, doc_id: str, score: float) -> Hit:
    chunk = ChunkRecord(
        id=len(doc_id),
        doc_id=doc_id,
        ordinal=0,
        start=0,
        end=len(text),
        text=text,
        title=doc_id,
        date=None,
        source=None,
        url=None,
    )
    return Hit(chunk, score)


def test_sentence_holding_the_asked_for_kind_of_answer_gains() -> None:
    assert answer_type_prior("When did Blinken speak?", "Blinken spoke on Tuesday.") == TYPE_BONUS
    assert answer_type_prior("When did Blinken speak?", "Blinken spoke at length.") == 0.0
    assert answer_type_prior("Where did Blinken speak?", "He spoke in Geneva.") == TYPE_BONUS
    assert answer_type_prior("Who is Blinken?", "He spoke in Geneva.") == 0.0


def test_an_equal_sentence_from_a_lower_ranked_chunk_comes_second(embedder: Embedder) -> None:
    same = "The council approved the new budget on Monday after a long debate."
    ranked = select_sentences(
        "When did the council approve the budget?",
        [_hit(same, "first", 0.9), _hit(same.replace("council", "Council"), "second", 0.5)],
        embedder,
    )
    assert [s.hit.doc_id for s in ranked] == ["first", "second"]
    assert ranked[0].relevance == pytest.approx(ranked[1].relevance, abs=0.02)
    assert ranked[0].score > ranked[1].score


def test_which_question_prefers_a_sentence_naming_a_new_acronym() -> None:
    q = "Which military alliance heads the list?"
    assert answer_type_prior(q, "The list: NATO, the G7 and ASEAN.") == ACRONYM_BONUS
    assert answer_type_prior(q, "The US heads the list.") == 0.0
    assert answer_type_prior("Who heads the list?", "NATO heads the list.") == 0.0


def test_a_rare_question_word_counts_more_than_one_every_sentence_has() -> None:
    sentences = [
        set(content_terms(t))
        for t in (
            "Blinken praised the allies.",
            "Blinken met the press.",
            "Blinken challenged the rules-based order.",
        )
    ]
    weights = term_weights(content_terms("What did Blinken say about challenges?"), sentences)
    assert term_overlap(weights, sentences[2]) > 0.5 > term_overlap(weights, sentences[0]) > 0
    assert stem("challenging") == stem("challenge") and stem("engaged") == stem("engagement")
