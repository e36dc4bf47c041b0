from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from embeddings.loaders import (
    SUPPORTED_SUFFIXES,
    LoadError,
    Skipped,
    derive_title,
    load_file,
    load_paths,
    make_doc_id,
    normalize_date,
    parse_text,
)

SEEDS = sorted((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt"))

ARTICLE_HTML = """<!DOCTYPE html>
<html><head>
<title>Rain floods city | Daily Planet</title>
<meta property="og:title" content="Rain floods the city">
<meta property="og:site_name" content="Daily Planet">
<meta property="og:url" content="https://planet.example/rain">
<meta property="article:published_time" content="2023-05-04T10:00:00Z">
<script>var tracker = "SCRIPT_IN_HEAD";</script>
<style>.banner { color: red }</style>
</head><body>
<header><nav><a href="/">Home</a> <a href="/world">World NAV_LINK</a></nav></header>
<div class="cookie-banner">We use cookies COOKIE_BANNER. <button>Accept</button></div>
<div class="ad">Buy now AD_TEXT</div>
<main><article>
<h1>Rain floods the city</h1>
<p>Heavy rain flooded the low-lying districts of Metropolis on Thursday, forcing hundreds of
residents to leave their homes as rivers burst their banks.</p>
<p>The mayor said emergency crews had rescued 120 people and that shelters were open at three
schools across the city, adding that more rain was expected.</p>
<p>Forecasters warned that the river could rise another 1.5 metres by Saturday, the highest level
since the floods of 1998 devastated the region.</p>
</article></main>
<aside>Related: ASIDE_STORY</aside>
<footer>Copyright FOOTER_TEXT 2023 <a href="/privacy">Privacy</a></footer>
<script>console.log("SCRIPT_IN_BODY")</script>
</body></html>
"""


def _warnings_about(caplog: pytest.LogCaptureFixture, path: Path) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "embeddings" and r.levelno == logging.WARNING and str(path) in r.getMessage()
    ]


def _write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- text and markdown ---------------------------------------------------------------------------


@pytest.mark.skipif(not SEEDS, reason="no seed articles")
def test_seed_txt_date_token_is_metadata_and_title_is_derived() -> None:
    [doc] = load_file(SEEDS[0])
    assert doc.date == "2021-12-22"
    assert doc.text.startswith("US Secretary of State Antony Blinken on Tuesday")
    assert "date 2021-12-22" not in doc.text
    assert doc.text == doc.text.strip()
    assert doc.title.startswith("US Secretary of State Antony Blinken")
    assert len(doc.title) <= 80 and doc.title.endswith("…")
    assert re.fullmatch(r"[0-9a-f]{16}", doc.doc_id)
    assert doc.path == str(SEEDS[0])
    assert doc.source is None and doc.url is None


def test_markdown_title_line(tmp_path: Path) -> None:
    path = tmp_path / "story.md"
    path.write_text("# Council approves budget\n\nThe council voted 7-2 on Monday.\n", "utf-8")
    [doc] = load_file(path)
    assert doc.title == "Council approves budget"
    assert doc.text == "The council voted 7-2 on Monday."
    assert doc.date is None


def test_front_matter_and_date_token() -> None:
    raw = (
        '---\ntitle: "Markets rally"\ndate: 2022-03-01T09:30:00Z\nsource: Wire\n'
        "url: https://wire.example/a\n---\n\nStocks rose on Tuesday. Bonds fell.\n"
    )
    doc = parse_text(raw, name="mem.md")
    assert (doc.title, doc.date, doc.source, doc.url) == (
        "Markets rally",
        "2022-03-01",
        "Wire",
        "https://wire.example/a",
    )
    assert doc.text == "Stocks rose on Tuesday. Bonds fell."
    assert doc.path == "mem.md"

    doc = parse_text("  date 2020-02-29 # Leap day\nIt happened.", name="x.txt")
    assert (doc.date, doc.title, doc.text) == ("2020-02-29", "Leap day", "It happened.")


def test_text_without_body_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text(" date 2021-01-01 \n\n", "utf-8")
    with pytest.raises(LoadError, match="no text"):
        load_file(path)


def test_derive_title() -> None:
    assert derive_title("Short headline. Then more text.") == "Short headline."
    long = "word " * 40 + "end."
    title = derive_title(long)
    assert len(title) <= 80 and title.endswith("word…")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2021-12-22", "2021-12-22"),
        ("2021-12-22T10:11:12+02:00", "2021-12-22"),
        ("2021-12-22 10:11", "2021-12-22"),
        ("2021-02-30", None),
        ("22/12/2021", None),
        ("", None),
        (None, None),
        (20211222, None),
    ],
)
def test_normalize_date(value: object, expected: str | None) -> None:
    assert normalize_date(value) == expected


