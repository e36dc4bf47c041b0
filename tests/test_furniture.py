"""News furniture is marked, never evidence, and the text around it keeps exact offsets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from embeddings.chunking import split_sentences
from embeddings.furniture import clean_spans, furniture_spans

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def marked(text: str) -> list[tuple[str, str]]:
    return [(text[s:e], kind) for s, e, kind in furniture_spans(text)]


@pytest.mark.parametrize(
    ("text", "furniture"),
    [
        ("DENVER (AP) — Colorado's governor signed the bill.", "DENVER (AP) — "),
        ("LISBON — Portugal's president said on Monday.", "LISBON — "),
        ("Bogota, Colombia (CNN) Gustavo Petro will become president.", "Bogota, Colombia (CNN) "),
        ("(CNN) The CDC announced a new center.", "(CNN) "),
        ("WASHINGTON, March 4 (Reuters) - The Senate voted.", "WASHINGTON, March 4 (Reuters) - "),
        ("SCHWEDT, GERMANY - MAY 03: In this aerial view, tanks.", "SCHWEDT, GERMANY - MAY 03: "),
    ],
)
def test_datelines_and_caption_heads_are_marked(text: str, furniture: str) -> None:
    assert marked(text)[0][0] == furniture


@pytest.mark.parametrize(
    "line",
    [
        "Read more: Senate passes the bill",
        "Related: More than 40,000 filed",
        "By Jane Doe",
        "Sign up for our newsletter.",
        "This story has been updated with more details.",
        "Photo: Jane Doe/Getty Images",
    ],
)
def test_furniture_lines_are_marked_whole(line: str) -> None:
    assert marked(line) and marked(line)[0][0] == line


def test_a_photo_credit_inside_a_caption_is_cut_out_and_the_rest_kept() -> None:
    text = (
        "Crews cut trees near Mariposa on Monday. David McNew/AFP/Getty Images Firefighters wait."
    )
    spans = clean_spans(split_sentences(text), furniture_spans(text), text)
    pieces = [text[s:e] for s, e in spans]
    assert pieces == ["Crews cut trees near Mariposa on Monday.", "Firefighters wait."]


@pytest.mark.parametrize(
    "text",
    [
        "Kenneth Walker III (Seahawks) took four carries for 20 yards.",
        "Engineering News-Record (ENR) is a trade magazine.",
        "By July 1, the ransom note had disappeared.",
        "Video shows the officer walking away.",
        "The and/or clause in the contract was removed.",
        "Photos from Wednesday show crowds of protesters.",
    ],
)
def test_ordinary_sentences_are_not_furniture(text: str) -> None:
    assert marked(text) == []


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300))
def test_clean_spans_stay_inside_their_sentences(text: str) -> None:
    spans = split_sentences(text)
    marks = furniture_spans(text)
    for s, e in clean_spans(spans, marks, text):
        assert any(a <= s < e <= b for a, b in spans)
        assert not any(ms < e and s < me for ms, me, _ in marks)


@pytest.mark.skipif(not (DATA / "realtimeqa_dev").is_dir(), reason="needs ../shared/data")
def test_on_real_news_datelines_and_credits_are_found_and_wikipedia_is_left_alone() -> None:
    def count(name: str) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for line in (DATA / name / "docs.jsonl").read_text().splitlines():
            for _, _, kind in furniture_spans(json.loads(line)["text"]):
                kinds[kind] = kinds.get(kind, 0) + 1
        return kinds

    news = count("realtimeqa_dev")  # CNN, AP and others, as scraped
    assert news["dateline"] > 300 and news["credit"] > 50 and news["line"] > 100
    assert count("squad2_dev500") == {}  # Wikipedia paragraphs have none
