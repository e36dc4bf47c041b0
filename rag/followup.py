"""Turn a follow-up question into a standalone one, using the chat history.

The bundled 135M-parameter model cannot rewrite questions reliably, so this is rule-based and
deterministic: a question that reads as a continuation ("And to how many countries?", "What
about China?", "When did he say that?") is merged with the previous standalone question, so
retrieval and the answerer see everything they need. Anything else is returned unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["is_followup", "rewrite_question"]


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’.\-]*[A-Za-z0-9]|[A-Za-z0-9]")
_CONNECTOR_RE = re.compile(
    r"^\s*(?:(?:and|but|also|so|then|plus|or|ok|okay)\b[\s,]*)+"
    r"|^\s*(?:(?:and|but)\s+)?(?:what|how)\s+about\b[\s,]*"
    r"|^\s*(?:(?:and|but)\s+)?what\s+of\b[\s,]*"
    r"|^\s*(?:(?:and|but)\s+)?(?:same|ditto)\s+(?:for|with)\b[\s,]*",
    re.IGNORECASE,
)
_WH = (
    "how many",
    "how much",
    "how long",
    "how often",
    "how old",
    "how far",
    "which",
    "what",
    "when",
    "where",
    "whom",
    "whose",
    "who",
    "why",
    "how",
)
_WH_RE = re.compile(
    r"^(?P<prep>(?:to|in|for|from|with|by|on|at|of|about|since|until|after|before)\s+)?"
    r"(?P<wh>" + "|".join(w.replace(" ", r"\s+") for w in _WH) + r")\b(?P<tail>.*)$",
    re.IGNORECASE | re.DOTALL,
)
_AUX = _set(
    """is are was were be been being am do does did has have had will would can could should
    shall may might must isn't aren't wasn't weren't don't doesn't didn't hasn't haven't
    hadn't won't wouldn't can't couldn't shouldn't"""
)
_PREPS = _set("to in for from with by on at of about since until after before into over under")
_PRONOUN_SUBST = _set("he she him they them it")
_POSSESSIVE = _set("his her their its")
_DEMONSTRATIVE = _set("that this those these")
# A demonstrative followed by one of these (or by nothing) stands for something said before.
_DEMO_NEXT = frozenset(_AUX | _PREPS | _set("happen happened mean means say said cost"))
_STOP = frozenset(
    _AUX
    | _PREPS
    | _PRONOUN_SUBST
    | _POSSESSIVE
    | _DEMONSTRATIVE
    | set(w for phrase in _WH for w in phrase.split())
    | _set(
        """a an the and or but also so then plus ok okay i me my we our you your there here not
    no yes any some many much more most other same ditto as than that tell please again
    else one ones just only"""
    )
)
_IRREGULAR_PARTICIPLES = _set(
    """sent given made won lost spent paid sold bought built taken said told got gotten
    brought held put set cut left led met kept seen done shown grown known written run
    become begun drawn thrown hit found gone pledged"""
)


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


def _content_words(text: str) -> list[str]:
    return [w for w in _words(text) if w.lower() not in _STOP]


def _entities(text: str) -> list[str]:
    """Capitalised spans ("Antony Blinken", "the US", "COVAX"), first word of a sentence aside
    unless it is not a common word."""
    spans: list[str] = []
    tokens = list(re.finditer(r"[A-Za-z0-9][A-Za-z0-9'’.\-]*[A-Za-z0-9.]|[A-Za-z0-9]", text))
    i = 0
    while i < len(tokens):
        tok = tokens[i].group().rstrip(".") or tokens[i].group()
        prev_char = text[: tokens[i].start()].rstrip()[-1:]
        sentence_start = not prev_char or prev_char in ".?!:"
        if (
            tok[:1].isupper()
            and tok.lower() not in _STOP
            and tok != "I"
            and not (sentence_start and tok.lower() in _COMMON_INITIAL)
        ):
            j = i + 1
            while (
                j < len(tokens)
                and (
                    tokens[j].group()[:1].isupper()
                    or (
                        tokens[j].group().lower() in {"of", "for", "and"}
                        and j + 1 < len(tokens)
                        and tokens[j + 1].group()[:1].isupper()
                    )
                )
                and not re.search(r"[,;:?!]", text[tokens[j - 1].end() : tokens[j].start()])
            ):
                j += 1
            span = text[tokens[i].start() : tokens[j - 1].end()].rstrip(".,")
            before = text[: tokens[i].start()]
            if re.search(r"\bthe\s+$", before, re.IGNORECASE) and (
                span.isupper() or len(span.split()) > 1 or span.endswith("s")
            ):
                span = "the " + span
            spans.append(span)
            i = j
        else:
            i += 1
    return spans


# Capitalised only because they open a sentence.
_COMMON_INITIAL = _set("list give name describe explain summarise summarize find show")


def _unresolved_pronouns(question: str) -> list[str]:
    """Pronouns that refer outside the question: no named entity comes before them."""
    found: list[str] = []
    words = _words(question)
    first_entity_at = _first_entity_index(question)
    for i, w in enumerate(words):
        lw = w.lower()
        if lw in _PRONOUN_SUBST or lw in _POSSESSIVE:
            if first_entity_at is None or first_entity_at > i:
                found.append(lw)
        elif lw in _DEMONSTRATIVE:
            nxt = words[i + 1].lower() if i + 1 < len(words) else ""
            if i > 0 and (not nxt or nxt in _DEMO_NEXT):
                found.append(lw)
    return found


def _first_entity_index(question: str) -> int | None:
    ents = _entities(question)
    if not ents:
        return None
    first = ents[0].split()[-1]
    for i, w in enumerate(_words(question)):
        if w.rstrip(".") == first.rstrip("."):
            return i
    return None


def _has_verb(text: str) -> bool:
    for w in _words(text):
        lw = w.lower()
        if lw in _AUX or lw in _IRREGULAR_PARTICIPLES or (len(lw) > 4 and lw.endswith("ed")):
            return True
    return False


def is_followup(question: str, history: Sequence[tuple[str, str]]) -> bool:
    """True when `question` only makes sense together with the previous turn."""
    if not history or not question.strip():
        return False
    q = question.strip()
    if _CONNECTOR_RE.match(q):
        return True
    if _unresolved_pronouns(q):
        return True
    body = q.rstrip("?.! ")
    first = body.split()[0].lower() if body.split() else ""
    if first in _PREPS:
        return True
    content = _content_words(body)
    return not _has_verb(body) and len(content) <= 3 and not _entities(body)[1:]


def rewrite_question(question: str, history: Sequence[tuple[str, str]]) -> str:
    """The standalone form of `question`.

    `history` is `[(previous standalone question, answer text), ...]`, oldest first. A question
    that is not a follow-up (or has no history) comes back unchanged.
    """
    question = question.strip()
    if not is_followup(question, history):
        return question
    prev_q, prev_a = history[-1]
    prev_q = prev_q.strip()
    if not prev_q:
        return question
    body = _CONNECTOR_RE.sub("", question, count=1).strip().rstrip("?.! ").strip()
    if not body:
        return prev_q
    wh = _WH_RE.match(body)
    if wh and not _has_verb(body):
        merged = _merge_wh_fragment(body, prev_q)
        if merged:
            return merged
    if not wh and not _has_verb(body) and not _unresolved_pronouns(body):
        return _substitute_topic(body, prev_q)
    if not _unresolved_pronouns(body) and (len(_content_words(body)) >= 2 or _entities(body)):
        return _capitalise(body) + "?"  # "Also, what is COVAX?": complete once "also" goes
    return _resolve_pronouns(body, prev_q, prev_a)


def _split_wh_question(q: str) -> tuple[str, str, str] | None:
    """("how many", "vaccine doses", "has the US delivered abroad") for a wh-question, or
    ("", "", q) for a yes/no question that starts with an auxiliary."""
    text = q.strip().rstrip("?.! ")
    m = _WH_RE.match(text)
    if not m:
        first = text.split()[0].lower() if text.split() else ""
        return ("", "", text) if first in _AUX else None
    tail_words = m.group("tail").split()
    nouns: list[str] = []
    while tail_words and tail_words[0].lower() not in _AUX:
        nouns.append(tail_words.pop(0))
    if not tail_words:  # "What happened to X" — no auxiliary to hang a new wh-phrase on
        return None
    head = ((m.group("prep") or "") + m.group("wh")).strip()
    return head, " ".join(nouns), " ".join(tail_words)


def _merge_wh_fragment(fragment: str, prev_q: str) -> str | None:
    """ "to how many countries" + "How many vaccine doses has the US delivered abroad?" ->
    "To how many countries has the US delivered vaccine doses abroad?"."""
    parts = _split_wh_question(prev_q)
    if parts is None:
        return None
    _old_head, old_nouns, rest = parts
    rest_words = rest.split()
    if old_nouns:
        fragment_words = {w.lower() for w in _words(fragment)}
        if not {w.lower() for w in _words(old_nouns)} <= fragment_words:
            at = _participle_index(rest_words)
            if at is None:
                rest_words.append(old_nouns)
            else:
                rest_words.insert(at + 1, old_nouns)
    if rest_words:
        rest_words[0] = rest_words[0].lower()
    sentence = f"{fragment} {' '.join(rest_words)}".strip()
    return _capitalise(sentence) + "?"


def _participle_index(words: list[str]) -> int | None:
    for i, w in enumerate(words[1:], start=1):
        lw = w.lower()
        if lw in _IRREGULAR_PARTICIPLES or (len(lw) > 4 and lw.endswith(("ed", "en"))):
            return i
    return None


def _substitute_topic(phrase: str, prev_q: str) -> str:
    """ "What about China?" after a question about the US asks the same about China."""
    prev = prev_q.strip().rstrip("?.! ")
    new_ents = _entities(phrase)
    old_ents = _entities(prev)
    if new_ents and old_ents:
        target = old_ents[-1]
        idx = prev.rfind(target)
        if idx >= 0:
            return _capitalise(prev[:idx] + phrase + prev[idx + len(target) :]) + "?"
    if phrase.split()[0].lower() in _PREPS:
        return _capitalise(f"{prev} {phrase}") + "?"
    return _capitalise(f"{prev}, regarding {phrase}") + "?"


_THING = _set("it its")


def _antecedent(prev_q: str, prev_a: str, pronouns: set[str]) -> str | None:
    """The thing a pronoun most likely points at: the named answer to a "who" question (for
    he/she/they: "it" is never the person a "who" question was answered with), else the last
    named entity of the previous question."""
    if pronouns & _THING:
        thing = _thing(prev_q)
        if thing:
            return thing
    if prev_q.strip().lower().startswith("who") and not pronouns & _THING:
        asked = {e.lower() for e in _entities(prev_q)}
        for ent in _entities(re.sub(r"\[\d+\]", "", prev_a)):
            if ent.lower() not in asked and not ent.lower().startswith("the "):
                return ent
    ents = _entities(prev_q)
    return ents[-1] if ents else None


def _thing(question: str) -> str | None:
    """The last noun phrase of the question that names something ("the Tidewater bridge" in
    "Who designed the Tidewater bridge?"), from spaCy's parse; None without one."""
    from rag.english import nlp

    chunks = [
        c
        for c in nlp.parse(question).noun_chunks
        if c.root.pos_ in {"NOUN", "PROPN"} and c[0].lower_ not in {"which", "what", "whose"}
    ]
    return chunks[-1].text if chunks else None


