"""The lead figure is the one its quote gives for what was asked (issue 13, item 9).

"How many vaccine doses will be donated next year?" was answered "More than 330 million"
while the quoted sentence gives 1.2 billion for next year: two figures in one sentence, one
per clause, and only one clause holds the question's verb and time. Through the real pipeline
over a small real index.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings.types import Document

SEEDS = Path(__file__).parent.parent / "seeds"
RELIEF = (
    "Speaking in Geneva on Monday, the health minister of Norvania said that more than 45 "
    "million vaccine doses have been delivered to at least 70 countries, and over 200 million "
    "vaccines will be donated to the partner nations next year. The minister also promised "
    "new funding for cold storage."
)


@pytest.mark.parametrize(
    ("question", "lead", "not_lead"),
    [
        ("How many vaccine doses will be donated next year?", "200 million", "45 million"),
        ("How many vaccine doses will Norvania donate next year?", "200 million", "45 million"),
        ("How many vaccine doses has Norvania delivered?", "45 million", "200 million"),
    ],
)
def test_the_lead_figure_is_the_one_for_what_was_asked(
    tmp_path: Path, make_pipeline, question: str, lead: str, not_lead: str
) -> None:
    pipeline = make_pipeline(tmp_path / "idx")
    pipeline.ingest([SEEDS], documents=[Document("relief", "Norvania vaccine relief", RELIEF)])
    answer = pipeline.ask(question)
    assert answer.mode == "extracted"
    assert lead in answer.text and not_lead not in answer.text
    assert answer.citations[0].doc_id == "relief" and lead in answer.evidence


def test_the_issue_example_on_the_seed_article(seed_pipeline) -> None:
    answer = seed_pipeline.ask("How many vaccine doses will be donated next year?")
    assert answer.mode == "extracted" and "1.2 billion" in answer.text
    assert "330 million" not in answer.text and "next year" in answer.evidence
    # the other clause still answers its own question
    assert "330 million" in seed_pipeline.ask("How many vaccine doses have been delivered?").text
