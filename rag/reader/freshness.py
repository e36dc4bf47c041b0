"""A developing story's figure: answer with the newest article's, and say what an older one gave.

News revises its figures (a death toll, a vote count, a price) from one day's article to the
next, and a question asked about the story wants the latest. When the reader's best figure
and a close runner-up come from articles of different dates, the newer article's figure is
the answer and the older one is shown as "Earlier, on 12 March 2024: “…”", so a reader sees
that the number moved instead of being handed one of two silently.

    >>> revised = revision(found, context)
    >>> if revised is not None:
    ...     answer, earlier = revised.newer, revised.older
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from rag.english.text import numbers
from rag.reader.candidates import Candidate
from rag.types import Citation

FIGURES = frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT", "NUM"})
# A runner-up is a rival figure for the same question when the ranker gives it at least this
# share of the best one's probability and its sentence holds nearly as many of the
# question's words: below either, it answers another question and is left out.
RIVAL_SHARE = 0.5
SUPPORT_SLACK = 0.2
# A figure is written with digits or a number word; "one" is left out because news uses it as
# a pronoun far more often than as a count ("the owner of one of these swings", realtimeqa_dev).
_NUMBER_WORDS = frozenset(
    "two three four five six seven eight nine ten eleven twelve dozen dozens hundred hundreds "
    "thousand thousands million millions billion billions".split()
)


@dataclass(frozen=True)
class Revision:
    """Two articles' different figures for one question, newest first."""

    newer: Candidate
    older: Candidate


def revision(found: Sequence[Candidate], context: Sequence[Citation]) -> Revision | None:
    """The best figure and the strongest rival from an article of another date, when there is
    one; `found` is best first, each candidate's `n` numbering a sentence of `context`."""
    if not found or not is_figure(found[0]):
        return None
    best = found[0]
    best_cite = context[best.n - 1]
    for rival in found[1:]:
        if not is_figure(rival) or rival.probability < RIVAL_SHARE * best.probability:
            continue
        if rival.support < best.support - SUPPORT_SLACK or same_figure(rival.text, best.text):
            continue
        cite = context[rival.n - 1]
        if cite.doc_id == best_cite.doc_id or not cite.date or not best_cite.date:
            continue
        if cite.date[:10] == best_cite.date[:10]:
            continue
        if cite.date > best_cite.date:
            return Revision(rival, best)
        return Revision(best, rival)
    return None


def is_figure(candidate: Candidate) -> bool:
    words = candidate.text.lower().split()
    return candidate.label in FIGURES and (
        bool(numbers(candidate.text)) or any(w in _NUMBER_WORDS for w in words)
    )


def same_figure(a: str, b: str) -> bool:
    """ "1,200 people" and "1200" give one figure; "nine" and "nine" too."""
    na, nb = numbers(a), numbers(b)
    return na == nb if na or nb else a.strip().lower() == b.strip().lower()


def long_date(value: str) -> str:
    """'2024-03-12' -> '12 March 2024'; anything else as given."""
    try:
        day = dt.date.fromisoformat(value[:10])
    except ValueError:
        return value
    return f"{day.day} {day:%B %Y}"
