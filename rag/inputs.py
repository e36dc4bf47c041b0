"""What a caller may pass to `ask()`, and the one-line message for what it may not.

The same checks serve Python callers, the CLI, the web UI and the HTTP API, so a bad question,
`k`, `as_of`, filter or chat history is refused with one `InvalidQuestionError` everywhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from embeddings.types import DateSourceFilter
from rag.errors import InvalidQuestionError
from rag.retrieve import RETRIEVERS, parse_date

Filters = DateSourceFilter
MAX_QUESTION_CHARS = 1000


def check_question(question: object) -> str:
    if not isinstance(question, str):
        raise InvalidQuestionError(f"question must be a string, not {type(question).__name__}")
    text = question.strip()
    if not text:
        raise InvalidQuestionError("question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(
            f"question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}"
        )
    return text


def check_search(question: object, k: object, retriever: object) -> str:
    """The question, stripped, once it and the search settings are valid."""
    text = check_question(question)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 50:
        raise InvalidQuestionError("k must be an integer between 1 and 50")
    if retriever not in RETRIEVERS:
        raise InvalidQuestionError(f"retriever must be one of {', '.join(RETRIEVERS)}")
    return text


def check_history(history: object) -> list[tuple[str, str]]:
    """Earlier turns as (question, answer) pairs of strings, or InvalidQuestionError."""
    if not isinstance(history, list | tuple):
        raise InvalidQuestionError("history must be a list of [question, answer] pairs")
    pairs = []
    for turn in history:
        if (
            not isinstance(turn, list | tuple)
            or len(turn) != 2
            or not all(isinstance(t, str) for t in turn)
        ):
            raise InvalidQuestionError("history must be a list of [question, answer] pairs")
        pairs.append((turn[0], turn[1]))
    return pairs


def _filter_date(filters: dict[str, Any], key: str) -> str | None:
    value = filters.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            if len(value.strip()) == 10:
                return dt.date.fromisoformat(value.strip()).isoformat()
    raise InvalidQuestionError(f"filters.{key} must be a YYYY-MM-DD date, not {value!r}")


def _filter_sources(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(
        isinstance(s, str) and s.strip() for s in value
    ):
        raise InvalidQuestionError(
            'filters.sources must be a list of source names, e.g. ["Harbour Times"]'
        )
    return tuple(s.strip() for s in value)


def to_filters(filters: Filters | dict[str, Any] | None) -> Filters:
    """Checked filters: ISO dates in order, a list of source names (matched ignoring case)."""
    if filters is None:
        return Filters()
    if isinstance(filters, dict):
        unknown = set(filters) - {"date_from", "date_to", "sources"}
        if unknown:
            raise InvalidQuestionError(f"unknown filter keys: {', '.join(sorted(unknown))}")
        filters = Filters(
            date_from=_filter_date(filters, "date_from"),
            date_to=_filter_date(filters, "date_to"),
            sources=_filter_sources(filters.get("sources")),
        )
    if not isinstance(filters, Filters):
        raise InvalidQuestionError(
            f"filters must be a Filters or dict, not {type(filters).__name__}"
        )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidQuestionError(
            f"filters.date_from ({filters.date_from}) is after filters.date_to ({filters.date_to})"
        )
    return filters


def as_date(value: str | dt.date | None) -> dt.date | None:
    try:
        return parse_date(value)
    except (TypeError, ValueError):
        raise InvalidQuestionError(f"as_of must be a YYYY-MM-DD date, not {value!r}") from None
