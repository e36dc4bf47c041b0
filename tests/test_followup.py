"""Follow-up questions become standalone ones that retrieval and the answerer can use alone."""

from __future__ import annotations

import pytest

from rag.followup import is_followup, rewrite_question

VACCINE = "How many vaccine doses has the US delivered abroad?"
H_VACCINE = [(VACCINE, "More than 330 million [1]")]


@pytest.mark.parametrize(
    ("question", "history", "expected"),
    [
        (
            "And to how many countries?",
            H_VACCINE,
            "To how many countries has the US delivered vaccine doses abroad?",
        ),
        ("When?", H_VACCINE, "When has the US delivered vaccine doses abroad?"),
        ("What about China?", H_VACCINE, "How many vaccine doses has China delivered abroad?"),
        (
            "And Lithuania?",
            [("What did the US pledge to Taiwan?", "Support [1]")],
            "What did the US pledge to Lithuania?",
        ),
        (
            "Why?",
            [("Did the US boycott the Beijing Olympics?", "Yes [1]")],
            "Why did the US boycott the Beijing Olympics?",
        ),
        (
            "What did he say about China?",
            [("Who is the US Secretary of State?", "Antony Blinken is the US Secretary of State.")],
            "What did Antony Blinken say about China?",
        ),
        (
            "What does it distribute?",
            [("What is COVAX?", "A partnership [1]")],
            "What does COVAX distribute?",
        ),
        (
            "When did he say that?",
            [("What did Blinken say about vaccine solidarity?", "Doses were delivered [1]")],
            "When did Blinken say that, regarding vaccine solidarity?",
        ),
    ],
)
def test_follow_ups_are_rewritten_into_standalone_questions(
    question: str, history: list[tuple[str, str]], expected: str
) -> None:
    assert is_followup(question, history)
    assert rewrite_question(question, history) == expected


@pytest.mark.parametrize(
    "question",
    [
        VACCINE,
        "Who is Antony Blinken?",
        "What did Blinken say about Russia?",
        "How many vaccine doses will be donated next year?",
        "Why did the US boycott the Beijing Olympics?",
        "What is COVAX?",
        "Which countries did the US pledge support for?",
    ],
)
def test_standalone_questions_are_left_alone(question: str) -> None:
    assert not is_followup(question, H_VACCINE)
    assert rewrite_question(question, H_VACCINE) == question


def test_a_complete_question_after_a_connector_only_loses_the_connector() -> None:
    assert rewrite_question("Also, what is COVAX?", H_VACCINE) == "What is COVAX?"
    assert rewrite_question("So why did Beijing object?", H_VACCINE) == ("Why did Beijing object?")


def test_without_history_nothing_changes() -> None:
    assert rewrite_question("And to how many countries?", []) == "And to how many countries?"
    assert rewrite_question("  ", H_VACCINE) == ""


def test_a_chain_of_follow_ups_keeps_the_topic() -> None:
    first = rewrite_question("And to how many countries?", H_VACCINE)
    second = rewrite_question("What about China?", [*H_VACCINE, (first, "110 [1]")])
    assert second == "To how many countries has China delivered vaccine doses abroad?"


def test_the_rewritten_question_retrieves_the_right_sentence(seed_pipeline) -> None:
    """End to end on the seed: the bare follow-up cannot be answered, the rewrite can."""
    standalone = rewrite_question("And to how many countries?", H_VACCINE)
    answer = seed_pipeline.ask(standalone)
    assert not answer.refused
    assert "110" in answer.text
    assert any("110 countries" in c.text for c in answer.citations)


def test_it_is_the_thing_asked_about_not_the_person_who_answered() -> None:
    history = [("Who designed the Tidewater bridge?", "Rosalind Achebe")]
    assert rewrite_question("When did it open?", history) == "When did the Tidewater bridge open?"
    assert rewrite_question("Where did she study?", history) == "Where did Rosalind Achebe study?"
