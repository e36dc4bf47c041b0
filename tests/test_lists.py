"""Answers with several parts (issue 13, item 8): every name the evidence gives, not the first.

The unit tests use spaCy's real small pipeline on plain sentences (milliseconds once loaded);
the last test asks through the real pipeline over a small real index.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings.types import Document
from rag.reader.answer_type import answer_type
from rag.reader.answerers import Draft, Focus, ReaderAnswerer
from rag.reader.candidates import Scored, extract
from rag.reader.lists import coordinated
from rag.reader.ranker import Weights, rank
from rag.types import Citation

VOTE = "Councillors Maria Lindqvist and Tomas Brandt voted against the Orvana bridge on Monday."
TALKS = "Antony Blinken, Wang Yi and Olaf Scholz met in Rome on Tuesday."
ALLIANCE = "Sweden and Finland applied to join the alliance in May."


def _best_and_list(question: str, sentence: str) -> tuple[str, str]:
    kind = answer_type(question)
    best = rank(extract(question, kind, [Scored(1, sentence, 1.0)]), Weights())[0]
    merged = coordinated(question, kind, best, sentence)
    first, last = merged.text.split(", ")[0].split(" and ")[0], merged.text.split(" and ")[-1]
    held = sentence[merged.start : merged.end]  # the offsets cover the whole list
    assert held.startswith(first) and held.endswith(last)
    return best.text, merged.text


def test_names_joined_by_and_are_all_the_answer() -> None:
    best, merged = _best_and_list("Who voted against the bridge?", VOTE)
    assert best in {"Maria Lindqvist", "Tomas Brandt"}
    assert merged == "Maria Lindqvist and Tomas Brandt"


def test_a_comma_list_keeps_every_name_in_sentence_order() -> None:
    # spaCy's small NER calls "Olaf Scholz" an ORG here; it is still one of the kinds "who" asks
    assert _best_and_list("Who met in Rome?", TALKS)[1] == "Antony Blinken, Wang Yi and Olaf Scholz"


def test_a_plural_question_gets_the_list_and_a_singular_one_gets_one() -> None:
    assert _best_and_list("Which countries applied to join the alliance?", ALLIANCE)[1] == (
        "Sweden and Finland"
    )
    best, merged = _best_and_list("Which country applied to join the alliance?", ALLIANCE)
    assert merged == best == "Sweden"
    mayor = "Orvana's mayor Ingrid Solberg and her deputy Lars Holm opened the bridge."
    best, merged = _best_and_list("Who is the mayor of Orvana?", mayor)
    assert merged == best == "Ingrid Solberg"


def test_the_grammatical_number_of_the_question() -> None:
    assert answer_type("Which country joined the alliance?").singular
    assert answer_type("Who is the president of France?").singular
    assert not answer_type("Which countries joined the alliance?").singular
    assert not answer_type("Who are the leaders of the talks?").singular
    assert not answer_type("Who voted against the bridge?").singular  # the evidence decides


def test_alternatives_and_other_roles_are_not_merged() -> None:
    either = "Either Antony Blinken or Wang Yi will lead the talks."
    best, merged = _best_and_list("Who will lead the talks?", either)
    assert merged == best  # "A or B" does not say both
    # two people in different roles of one sentence are not a list
    roles = "Maria Lindqvist thanked Tomas Brandt after the vote on the bridge."
    best, merged = _best_and_list("Who thanked a councillor after the vote?", roles)
    assert merged == best == "Maria Lindqvist"
    # figures joined by "and" count different things: "how many" keeps one
    figures = "The council counted 300 votes for the bridge and 120 votes against it."
    best, merged = _best_and_list("How many votes were against the bridge?", figures)
    assert merged == best


def test_the_reader_answers_with_the_list_and_quotes_its_sentence() -> None:
    context = [Citation(1, "doc", "title", None, VOTE, 0, len(VOTE), 1.0)]
    items = list(ReaderAnswerer(None).answer(Focus("Who voted against the bridge?", context)))
    draft = items[-1]
    assert isinstance(draft, Draft) and draft.mode == "extracted"
    assert items[0] == draft.text == "Maria Lindqvist and Tomas Brandt"
    assert draft.evidence == f"“{VOTE}” [1]"


BRIDGE = (
    "The Orvana council approved the new river bridge on Monday by seven votes to two. "
    "Councillors Maria Lindqvist and Tomas Brandt voted against the bridge, saying its cost "
    "of 48 million euros was too high. Construction is due to start in the spring."
)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Who voted against the bridge?", "Maria Lindqvist and Tomas Brandt"),
        ("Which councillors voted against the Orvana bridge?", "Maria Lindqvist and Tomas Brandt"),
    ],
)
def test_a_list_question_is_answered_with_every_name(
    tmp_path: Path, make_pipeline, question: str, expected: str
) -> None:
    pipeline = make_pipeline(tmp_path / "idx")
    pipeline.ingest(
        [Path(__file__).parent.parent / "seeds"],
        documents=[Document("bridge", "Orvana approves bridge", BRIDGE)],
    )
    answer = pipeline.ask(question)
    assert answer.mode == "extracted" and answer.text == expected
    assert answer.citations[0].doc_id == "bridge"
    assert "Maria Lindqvist and Tomas Brandt voted against" in answer.evidence
