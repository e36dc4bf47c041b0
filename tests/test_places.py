"""Fine place kinds (ISO 3166 through pycountry) and the feature the reader takes from them."""

from __future__ import annotations

import pytest

from rag.english.places import country, demonym_country, place_kind
from rag.reader.candidates import fine_type, trim_span


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("Peru", "country"),
        ("UK", "country"),
        ("the United States", "country"),
        ("U.S.", "country"),
        ("Sri Lanka", "country"),
        ("Ohio", "state"),
        ("Idaho", "state"),
        ("Lima", None),
        ("Paris", None),
        ("Peruvian", "demonym"),
        ("Europe", "continent"),
    ],
)
def test_place_kinds(name: str, kind: str | None) -> None:
    assert place_kind(name) == kind


def test_short_forms_and_demonyms_name_their_country() -> None:
    assert country("UK") == country("Britain") == "United Kingdom"
    assert demonym_country("Peruvian") == "Peru"
    assert demonym_country("Iraqi") == "Iraq" and demonym_country("Canadian") == "Canada"
    assert demonym_country("Democrats") is None


def test_which_country_never_prefers_a_city() -> None:
    assert fine_type("country", "Peru", "GPE") == 1.0
    assert fine_type("country", "Peruvian", "NORP") == 0.5
    assert fine_type("country", "Lima", "GPE") == -1.0  # a dateline city
    assert fine_type("country", "Ohio", "GPE") == -1.0
    assert fine_type("state", "Idaho", "GPE") == 1.0
    assert fine_type("city", "Lima", "GPE") == 1.0 and fine_type("city", "Peru", "GPE") == -1.0
    assert fine_type("company", "Peru", "GPE") == 0.0  # not a place question


@pytest.mark.parametrize(
    ("span", "trimmed"),
    [
        ("– Harwick University's", "Harwick University"),
        ("“Squid Game”", "Squid Game"),
        ("Lovelace’s", "Lovelace"),
        ("(NATO),", "NATO"),
    ],
)
def test_spans_lose_punctuation_and_the_possessive(span: str, trimmed: str) -> None:
    assert trim_span(span) == trimmed
