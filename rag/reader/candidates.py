"""Typed answer candidates: spans of the best sentences that could answer the question.

Each candidate is copied verbatim from one numbered sentence, so whatever is chosen is
supported by construction; the features say how well it fits the question. The number
*attached to* "books" in the parse beats the day of "3 March" because its dependency path
to the question's words is short, not because of a rule about dates.

    >>> kind = answer_type("How many books did the library open with?")
    >>> best = rank(extract(question, kind, sentences), WEIGHTS)[0]
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from rag.english import nlp
from rag.english.places import country, place_kind
from rag.english.roles import asked_slot, role
from rag.english.tense import asks_now, told_as_past
from rag.english.text import content_terms, stem, tokens
from rag.reader.answer_type import COUNT, AnswerType

_NUMBER_LABELS = frozenset({"CARDINAL", "QUANTITY", "MONEY", "PERCENT"})
_SKIP_POS = frozenset({"PRON", "DET", "PUNCT", "SPACE", "CCONJ", "ADP", "AUX", "PART"})
_MAX_WORDS = 12  # a longer "noun phrase" is a clause: quote it instead


@dataclass(frozen=True)
class Scored:
    """A sentence the answer may come from: `n` is its citation number, `score` its
    relevance to the question (`rag.context.Sentence.score`)."""

    n: int
    text: str
    score: float
    date: str | None = None  # the article's date
    offset: int = 0  # where the sentence starts in its article
    before: str = ""  # the sentence before it in its article, if retrieved


@dataclass(frozen=True)
class Candidate:
    """A span of sentence `n` (`start`/`end` are offsets in that sentence) and its features."""

    text: str
    n: int
    start: int
    end: int
    label: str  # an entity label, "NP" (noun phrase) or "NUM" (a number the NER missed)
    type_match: float  # 1: the kind asked for; 0.5: a noun phrase headed by the asked noun
    attach: float  # 1 / (1 + dependency distance to the nearest of the question's words)
    coverage: float  # that proximity averaged over every question word the sentence has
    near_head: float  # proximity to the noun the question names ("which *agency*")
    entity: float  # 1: a named entity; 0.5: a phrase with a proper noun or figure
    support: float  # share of the question's words that the sentence holds
    clause: float  # share of the question's words in the figure's own clause (figures only)
    sentence: float  # the sentence's score minus the best sentence's (<= 0)
    repeat: float  # share of the sentences that also contain this span
    rank: float = 0.0  # 1 / the sentence's rank among the retrieved sentences
    fine: float = 0.0  # "which country/state/city/continent": 1 that kind, -1 another place
    role: float = 0.0  # 1: fills the slot of the question's verb the question asks for
    newest: float = 0.0  # 1: from the newest article among those retrieved (dated ones)
    lead: float = 0.0  # near the top of its article, where news puts the story
    window: float = 0.0  # share of the question's terms in the sentence and the one before
    model: float = 0.0  # the generator's mean log-probability of this answer (<= 0)
    score: float = 0.0  # the ranker's logit

    @property
    def probability(self) -> float:
        """The ranker's estimate that this span is the answer (fitted weights only)."""
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, self.score))))