def _resolve_pronouns(body: str, prev_q: str, prev_a: str) -> str:
    unresolved = set(_unresolved_pronouns(body))
    ante = _antecedent(prev_q, prev_a, unresolved)
    out = body
    if ante:

        def swap(m: re.Match[str]) -> str:
            w = m.group(0).lower()
            if w in _POSSESSIVE:
                return ante + ("’" if ante.endswith("s") else "'s")
            return ante

        names = sorted(unresolved & (_PRONOUN_SUBST | _POSSESSIVE))
        if names:
            # Only the first mention: later ones now have an antecedent inside the question.
            out = re.sub(
                r"\b(" + "|".join(names) + r")\b", swap, body, count=1, flags=re.IGNORECASE
            )
    # Still vague ("that", or barely any content left): name the previous topic explicitly.
    named = bool(ante) and len(_content_words(ante or "")) >= 2  # "the Tidewater bridge"
    if unresolved & _DEMONSTRATIVE or out == body or (len(_content_words(out)) <= 2 and not named):
        have = {w.lower()[:5] for w in _words(out)}
        topic = " ".join(w for w in _content_words(prev_q) if w.lower()[:5] not in have)
        if topic:
            out = f"{out.rstrip('?.! ')}, regarding {topic}"
    return _capitalise(out.rstrip("?.! ")) + "?"


def _capitalise(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:]
