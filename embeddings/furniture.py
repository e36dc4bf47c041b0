"""News furniture: the parts of an article that are about the page, not the story.

Datelines ("DENVER (AP) —", "Bogota, Colombia (CNN)"), photo credits ("David McNew/AFP/Getty
Images"), bylines, photo-agency caption heads ("SCHWEDT, GERMANY - MAY 03:") and "Related: /
Read more / Sign up" lines answer nothing, yet a dateline names a place and a credit names a
person, so a reader that treats them as text answers "which country?" with a dateline city
and "who?" with a photographer (issue 18: both seen on RealTime QA). The text is never
changed: `furniture_spans` marks character ranges, and `clean_spans` cuts sentence spans
around them, so citations keep exact offsets into the article.

    >>> furniture_spans("LISBON (Reuters) — Portugal's president said on Monday ...")
    [(0, 19, 'dateline')]
"""

from __future__ import annotations

import re
from functools import lru_cache

from embeddings.chunking import split_sentences

__all__ = ["clean_spans", "furniture_spans", "story_sentences"]

# A capitalised word, as in a place, a person's name or an agency ("St.", "O'Neil", "J."); a
# period only at its end, so "Tuesday. Matthew Brown/AP" is not one name.
_CAP = r"[A-Z](?:[\w'’-]*[\w'’]\.?|\.)?"
# A leading place in capitals ("DENVER", "NEW YORK", "WASHINGTON, D.C.") or in title case with
# a region after a comma ("Bogota, Colombia"), then an agency tag and/or a dash.
_PLACE = rf"(?:[A-Z][A-Z.'’-]+(?:\s+[A-Z][A-Z.'’-]+){{0,3}}|{_CAP}(?:\s+{_CAP}){{0,2}})"
_REGION = rf"(?:,\s*{_CAP}(?:\s+{_CAP}){{0,2}})?"
_DAY = r"(?:,?\s+[A-Z][a-z]{2,8}\.?\s+\d{1,2}(?:,\s*\d{4})?)?"
_AGENCY = rf"\((?:{_CAP}(?:\s+{_CAP}){{0,2}})\)"
_DASH = r"\s*(?:—|–|--|-)\s*"
_AFTER_TAG = rf"(?:{_DASH}|\s+(?=[A-Z\"“‘']))"  # a dash, or the story's first capital
_DATELINE = re.compile(
    rf"^\s*(?:{_PLACE}{_REGION}{_DAY}\s*{_AGENCY}{_AFTER_TAG}"  # "Bogota, Colombia (CNN) "
    rf"|[A-Z][A-Z.'’-]{{2,}}(?:\s+[A-Z][A-Z.'’-]+){{0,3}}{_REGION}{_DAY}{_DASH}"  # "DENVER — "
    rf"|{_AGENCY}{_AFTER_TAG})"  # "(CNN) "
)
# "SCHWEDT, GERMANY - MAY 03: In this aerial view, ..." (photo agencies' caption heads).
_CAPTION_HEAD = re.compile(
    r"^\s*[A-Z][A-Z .,'’-]{2,60}\s+-\s+[A-Z]{3,9}\.?\s+\d{1,2}(?:,\s*\d{4})?\s*:\s*"
)
# Photo credits: names joined by slashes, ending in an agency ("Neal Waters/Anadolu
# Agency/Getty Images", "AP Photo/Jane Doe"), or introduced by "Photo:" / "Credit:".
_NAME = r"[A-Z](?:[\w'’-]*[\w'’]|\.)?"  # as _CAP, but only an initial ends in a period
_CREDIT = re.compile(
    rf"(?:\(\s*)?(?:(?:AP\s+)?Photo(?:graph)?s?(?:\s+by)?|Image|Credit|Courtesy(?:\s+of)?)"
    rf"\s*[:/]?\s*{_NAME}(?:\s+{_NAME}){{0,3}}(?:\s*/\s*{_NAME}(?:\s+{_NAME}){{0,3}})*"
    rf"(?:\s*\))?"
    rf"|{_NAME}(?:\s+{_NAME}){{0,3}}(?:\s*/\s*{_NAME}(?:\s+{_NAME}){{0,3}}){{1,3}}"
)
# A credit must end in an agency-like word, or be introduced by "Photo"/"Credit": a plain
# "and/or" between names is not one.
_AGENCY_END = re.compile(
    r"\b(?:Images|Photos?|Pictures|Press|Pool|AFP|AP|Reuters|EPA|Agency|Shutterstock|Alamy"
    r"|Bloomberg|Sipa|ZUMA|Zuma|NurPhoto|Wire|Service|Post|Times|News|TASS|Xinhua)\b\)?"
)
_BYLINE = re.compile(
    rf"^\s*By\s+{_CAP}(?:\s+{_CAP}){{0,3}}(?:\s*(?:,|and)\s+{_CAP}(?:\s+{_CAP}){{0,3}})*\s*$"
)
_LINE = re.compile(
    r"^\s*(?:Related|Read more|Read More|READ MORE|More from|Sign up|Subscribe|Click here"
    r"|Follow (?:us|along)|(?:Watch|WATCH|Listen|Video|VIDEO|PHOTOS?|Photos)\s*:|Video Ad Feedback"
    r"|Advertisement\s*$"
    r"|Copyright|All rights reserved|Editor[’']s [Nn]ote)\b[^\n]*",
)
_TAIL = re.compile(
    r"^[^\n]*\b(?:contributed (?:to )?this (?:report|story)|This (?:story|article) has been"
    r" updated)\b[^\n]*",
    re.IGNORECASE,
)