def extract(question: str, kind: AnswerType, sentences: Sequence[Scored]) -> list[Candidate]:
    """Spans of the expected type that say something the question does not."""
    if kind.explain or not sentences:
        return []
    asked = set(content_terms(question))
    q_lemmas = _question_lemmas(question)
    slot = asked_slot(nlp.parse(question))
    top = max(s.score for s in sentences)
    docs = nlp.parse_many([s.text for s in sentences])
    window = [_window(asked, s) for s in sentences]
    newest = _newest(sentences, window)
    people = _people(docs)
    how_old = bool(_HOW_OLD.search(question))
    now = asks_now(question)
    named = _question_countries(question)
    seen: dict[str, Candidate] = {}
    for s, doc, near in zip(sentences, docs, window, strict=True):
        anchors = [t for t in doc if t.lemma_.lower() in q_lemmas and not t.is_stop]
        heads = [t for t in doc if kind.head and t.lemma_.lower() == kind.head]
        support = len({t.lemma_.lower() for t in anchors}) / len(q_lemmas) if q_lemmas else 0.0
        for span, label, match in _spans(doc, kind):
            text = trim_span(span.text)
            if text and not _adds_something(text, asked) and (owner := _OWNER.match(text)):
                text = owner.group(1)  # "Which country's nuclear program?" "Iran", not echoed
            if not text or not _adds_something(text, asked) or len(text.split()) > _MAX_WORDS:
                continue
            if now and told_as_past(span, s.date):
                continue
            if how_old and (age := _AGE.match(text)):
                text = age.group(1)  # "How old is he?" "17", not "17-year-old"
            if label in _MISTAKEN and text.lower() in people and place_kind(text) is None:
                # The small NER tags a surname as a place or group in one sentence ("Abbott",
                # Texas's governor, as a GPE) that another sentence gives as a person.
                label, match = "PERSON", kind.match("PERSON")
            if named and label in _PLACES and country(text) in named:
                continue  # "the United States" says nothing new to "outside the US"
            key = text.lower()
            if key in seen and seen[key].sentence >= s.score - top:
                continue
            start = s.text.find(text, span.start_char)
            seen[key] = Candidate(
                text,
                s.n,
                start,
                start + len(text),
                label,
                match,
                *_attachment(span, anchors),
                _attachment(span, heads)[0],
                1.0 if label not in {"NP", "NUM"} else 0.5 * _has_name(span),
                support,
                _clause(span, q_lemmas) if kind.numeric else 0.0,
                s.score - top,
                0.0,
                rank=1.0 / s.n,
                fine=fine_type(kind.head, text, label),
                role=role(span, slot),
                newest=float(newest is not None and s.date == newest),
                lead=1.0 / (1.0 + s.offset / 500),
                window=near,
            )
    joined = [s.text.lower() for s in sentences]
    found = [
        replace(c, repeat=sum(c.text.lower() in t for t in joined) / len(joined))
        for c in seen.values()
    ]
    if _PLACE_HEADS.get(kind.head or "") in _STRICT_PLACES and any(c.fine > 0 for c in found):
        # "In which state?" with a state among the candidates: a county, city or country is
        # not the answer, however near the question's words it sits (realtimeqa_dev: "Buchanan
        # County" beat "Virginia").
        found = [c for c in found if c.fine >= 0]
    if kind.numeric:
        # "Millions of baby swings were recalled" is no count when another sentence gives
        # "2 million" (realtimeqa_dev): a figure beats a word of its magnitude that only says
        # "many". "Dozens" stays when no figure in dozens is given.
        figures = " ".join(c.text.lower() for c in found if any(ch.isdigit() for ch in c.text))
        found = [
            c
            for c in found
            if not ((m := _VAGUE_COUNT.fullmatch(c.text)) and m.group(3).lower()[:-1] in figures)
        ]
    return found


_HOW_OLD = re.compile(r"\bhow old\b", re.IGNORECASE)
_AGE = re.compile(r"^(\d+)[-\s]years?[-\s]old$", re.IGNORECASE)
_MISTAKEN = frozenset({"GPE", "LOC", "FAC", "ORG", "NORP"})
_PLACES = frozenset({"GPE", "LOC"})


def _people(docs) -> set[str]:  # type: ignore[no-untyped-def]
    """Lower-cased names the retrieved sentences tag as PERSON, and their surnames."""
    names = {e.text.lower() for doc in docs for e in doc.ents if e.label_ == "PERSON"}
    return names | {n.split()[-1] for n in names if len(n.split()) > 1}


def _question_countries(question: str) -> set[str]:
    """ISO names of the countries the question names, however written ("US", "America")."""
    found = {country(e.text) for e in nlp.parse(question).ents if e.label_ in _PLACES}
    return {c for c in found if c}


def _window(asked: set[str], s: Scored) -> float:
    """Share of the question's content terms in the sentence and the one before it: news
    often names the thing asked about in one sentence and gives the answer in the next ("The
    Marlow harbour reopened ... The work was carried out by Tidewell Engineering")."""
    if not asked:
        return 0.0
    return len(asked & set(content_terms(f"{s.before} {s.text}"))) / len(asked)


