"""Which kind of place a name is: a country, a state or province, or neither (a city, most
often), from ISO 3166 as `pycountry` ships it.

spaCy's GPE label does not tell "Lima" from "Peru" or "Ohio", so without this a "which
country" question is answered with a dateline city as readily as with the country (issue 18).

    >>> place_kind("Peru"), place_kind("Peruvian"), place_kind("Ohio"), place_kind("Lima")
    ('country', 'demonym', 'state', None)
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

PlaceKind = Literal["country", "demonym", "state", "continent"]

# Short forms English news uses that ISO 3166 does not list (ISO has "United Kingdom", "GB"
# and "United States", "US" but not "UK", "Britain" or "America").
_SHORT_FORMS = {
    "uk": "United Kingdom",
    "britain": "United Kingdom",
    "great britain": "United Kingdom",
    "america": "United States",
    "usa": "United States",
    "us": "United States",
    "russia": "Russian Federation",
    "holland": "Netherlands",
    "turkey": "Türkiye",
}
# English's continents: a closed class, not data that goes stale.
_CONTINENTS = frozenset(
    {"africa", "antarctica", "asia", "europe", "oceania", "north america", "south america"}
)
# Demonym endings: Peru-vian, Canad-ian, Chin-ese, Israel-i, Turk-ish, Icelander.
_DEMONYM = re.compile(r"(?:ians?|ans?|eses?|is|i|ish|ic|ers?|ns?)$")


def _key(name: str) -> str:
    text = re.sub(r"[.\u2019']", "", name).strip().lower()
    return re.sub(r"^the\s+", "", text)


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, str], dict[str, str]]:
    """country key -> canonical name, subdivision key -> its type ("State", "Province"...)."""
    import pycountry

    countries: dict[str, str] = {}
    for c in pycountry.countries:
        names = [c.name, getattr(c, "common_name", None), getattr(c, "official_name", None)]
        for n in filter(None, names):
            countries[_key(n)] = c.name
            countries[_key(n.split(",")[0])] = c.name  # "Iran, Islamic Republic of" -> Iran
        countries.setdefault(c.alpha_3.lower(), c.name)
    for short, name in _SHORT_FORMS.items():
        countries[short] = name
    states = {
        _key(s.name): s.type
        for s in pycountry.subdivisions
        if s.type in {"State", "Province", "Territory", "Emirate", "Canton"}
    }
    return countries, states


def country(name: str) -> str | None:
    """The ISO name of the country `name` names ("UK" -> "United Kingdom"), or None."""
    return _tables()[0].get(_key(name))


@lru_cache(maxsize=4096)
def demonym_country(word: str) -> str | None:
    """The country a demonym points to ("Peruvian" -> Peru, "Iraqi" -> Iraq), by the longest
    shared beginning with a one-word country name; None when no name shares enough of it."""
    low = _key(word)
    if " " in low or not _DEMONYM.search(low) or country(low):
        return None
    best, best_len = None, 0
    for key, name in _tables()[0].items():
        if " " in key or len(key) < 4:
            continue
        stem = key[:-1] if key[-1] in "aeiouy" else key
        if low.startswith(stem) and len(stem) > best_len and len(low) - len(stem) <= 5:
            best, best_len = name, len(stem)
    return best


def place_kind(name: str) -> PlaceKind | None:
    key = _key(name)
    if key in _CONTINENTS:
        return "continent"
    if country(key):
        return "country"
    if key in _tables()[1]:
        return "state"
    if demonym_country(name):
        return "demonym"
    return None
