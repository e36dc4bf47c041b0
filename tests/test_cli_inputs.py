"""Input conventions the README documents: a leading news dateline dates the article."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embeddings.loaders import load_paths, parse_text


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("March 4, 2024 — The council approved the bridge.", "2024-03-04"),
        ("WASHINGTON, March 4, 2024 (Reuters) - The Senate voted.", "2024-03-04"),
        ("4 March 2024 – Rain fell.", "2024-03-04"),
        ("2024-03-04 — Rain fell.", "2024-03-04"),
        ("WASHINGTON, March 4 (Reuters) - No year, so no date.", None),
        ("Tesla sold 4 cars in 2023 - a slow year.", None),
        ("The council met on March 4, 2024 and voted.", None),  # not a dateline
    ],
)
def test_a_leading_dateline_dates_the_article(text: str, date: str | None) -> None:
    doc = parse_text(f"# Title\n\n{text}\n", name="a.md")
    assert doc.date == date
    assert doc.text == text  # the dateline stays in the article


def test_explicit_dates_win_over_the_dateline_and_json_records_use_it(tmp_path: Path) -> None:
    assert parse_text(" date 2024-01-01 March 4, 2024 — x.", name="a.txt").date == "2024-01-01"
    feed = tmp_path / "feed.jsonl"
    records = [{"text": "March 4, 2024 — x."}, {"text": "March 4, 2024 — y.", "date": "2024-03-05"}]
    feed.write_text("\n".join(json.dumps(r) for r in records))
    assert [d.date for d in load_paths([feed]).documents] == ["2024-03-04", "2024-03-05"]
