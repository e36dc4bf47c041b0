"""What the UI and its `/ask` API accept: checked once, with one-line reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from rag.errors import InvalidQuestionError

__all__ = ["MAX_K", "Access", "ask_kwargs"]

MAX_K = 10  # the slider's range; the Python API allows more


@dataclass(frozen=True)
class Access:
    """Who may change the index from the UI: `login` means a logged-in user is required
    (`--auth`); `changes=False` turns adding and deleting off altogether."""

    login: bool = False
    changes: bool = True


def _check_date(value: object, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidQuestionError(f"{label} must be a YYYY-MM-DD string.")
    value = value.strip()
    if not value:
        return None
    try:
        if len(value) != 10:
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise InvalidQuestionError(f"{label} must be a real date like 2021-12-31.") from None
    return value


def _check_sources(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(s, str) for s in value):
        raise InvalidQuestionError("Sources must be a list of source names.")
    return [s.strip() for s in value if s.strip()]


def ask_kwargs(
    k: object, date_from: object, date_to: object, as_of: object, sources: object = None
) -> dict[str, Any]:
    """The UI's and the API's inputs as `Pipeline.stream` keywords, or InvalidQuestionError
    with a one-line reason (never a silent default for a bad value). `sources` restricts the
    search to articles from those sources (names matched ignoring case)."""
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidQuestionError(f"k (passages to use) must be a whole number from 1 to {MAX_K}.")
    d_from = _check_date(date_from, "From date")
    d_to = _check_date(date_to, "To date")
    if d_from and d_to and d_from > d_to:
        raise InvalidQuestionError("The From date is after the To date.")
    chosen = _check_sources(sources)
    kwargs: dict[str, Any] = {"k": k}
    if d_from or d_to or chosen:
        kwargs["filters"] = {"date_from": d_from, "date_to": d_to}
        if chosen:
            kwargs["filters"]["sources"] = chosen
    a = _check_date(as_of, "As-of date")
    if a:
        kwargs["as_of"] = a
    return kwargs
