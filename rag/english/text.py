"""Word-level helpers shared by sentence selection, the support check and evaluation."""

from __future__ import annotations

import re
import threading
from functools import lru_cache

import snowballstemmer

from embeddings.text import STOPWORDS

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)*", re.UNICODE)
_STEMMER = snowballstemmer.stemmer("english")  # Porter2; FTS5 in the index uses Porter
_STEMMER_LOCK = threading.Lock()  # a Snowball stemmer keeps its working string on itself

INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\b[^.?!]{0,60}\b(instructions?|prompts?|rules|"
    r"context|articles?|above|previous|prior|everything)\b"
    r"|\bsystem prompt\b|\byou are now\b|\bnew instructions\b|\bdeveloper mode\b"
    r"|\b(respond|reply|answer)\s+(only\s+)?with\s+['\"“]",
    re.IGNORECASE,
)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def normalize_number(token: str) -> str:
    """'1,200' and '1200' compare equal; '1.2' keeps its decimal point."""
    return token.replace(",", "")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball English stem of the lower-cased word, possessive 's removed: "challenging"
    and "challenge", "engaged" and "engagement" meet (the hand-written suffix list missed both)."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    with _STEMMER_LOCK:
        return _STEMMER.stemWord(w)


def content_terms(text: str) -> list[str]:
    """Stemmed content words and normalised numbers, in order, without stopwords."""
    out = []
    for tok in tokens(text):
        if tok[0].isdigit():
            out.append(normalize_number(tok))
        elif tok.lower() not in STOPWORDS and len(tok) > 1:
            out.append(stem(tok))
    return out


def numbers(text: str) -> set[str]:
    return {normalize_number(t) for t in tokens(text) if t[0].isdigit()}


def strip_injection(question: str) -> str:
    """Drops sentences of a question that try to instruct the model; keeps the real ask."""
    parts = re.split(r"(?<=[.!?])\s+", question.strip())
    return " ".join(p for p in parts if not INJECTION.search(p)).strip()
