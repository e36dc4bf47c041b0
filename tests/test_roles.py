"""The question's verb and asked slot, aligned with a candidate's place in its sentence."""

from __future__ import annotations

import pytest

from rag.english import nlp
from rag.english.roles import asked_slot, role


@pytest.mark.parametrize(
    ("question", "verb", "subject"),
    [
        ("Who designed the Tidewater bridge?", "design", True),
        ("Which company repaired the Marlow harbour?", "repair", True),
        ("Which country did the president visit?", "visit", False),  # the parse says nsubj
        ("Who was arrested in Idaho?", "arrest", False),
        ("What did the IRS announce this week?", "announce", False),
    ],
)
def test_the_asked_slot(question: str, verb: str, subject: bool) -> None:
    slot = asked_slot(nlp.parse(question))
    assert slot is not None and slot.verb == verb
    assert ("nsubj" in slot.deps) is subject


def test_a_copula_question_has_no_slot_to_align() -> None:
    assert asked_slot(nlp.parse("Who is the mayor of Quenby?")) is None


def _ents(sentence: str) -> dict[str, object]:
    return {e.text: e for e in nlp.parse(sentence).ents}


def test_the_passive_agent_fills_the_subject_slot() -> None:
    slot = asked_slot(nlp.parse("Who designed the Willowmere Library?"))
    ents = _ents("The building was designed by the architect Tomas Reyne.")
    assert role(ents["Tomas Reyne"], slot) == 1.0


def test_the_object_of_the_verb_is_not_its_subject() -> None:
    slot = asked_slot(nlp.parse("Who hired Maria Lopez?"))
    ents = _ents("Acme Corp hired Maria Lopez in May.")
    assert role(ents["Maria Lopez"], slot) == -1.0
    assert role(ents["Acme Corp"], slot) == 1.0


def test_how_many_counts_the_figure_in_the_asked_slot_of_the_verb() -> None:
    slot = asked_slot(nlp.parse("How many vaccine doses has the US delivered abroad?"))
    sentence = (
        "More than 330 million vaccine doses have been delivered to at least 110 countries, "
        "and over 1.2 billion vaccines will be donated next year."
    )
    ents = _ents(sentence)
    assert role(ents["More than 330 million"], slot) == 1.0  # the doses delivered
    assert role(ents["at least 110"], slot) == -1.0  # where they went, another slot
    assert role(ents["1.2 billion"], slot) == 0.0  # the subject of another verb


def test_to_how_many_asks_for_the_object_of_the_preposition() -> None:
    slot = asked_slot(nlp.parse("To how many countries has the US delivered vaccine doses?"))
    ents = _ents(
        "More than 330 million vaccine doses have been delivered to at least 110 countries."
    )
    assert role(ents["at least 110"], slot) == 1.0
    assert role(ents["More than 330 million"], slot) == -1.0
