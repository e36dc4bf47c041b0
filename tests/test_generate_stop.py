"""`_stop_at` cuts a token stream at the first stop string, even one spanning two pieces."""

from __future__ import annotations

import pytest

from rag.models.generate import _stop_at


@pytest.mark.parametrize(
    ("pieces", "stop", "expected"),
    [
        (["Answer\n", "\nmore"], ["\n\n"], "Answer"),  # the stop spans two pieces
        (["Ans", "wer\n\nmore"], ["\n\n"], "Answer"),
        (["Paris", " [1]"], ["\n\n"], "Paris [1]"),  # no stop: everything, nothing lost
        (["a\n", "b"], ["\n\n"], "a\nb"),  # a held-back prefix that was not a stop
        (["x", "Q", ":", " y"], ["Question:", "Q:"], "x"),
        (["\n\nfirst"], ["\n\n"], ""),
    ],
)
def test_stop_strings(pieces: list[str], stop: list[str], expected: str) -> None:
    assert "".join(_stop_at(iter(pieces), stop)) == expected


def test_text_is_streamed_before_the_end() -> None:
    """Holding back only a possible stop prefix keeps streaming live."""
    out = _stop_at(iter(["Hello", " world", "\n", "\n", "ignored"]), ["\n\n"])
    assert next(out) == "Hello"
    assert next(out) == " world"
    assert list(out) == []