def _newest(sentences: Sequence[Scored], window: list[float]) -> str | None:
    """The newest date among the articles whose sentences are about the question (at least
    half as many of its terms as the best), when they have more than one date: a question
    asked now about "the mayor" wants this year's coverage, not last year's."""
    best = max(window, default=0.0)
    dates = {s.date for s, w in zip(sentences, window, strict=True) if s.date and w >= best / 2}
    return max(dates) if best > 0 and len(dates) > 1 else None


# Leading and trailing characters that are never part of an answer: punctuation, quotes,
# dashes ("– Harwick University's" -> "Harwick University"), and the possessive clitic.
_TRIM = " ,.;:\"'“”‘’()[]–—-"
_POSSESSIVE = ("'s", "’s")


def trim_span(text: str) -> str:
    """The span without surrounding punctuation and a trailing possessive "'s"."""
    text = text.strip(_TRIM)
    for clitic in _POSSESSIVE:
        if text.endswith(clitic):
            text = text[: -len(clitic)].strip(_TRIM)
    return text


_PLACE_HEADS = {
    "country": "country",
    "nation": "country",
    "state": "state",
    "city": "city",
    "town": "city",
    "continent": "continent",
}


_OWNER = re.compile(r"^(.+?)[’']s\s")
_VAGUE_COUNT = re.compile(
    r"(?i)(many |several |some )?(tens of |hundreds of )?"
    r"(dozens|scores|hundreds|thousands|millions|billions)"
)
_STRICT_PLACES = frozenset({"country", "state", "continent"})  # a city is any other GPE


def fine_type(head: str | None, text: str, label: str) -> float:
    """For "which country/state/city/continent": 1 when the span is a place of that kind, 0.5
    for a nationality of the asked country kind ("Peruvian"), -1 for a place of another kind
    (a dateline city for "which country"), 0 otherwise."""
    asked = _PLACE_HEADS.get(head or "")
    if asked is None:
        return 0.0
    kind = place_kind(text)
    if asked == "city":
        return -1.0 if kind in {"country", "state", "continent"} else float(label == "GPE")
    if kind == asked:
        return 1.0
    if kind == "demonym" and asked == "country":
        return 0.5
    return -1.0 if kind is not None or label in {"GPE", "LOC", "FAC"} else 0.0


def _question_lemmas(question: str) -> set[str]:
    return {
        t.lemma_.lower()
        for t in nlp.parse(question)
        if not t.is_stop and t.pos_ not in _SKIP_POS and t.is_alpha
    }


def _spans(doc, kind: AnswerType):  # type: ignore[no-untyped-def]
    """(span, label, type_match) for the entities and noun phrases `kind` admits."""
    covered: set[int] = set()
    for ent in doc.ents:
        covered.update(range(ent.start, ent.end))
        if not kind.labels or ent.label_ in kind.labels:
            yield ent, ent.label_, kind.match(ent.label_) * _counts(ent, kind)
        elif kind.labels & COUNT and ent.label_ == "MONEY" and not _has_currency(ent):
            # the small NER tags some counts as MONEY ("more than 40 million vaccine doses")
            yield ent, "CARDINAL", kind.match("CARDINAL") * _counts(ent, kind)
        elif "MONEY" in kind.labels and ent.label_ in {"CARDINAL", "QUANTITY"}:
            money = _with_currency(doc, ent)  # the small NER often leaves out "euros"
            if money is not None:
                yield money, "MONEY", kind.match("MONEY")
    if kind.numeric and kind.labels & COUNT:
        for tok in doc:  # a bare figure the NER missed ("with 12,500 books")
            if tok.like_num and tok.i not in covered:
                span = doc[tok.i : tok.i + 1]
                yield span, "NUM", _counts(span, kind)
    if kind.numeric or (kind.labels and kind.head is None):
        return
    for chunk in doc.noun_chunks:
        if chunk.root.pos_ == "PRON" or all(t.i in covered for t in chunk):
            continue
        words = chunk[1:] if chunk[0].pos_ == "DET" else chunk
        if not len(words):
            continue
        match = 0.5 if kind.head and chunk.root.lemma_.lower() == kind.head else 0.0
        if kind.labels and not match:  # "which country": a place, or a phrase about a country
            continue
        yield words, "NP", match


_CURRENCY_WORDS = frozenset(
    "dollar euro pound yen yuan rupee franc ruble rouble peso won real rand krona".split()
)
_CURRENCY_SIGNS = frozenset("$£€¥₹")


