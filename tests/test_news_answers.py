"""Small articles anyone could write, with the mistakes issue 18 saw on real news: a place for
"who", a passive agent missed, a quote of a sentence that names nothing asked for, the older
article's office-holder, a dateline or a photographer as the answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings.types import Document
from rag import Pipeline

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory, embedder, generator) -> Pipeline:
    from rag.pipeline import Settings

    settings = Settings(seeds_dir=SEEDS)
    pipeline = Pipeline(
        tmp_path_factory.mktemp("news"), settings=settings, embedder=embedder, generator=generator
    )
    docs = [
        Document(
            "bridge",
            "Tidewater bridge",
            "The Tidewater bridge in Saltmarsh opened on Saturday. It is 840 metres long and was "
            "designed by the engineer Rosalind Achebe.",
            "2024-05-04",
        ),
        Document(
            "library",
            "Library opens",
            "The town of Brackenford opened the Willowmere Library on 3 March 2024. The building "
            "was designed by the architect Tomas Reyne.",
            "2024-03-03",
        ),
        Document(
            "harbour",
            "Harbour reopens",
            "The Marlow harbour reopened on Wednesday after 14 months of repairs. The work was "
            "carried out by Tidewell Engineering, a firm based in Dunmore.",
            "2024-06-12",
        ),
        Document(
            "mayor-2023",
            "Quenby election",
            "Tomas Reyes was elected mayor of Quenby on Sunday after a close race.",
            "2023-02-10",
        ),
        Document(
            "mayor-2024",
            "Tram line",
            "Mayor Ilse Varga of Quenby opened the new tram line on Monday, a year after taking "
            "office.",
            "2024-03-04",
        ),
        Document(
            "flood",
            "Flood in Montana",
            "RED LODGE, Montana (AP) — Floodwaters washed out roads near Yellowstone National "
            "Park on Monday. Matthew Brown/AP Park officials closed every entrance to Yellowstone.",
            "2022-06-14",
        ),
    ]
    pipeline.ingest(documents=docs)
    return pipeline


def test_who_designed_it_is_the_passive_agent_not_the_town(news: Pipeline) -> None:
    answer = news.ask("Who designed the Tidewater bridge?")
    assert answer.mode == "extracted" and answer.text == "Rosalind Achebe"
    answer = news.ask("Who designed the Willowmere Library?")
    assert answer.mode == "extracted" and answer.text == "Tomas Reyne"


def test_which_company_is_answered_from_the_sentence_that_names_one(news: Pipeline) -> None:
    answer = news.ask("Which company repaired the Marlow harbour?")
    assert "Tidewell Engineering" in answer.text
    assert "Tidewell Engineering" in answer.evidence


def test_the_newest_article_names_the_office_holder(news: Pipeline) -> None:
    answer = news.ask("Who is the mayor of Quenby?", as_of="2024-12-31")
    assert answer.text == "Ilse Varga"
    assert "mayor-2024" in {c.doc_id for c in answer.context}


def test_a_dateline_or_a_photo_credit_is_never_the_answer(news: Pipeline) -> None:
    answer = news.ask("Which national park was hit by flooding?")
    assert "Yellowstone" in answer.text
    assert "Matthew Brown" not in answer.evidence and "(AP)" not in answer.evidence
    assert all("Matthew Brown" not in c.text for c in answer.context)
    assert all("RED LODGE" not in c.text for c in answer.context)


def test_a_three_turn_chat_keeps_its_subject(news: Pipeline) -> None:
    history: list[tuple[str, str]] = []
    first = news.ask("Who designed the Tidewater bridge?")
    history.append((first.question, first.text))
    second = news.ask("When did it open?", history=history)
    assert second.question == "When did the Tidewater bridge open?"  # "it": not the designer
    assert "Saturday" in second.text
    history.append((second.question, second.text))
    third = news.ask("How long is it?", history=history)
    assert third.question == "How long is the Tidewater bridge?"
    assert "840 metres" in third.text


def test_the_sentence_before_a_pronoun_is_quoted_without_its_dateline() -> None:
    from rag.reader.ground import evidence_text
    from rag.types import Citation

    passage = (
        "SALTMARSH (AP) — The Tidewater bridge opened on Saturday. It was designed by the "
        "engineer Rosalind Achebe."
    )
    start = passage.index("It was")
    cite = Citation(1, "d", "t", None, passage[start:], start, len(passage), 1.0, passage, 0)
    assert evidence_text([cite]) == (
        "“The Tidewater bridge opened on Saturday. It was designed by the engineer Rosalind "
        "Achebe.” [1]"
    )
