"""Sentence selection: which few sentences the model sees, and which one is quoted."""

from __future__ import annotations

import pytest

from embeddings.embedder import Embedder
from embeddings.index import ChunkRecord
from rag.context import TYPE_BONUS, answer_type_prior, select_sentences
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