# --- HTML ----------------------------------------------------------------------------------------


def test_html_keeps_article_and_drops_chrome(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(ARTICLE_HTML, "utf-8")
    [doc] = load_file(path)
    assert "Heavy rain flooded the low-lying districts of Metropolis" in doc.text
    assert "rescued 120 people" in doc.text
    assert "another 1.5 metres by Saturday" in doc.text
    for chrome in (
        "SCRIPT_IN_HEAD",
        "SCRIPT_IN_BODY",
        "NAV_LINK",
        "COOKIE_BANNER",
        "FOOTER_TEXT",
        "ASIDE_STORY",
        "color: red",
    ):
        assert chrome not in doc.text
    assert doc.title == "Rain floods the city"
    assert doc.date == "2023-05-04"
    assert doc.url == "https://planet.example/rain"
    assert doc.source == "Daily Planet"


def test_tiny_html_page_still_yields_text(tmp_path: Path) -> None:
    path = tmp_path / "tiny.htm"
    path.write_text(
        "<html><head><title>Tiny</title><script>x = 'SCRIPT'</script></head>"
        "<body><nav>NAV</nav><p>Short one.</p></body></html>",
        "utf-8",
    )
    [doc] = load_file(path)
    assert doc.text == "Short one."
    assert doc.title == "Tiny"


def test_html_without_text_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "blank.html"
    path.write_text("<html><head><script>var a = 1;</script></head><body></body></html>", "utf-8")
    result = load_paths([path])
    assert result.documents == []
    assert result.skipped == [Skipped(str(path), "no article text found")]
    assert len(_warnings_about(caplog, path)) == 1


# --- JSON and JSONL ------------------------------------------------------------------------------


def test_json_single_record(tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    record = {
        "doc_id": "abc-1",
        "title": "Title A",
        "date": "2023-09-26",
        "text": "  Body A.  ",
        "source": "The Verge",
        "url": "https://example.com/a",
    }
    path.write_text(json.dumps(record), "utf-8")
    [doc] = load_file(path)
    assert doc.to_dict() == {**record, "text": "Body A.", "path": str(path), "duplicate_of": None}


def test_json_list_of_records(tmp_path: Path) -> None:
    path = tmp_path / "many.json"
    records = [
        {"doc_id": "a", "title": None, "date": None, "text": "First story. More."},
        {"title": "B", "date": "2022-06-19T00:00:00", "text": "Second story."},
        {"doc_id": "c", "date": "not a date", "text": "Third story."},
    ]
    path.write_text(json.dumps(records), "utf-8")
    docs = load_file(path)
    assert [d.title for d in docs] == ["First story.", "B", "Third story."]
    assert [d.date for d in docs] == [None, "2022-06-19", None]
    assert docs[1].doc_id == make_doc_id("Second story.")
    assert docs[0].source is None and docs[0].url is None


def test_jsonl_bad_line_and_textless_record_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write_jsonl(
        tmp_path / "docs.jsonl",
        [
            json.dumps({"doc_id": "d1", "title": "One", "date": "2022-01-01", "text": "Alpha."}),
            "{not json",
            "",
            json.dumps({"doc_id": "d3", "title": "No text", "text": "   "}),
            json.dumps({"doc_id": "d4", "title": "Four", "text": "Delta.", "source": "S"}),
        ],
    )
    result = load_paths([path])
    assert [d.doc_id for d in result.documents] == ["d1", "d4"]
    assert result.documents[1].source == "S"
    assert result.skipped == [
        Skipped(str(path), "line 2: invalid JSON"),
        Skipped(str(path), "line 4: no text"),
    ]
    assert len(_warnings_about(caplog, path)) == 1


def test_invalid_json_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"text": ', "utf-8")
    with pytest.raises(LoadError, match="invalid JSON"):
        load_file(path)


# --- unreadable files, folders, ids ---------------------------------------------------------------


def test_unreadable_file_is_skipped_and_others_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "a_bad.txt"
    bad.write_bytes(b"\xff\xfe\x00binary\x80\x81")
    good = tmp_path / "b_good.txt"
    good.write_text("A good story.", "utf-8")
    result = load_paths([tmp_path])
    assert [d.text for d in result.documents] == ["A good story."]
    assert len(result.skipped) == 1
    assert result.skipped[0].path == str(bad)
    assert "UTF-8" in result.skipped[0].reason
    assert len(_warnings_about(caplog, bad)) == 1
    assert not _warnings_about(caplog, good)


def test_load_file_on_a_directory_raises(tmp_path: Path) -> None:
    folder = tmp_path / "x.txt"
    folder.mkdir()
    with pytest.raises(LoadError, match="cannot read"):
        load_file(folder)


def test_folder_recursion_is_sorted_and_ignores_hidden_and_unsupported(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".hidden_dir").mkdir()
    (tmp_path / "z.txt").write_text("Zed story.", "utf-8")
    (tmp_path / "b" / "one.md").write_text("Bee story.", "utf-8")
    (tmp_path / "a" / "deep" / "two.txt").write_text("Deep story.", "utf-8")
    (tmp_path / "a" / "first.TXT").write_text("Ay story.", "utf-8")
    (tmp_path / "a" / ".secret.txt").write_text("Hidden file.", "utf-8")
    (tmp_path / ".hidden_dir" / "x.txt").write_text("Hidden dir.", "utf-8")
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.4")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")

    result = load_paths([tmp_path])
    assert [d.text for d in result.documents] == [
        "Zed story.",
        "Ay story.",
        "Deep story.",
        "Bee story.",
    ]
    assert result.skipped == []
    assert load_paths([str(tmp_path)]) == result


def test_explicit_unsupported_or_missing_paths_are_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4")
    missing = tmp_path / "missing.txt"
    result = load_paths([pdf, missing])
    assert result.documents == []
    assert result.skipped == [
        Skipped(str(pdf), "unsupported file type '.pdf'"),
        Skipped(str(missing), "not found"),
    ]
    assert len(_warnings_about(caplog, pdf)) == 1
    assert len(_warnings_about(caplog, missing)) == 1


def test_doc_id_is_stable_across_paths_and_loads(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = tmp_path / "one" / "story.txt"
    second = tmp_path / "two" / "copy.md"
    first.write_text(" date 2021-12-22 Same  article text.\nSecond line.", "utf-8")
    second.write_text("Same article text.\nSecond line.\n", "utf-8")

    [a] = load_file(first)
    [b] = load_file(second)
    assert a.doc_id == b.doc_id == make_doc_id("Same article text. Second line.")
    assert load_file(first)[0].doc_id == a.doc_id

    result = load_paths([tmp_path])
    assert [d.path for d in result.documents] == [str(first)]
    assert result.skipped == []


def test_supported_suffixes() -> None:
    assert isinstance(SUPPORTED_SUFFIXES, frozenset)
    assert sorted(SUPPORTED_SUFFIXES) == [".htm", ".html", ".json", ".jsonl", ".md", ".txt"]