def _with_currency(doc, ent):  # type: ignore[no-untyped-def]
    """The figure with the currency beside it ("48 million euros"), or None."""
    after = doc[ent.end] if ent.end < len(doc) else None
    before = doc[ent.start - 1] if ent.start > 0 else None
    if after is not None and after.lemma_.lower() in _CURRENCY_WORDS:
        return doc[ent.start : ent.end + 1]
    if before is not None and before.text in _CURRENCY_SIGNS:
        return doc[ent.start - 1 : ent.end]
    return None


def _has_currency(span) -> bool:  # type: ignore[no-untyped-def]
    return any(
        t.text in _CURRENCY_SIGNS or t.lemma_.lower() in _CURRENCY_WORDS or t.is_currency
        for t in span
    )


def _counts(span, kind: AnswerType) -> float:  # type: ignore[no-untyped-def]
    """For "how many X": 1 when the figure is attached to an X ("110 countries"), else 0.5.
    X is any noun of the phrase the question counts: "1.2 billion vaccines" counts "vaccine
    doses" as much as "330 million vaccine doses" does."""
    if not kind.numeric or not kind.head:
        return 1.0
    counted = kind.counted or {kind.head}
    near = [span.root.head, *span.root.children, *(t.head for t in span)]
    return 1.0 if any(t.lemma_.lower() in counted for t in near) else 0.5


# Links to another statement: "[330 million doses have been delivered] and [1.2 billion will
# be donated next year]" are two clauses joined by `conj`, each with its own verb and
# modifiers. Adverbial clauses stay: they say when/why/how of the same event (and the small
# parser often hangs "next year" on one, as in "donated to partner nations next year").
_CLAUSE_LINKS = frozenset({"conj", "ccomp", "parataxis"})
_PREDICATES = frozenset({"VERB", "AUX"})


def _clause(span, q_lemmas: set[str]) -> float:  # type: ignore[no-untyped-def]
    """Share of the question's words in the span's own clause: the nearest verb above the span
    with its dependents, leaving out the clauses linked to it. A sentence can give two figures
    for two things ("delivered ... and ... will be donated next year"); the question's verb and
    its time ("donated next year") say which clause answers it."""
    if not q_lemmas:
        return 0.0
    pred = span.root
    while pred.pos_ not in _PREDICATES and pred.head.i != pred.i:
        pred = pred.head
    words: set[str] = set()
    todo = [pred]
    while todo:
        t = todo.pop()
        words.add(t.lemma_.lower())
        todo.extend(
            c for c in t.children if c.dep_ not in _CLAUSE_LINKS or c.pos_ not in _PREDICATES
        )
    return len(words & q_lemmas) / len(q_lemmas)


def _has_name(span) -> float:  # type: ignore[no-untyped-def]
    return float(any(t.pos_ in {"PROPN", "NUM"} for t in span))


def _adds_something(text: str, asked: set[str]) -> bool:
    """A name the question lacks, or mostly new words: "the Beijing Olympics 2022" only
    repeats a question about "the boycott of the Beijing Olympics" (seed), while "Antony
    Blinken" adds to "Blinken" and "Yosemite National Park" to "which national park"."""
    terms = content_terms(text)
    new = [t for t in terms if t not in asked]
    if not new:
        return False
    names = [w for w in tokens(text) if w[:1].isupper() and stem(w) not in asked]
    return bool(names) or 2 * len(new) >= len(terms)


def _attachment(span, anchors) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Proximity 1 / (1 + dependency path length) from the span to the question's words in the
    sentence: to the nearest one, and averaged over each distinct word (its nearest use)."""
    inside = range(span.start, span.end)
    root = span.root
    up = {t.i: d for d, t in enumerate([root, *root.ancestors])}
    nearest: dict[str, float] = {}
    for a in anchors:
        if a.i in inside:
            continue
        for d, t in enumerate([a, *a.ancestors]):
            if t.i in up:
                near = 1.0 / (1.0 + d + up[t.i])
                key = a.lemma_.lower()
                nearest[key] = max(nearest.get(key, 0.0), near)
                break
    if not nearest:
        return 0.0, 0.0
    return max(nearest.values()), sum(nearest.values()) / len(nearest)
