"""A developing story: the newest article's figure answers, the older one is shown as earlier,
and a question asked without a date is answered from the latest coverage first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from embeddings.types import Document
from rag import Pipeline
from rag.reader.candidates import Candidate
from rag.reader.freshness import long_date, revision, same_figure
from rag.retrieve import recency_weight
from rag.types import Citation

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
TODAY = dt.date.today()


def _day(days_ago: int) -> str:
    return (TODAY - dt.timedelta(days=days_ago)).isoformat()


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, embedder, generator) -> Pipeline:
    from rag.pipeline import Settings

    pipeline = Pipeline(
        tmp_path_factory.mktemp("story"),
        settings=Settings(seeds_dir=SEEDS),
        embedder=embedder,
        generator=generator,
    )
    pipeline.ingest(
        documents=[
            Document(
                "quake-1",
                "Earthquake hits Velora",
                "An earthquake struck the coastal province of Velora on Tuesday. The earthquake "
                "killed 120 people, officials said.",
                "2024-03-12",
            ),
            Document(
                "quake-2",
                "Velora death toll rises",
                "Rescue teams kept searching the rubble in Velora on Thursday. The earthquake "
                "killed 340 people, officials said.",
                "2024-03-14",
            ),
            Document(
                "ferry-old",
                "Ferry service",
                "The Dunmore ferry company named Petra Lindqvist as its chief executive.",
                _day(400),
            ),
            Document(
                "ferry-new",
                "Ferry service changes",
                "The Dunmore ferry company named Jonas Okafor as its chief executive.",
                _day(1),
            ),
        ]
    )
    return pipeline


def test_the_newest_figure_answers_and_the_older_one_is_shown_as_earlier(story: Pipeline) -> None:
    answer = story.ask("How many people did the earthquake in Velora kill?")
    assert answer.text == "340"
    assert "Earlier, on 12 March 2024:" in answer.evidence
    assert "120 people" in answer.evidence
    assert [c.doc_id for c in answer.citations] == ["quake-2", "quake-1"]
    assert [c.date for c in answer.citations] == ["2024-03-14", "2024-03-12"]


def test_as_of_before_the_update_answers_with_the_figure_known_then(story: Pipeline) -> None:
    answer = story.ask("How many people did the earthquake in Velora kill?", as_of="2024-03-13")
    assert answer.text == "120"
    assert "Earlier" not in answer.evidence


def test_a_question_asked_now_is_answered_from_the_latest_coverage(story: Pipeline) -> None:
    hits = story.retrieve("Who is the chief executive of the Dunmore ferry company?", k=2)
    assert hits[0].chunk.doc_id == "ferry-new"
    answer = story.ask("Who is the chief executive of the Dunmore ferry company?")
    assert answer.text == "Jonas Okafor"


# ---- the parts, in milliseconds ----------------------------------------------------------


def _cand(text: str, n: int, score: float, support: float = 1.0, label: str = "CARDINAL"):
    return Candidate(text, n, 0, len(text), label, 1, 1, 1, 0, 1, support, 1, 0, 0, score=score)


def _cite(n: int, doc: str, date: str | None) -> Citation:
    return Citation(n, doc, doc, date, f"sentence {n}", 0, 10, 1.0)


def test_revision_needs_two_dates_two_articles_and_a_close_rival() -> None:
    context = [_cite(1, "a", "2024-03-12"), _cite(2, "b", "2024-03-14"), _cite(3, "a", None)]
    newer_wins = revision([_cand("120", 1, 1.0), _cand("340", 2, 0.5)], context)
    assert newer_wins is not None and (newer_wins.newer.text, newer_wins.older.text) == (
        "340",
        "120",
    )
    assert revision([_cand("120", 1, 1.0), _cand("340", 2, -5.0)], context) is None  # far
    assert revision([_cand("120", 1, 1.0), _cand("120", 2, 0.9)], context) is None  # same
    assert revision([_cand("120", 1, 1.0), _cand("340", 3, 0.9)], context) is None  # same doc
    assert revision([_cand("120", 1, 1.0), _cand("340", 2, 0.9, support=0.3)], context) is None
    names = [_cand("Ann Lee", 1, 1.0, label="PERSON"), _cand("Bo Chan", 2, 0.9, label="PERSON")]
    assert revision(names, context) is None  # only figures are revised
    pronoun = [_cand("Millions", 1, 1.0), _cand("one", 2, 0.9)]  # "one of these swings"
    assert revision(pronoun, context) is None


def test_figures_and_dates_in_one_form() -> None:
    assert same_figure("1,200 people", "1200") and not same_figure("120", "340")
    assert long_date("2024-03-12") == "12 March 2024" and long_date("spring") == "spring"


def test_recency_now_favours_the_last_days_and_leaves_old_archives_alone() -> None:
    assert recency_weight(_day(1), TODAY, implicit=True) > 1.8
    assert recency_weight(_day(-1), TODAY, implicit=True) == 2.0  # tomorrow in another zone
    assert recency_weight(_day(400), TODAY, implicit=True) == pytest.approx(1.0)
    assert recency_weight(_day(-1), TODAY) == 0.5  # after an as_of that was asked for