def furniture_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of every furniture range in `text`, in order, not overlapping.
    Datelines, caption heads, bylines and furniture lines are looked for at the start of
    each line; photo credits anywhere."""
    found: list[tuple[int, int, str]] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        for pattern, kind in (
            (_LINE, "line"),
            (_TAIL, "line"),
            (_BYLINE, "byline"),
            (_CAPTION_HEAD, "caption"),
            (_DATELINE, "dateline"),
        ):
            m = pattern.match(body)
            if m and m.end() > m.start() and m.group().strip():
                found.append((pos + m.start(), pos + m.end(), kind))
                break
        for m in _CREDIT.finditer(body):
            credit = _credit(m.group())
            if credit:
                found.append((pos + m.start(), pos + m.start() + len(credit), "credit"))
        pos += len(line)
    return _merge(found)


def _credit(text: str) -> str:
    """The credit at the start of a match, or "": a "Photo:"-style one whole, a slashed one
    up to its last agency word ("David McNew/AFP/Getty Images", not the caption after it)."""
    text = text.rstrip()
    head = text.lstrip("( ")
    if re.match(r"(?:AP\s+)?Photo|Image|Credit|Courtesy", head):
        return text if re.search(r"[:/]|\bby\b|Courtesy", head) else ""
    end = max((m.end() for m in _AGENCY_END.finditer(text)), default=0)
    return text[:end] if "/" in text[:end] else ""


def _merge(spans: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for start, end, kind in sorted(spans):
        if out and start < out[-1][1]:
            s, e, k = out[-1]
            out[-1] = (s, max(e, end), k)
        else:
            out.append((start, end, kind))
    return out


def clean_spans(
    spans: list[tuple[int, int]], marked: list[tuple[int, int, str]], text: str
) -> list[tuple[int, int]]:
    """Sentence spans with the marked ranges cut out: a sentence inside furniture is dropped,
    one that begins or ends with it is trimmed, one with a credit inside is split in two.
    Offsets stay offsets into `text`; pieces without a letter are dropped."""
    out: list[tuple[int, int]] = []
    for start, end in spans:
        pieces = [(start, end)]
        for m_start, m_end, _ in marked:
            if m_end <= start or m_start >= end:
                continue
            pieces = [
                p
                for s, e in pieces
                for p in ((s, min(e, m_start)), (max(s, m_end), e))
                if p[1] > p[0]
            ]
        for s, e in pieces:
            while s < e and text[s] in " \t,;:—–-":
                s += 1
            while e > s and text[e - 1] in " \t":
                e -= 1
            if any(ch.isalpha() for ch in text[s:e]):
                out.append((s, e))
    return out


@lru_cache(maxsize=1024)
def story_sentences(text: str) -> tuple[tuple[int, int], ...]:
    """The sentence spans of `text` with its furniture cut out (cached: a passage is split
    for the focus and again for each quote that needs the sentence before)."""
    return tuple(clean_spans(split_sentences(text), furniture_spans(text), text))
