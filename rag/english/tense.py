"""Whether a span is told as the past: "Chile, Peru and Honduras elected leftist presidents in
2021" in a 2022 article answers no question about "this week" (realtimeqa_dev: Chile beat
Colombia, whose election that week the article reports).

News gives background in the same sentences as the news, marked by a year; a question that
asks about now wants the news, so a span whose own verb is dated to an earlier year than its
article is left out for such questions. "For the first time since 1950" dates nothing and
stays.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.tokens import Span

_NOW = re.compile(
    r"\b(this (week|weekend|month)|today|yesterday|recently|latest|currently|right now)\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"(1[89]|20)\d\d")
_POINT_IN_TIME = frozenset({"in", "during"})


def asks_now(question: str) -> bool:
    """The question is about the days of its articles ("this week", "recently")."""
    return bool(_NOW.search(question))


def told_as_past(span: Span, article_date: str | None) -> bool:
    """The verb the span belongs to is dated "in <year>" before the article's year."""
    if not article_date or not article_date[:4].isdigit():
        return False
    year = int(article_date[:4])
    verb = next((t for t in [span.root, *span.root.ancestors] if t.pos_ in {"VERB", "AUX"}), None)
    if verb is None:
        return False
    for prep in verb.children:
        if prep.dep_ != "prep" or prep.lower_ not in _POINT_IN_TIME:
            continue
        if any(_YEAR.fullmatch(t.text) and int(t.text) < year for t in prep.subtree):
            return True
    return False
