"""Issue 19, without models: doc ids where files bring them in, filter checks, titles and
skip reasons a person can read."""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings.loaders import MAX_HTML_CHARS, derive_title, load_paths
from rag.errors import InvalidQuestionError
from rag.inputs import Filters, to_filters


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        (
            "a.md",
            "---\ndoc_id: ../../etc/passwd\n---\nBody.",
            "doc_id '../../etc/passwd' is not valid",
        ),
        ("b.jsonl", '{"doc_id": "a b", "text": "Body."}', "line 1: doc_id 'a b' is not valid"),
        ("c.json", '[{"doc_id": " ", "text": "Body."}]', "record 1: doc_id ' ' is not valid"),
    ],
)
def test_files_with_a_bad_doc_id_are_skipped_with_the_rule(
    tmp_path: Path, name: str, content: str, reason: str
) -> None:
    (tmp_path / name).write_text(content, encoding="utf-8")
    result = load_paths([tmp_path / name])
    assert result.documents == []
    assert reason in result.skipped[0].reason and "1-128 letters" in result.skipped[0].reason


def test_good_and_empty_doc_ids_load(tmp_path: Path) -> None:
    (tmp_path / "ok.jsonl").write_text(
        '{"doc_id": "cnn:2024-03-04_bridge.v2", "text": "A."}\n{"doc_id": "", "text": "B."}\n'
        '{"doc_id": 42, "text": "C."}\n',
        encoding="utf-8",
    )
    ids = [d.doc_id for d in load_paths([tmp_path / "ok.jsonl"]).documents]
    assert ids[0] == "cnn:2024-03-04_bridge.v2" and len(ids[1]) == 16 and ids[2] == "42"


def test_a_dateline_is_not_the_title() -> None:
    text = "March 4, 2024 — The Quenby city council approved the budget. More follows."
    assert derive_title(text) == "The Quenby city council approved the budget."
    # without a full date it is not a dateline this reads, and stays
    assert derive_title("WASHINGTON, March 4 (Reuters) - Rain fell.").startswith("WASHINGTON")


def test_a_json_skip_reason_is_not_cut_mid_sentence(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"text": "unterminated', encoding="utf-8")
    (reason,) = [s.reason for s in load_paths([tmp_path / "bad.json"]).skipped]
    assert reason == "invalid JSON at line 1: Unterminated string starting at column 10"


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"sources": "CNN"}, "filters.sources must be a list of source names"),
        ({"sources": ["CNN", ""]}, "filters.sources must be a list"),
        ({"date_from": "2022-02-30"}, "filters.date_from must be a YYYY-MM-DD date"),
        ({"date_to": 20220101}, "filters.date_to must be a YYYY-MM-DD date"),
        ({"date_from": "2022-02-01", "date_to": "2022-01-01"}, "is after filters.date_to"),
        (Filters(date_from="2022-02-01", date_to="2022-01-01"), "is after filters.date_to"),
    ],
)
def test_bad_filters_are_one_line_errors(filters: object, message: str) -> None:
    with pytest.raises(InvalidQuestionError, match=message.replace("(", r"\(")):
        to_filters(filters)  # type: ignore[arg-type]


def test_good_filters_pass() -> None:
    got = to_filters({"date_from": "2022-01-01", "date_to": None, "sources": [" CNN "]})
    assert got == Filters(date_from="2022-01-01", sources=("CNN",))


ARTICLE_HTML = (
    "<html><head><title>Bridge opens</title>"
    '<script type="application/ld+json">{"@type": "NewsArticle", "datePublished": '
    '"2024-03-04"}</script>{scripts}</head><body><article>'
    "<p>The Orvana bridge opened on Monday after four years of work.</p>"
    "<p>It cost 48 million euros, six more than planned.</p>{markup}</article></body></html>"
)


def test_scripts_and_styles_do_not_count_towards_the_html_cap(tmp_path: Path) -> None:
    scripts = ("<script>var x = '" + "a" * 100_000 + "';</script><style>p{}</style>") * 8
    page = ARTICLE_HTML.replace("{scripts}", scripts).replace("{markup}", "")
    assert len(page) > MAX_HTML_CHARS
    (tmp_path / "big.html").write_text(page, encoding="utf-8")
    result = load_paths([tmp_path / "big.html"])
    assert result.skipped == []
    (doc,) = result.documents
    assert "48 million euros" in doc.text and doc.date == "2024-03-04"


def test_too_much_html_is_skipped_before_parsing(tmp_path: Path) -> None:
    dense = "<div><span><b>x</b></span></div>" * (MAX_HTML_CHARS // 30)
    page = ARTICLE_HTML.replace("{scripts}", "").replace("{markup}", dense)
    (tmp_path / "dense.html").write_text(page, encoding="utf-8")
    result = load_paths([tmp_path / "dense.html"])
    assert result.documents == []
    (skipped,) = result.skipped
    assert skipped.reason.startswith("too much HTML to read: ")
    assert f"the limit is {MAX_HTML_CHARS:,}" in skipped.reason
