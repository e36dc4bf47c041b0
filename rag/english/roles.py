"""Which argument of the question's verb the answer is: its subject, its object, the object of
one of its prepositions.

"Who designed the Tidewater bridge?" asks for the subject of *design*, so in "It ... was
designed by the engineer Rosalind Achebe" the answer is the passive agent, not the place
named in the sentence before (issue 18). `role` scores a candidate span: 1 when it fills the
asked slot of the same verb in its sentence, -1 when it fills another slot of that verb, 0
when the sentence does not use the verb (or the question has none to align).

    >>> slot = asked_slot(nlp.parse("Who designed the Tidewater bridge?"))
    >>> slot
    Slot(verb='design', deps=frozenset({'nsubj', 'agent'}), prep=None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spacy.tokens import Doc, Span, Token

_WH = frozenset({"who", "whom", "whose", "what", "which"})
_LIGHT_VERBS = frozenset({"be", "have", "do"})
_SUBJECT = frozenset({"nsubj", "agent"})  # active subject, or "by X" of a passive
_OBJECT = frozenset({"dobj", "nsubjpass", "attr", "oprd"})
_ARGUMENTS = frozenset({"nsubj", "nsubjpass", "dobj", "agent", "pobj", "attr", "dative"})
# Links inside one noun phrase: "the engineer Rosalind Achebe", "Peru's president", "330
# million doses".
_WITHIN_PHRASE = frozenset(
    {"appos", "compound", "flat", "conj", "nmod", "poss", "amod", "nummod", "quantmod"}
)


@dataclass(frozen=True)
class Slot:
    verb: str  # the lemma of the question's main verb
    deps: frozenset[str]  # the dependency labels that fill the asked slot in a sentence
    prep: str | None = None  # for a prepositional object: the preposition


def asked_slot(question: Doc) -> Slot | None:
    """The verb the question asks about and the slot its wh-phrase stands in, read from word
    order and tags: the small parser's dependency labels are often wrong on questions ("Which
    country did the president visit?" gets "country" as the subject)."""
    wh = next((t for t in question if t.lower_ in _WH), None)
    if wh is None:  # "How many doses has the US delivered": the counted noun is the slot
        wh = next((t for t in question if t.lower_ in {"many", "much"}), None)
    if wh is None:
        return None
    i = wh.i + 1
    while i < len(question) and (
        question[i].pos_ in {"NOUN", "PROPN", "ADJ", "NUM", "ADV"}
        or (  # "which embattled celebrity": a participle before the noun describes it
            question[i].tag_ in {"VBN", "VBG"}
            and i + 1 < len(question)
            and question[i + 1].pos_ in {"NOUN", "PROPN"}
        )
    ):
        i += 1  # the rest of "which two countries", "what NFL star"
    if i >= len(question):
        return None
    nxt = question[i]
    words = [t for t in question if not t.is_punct]
    prep = None
    start = wh.i - 1 if wh.lower_ in {"many", "much"} else wh.i  # "how" of "how many"
    if start > 0 and question[start - 1].tag_ in {"IN", "TO"}:  # "To which country did ..."
        prep = question[start - 1].lower_
    elif words and words[-1].tag_ in {"IN", "TO", "RP"}:  # "... did she travel to?"
        prep = words[-1].lower_
    verb: Token | None
    if nxt.pos_ == "AUX" or nxt.tag_ == "MD" or nxt.lemma_ in _LIGHT_VERBS:
        rest = [t for t in question[i + 1 :] if t.pos_ not in {"ADV", "PART"}]
        if rest and rest[0].pos_ == "VERB":  # "Who has won", "Who was arrested"
            verb = rest[0]
            passive = nxt.lemma_ == "be" and verb.tag_ == "VBN"
            deps = _OBJECT if passive else _SUBJECT
        elif nxt.lemma_ == "be" and not prep:  # "Who is the mayor ...": a copula
            return None
        else:  # a subject comes first: "did the president visit", "has the US delivered"
            verb = next((t for t in rest if t.pos_ == "VERB"), None)
            deps = frozenset({"pobj"}) if prep else _OBJECT
    elif nxt.pos_ == "VERB":  # "Who designed ...", "What NFL star announced ..."
        verb, deps = nxt, _SUBJECT
    else:
        return None
    if verb is None or verb.lemma_ in _LIGHT_VERBS:
        return None
    return Slot(verb.lemma_, deps, prep if deps == frozenset({"pobj"}) else None)


def role(span: Span, slot: Slot | None) -> float:
    """1: `span` fills the asked slot of the question's verb; -1: another argument of that
    verb; 0: the verb is not in the sentence, or nothing to align."""
    if slot is None:
        return 0.0
    head = _phrase_head(span.root)
    verb, dep = _governing_verb(head)
    if verb is None or verb.lemma_ != slot.verb:
        return 0.0
    if dep in slot.deps and (slot.prep is None or head.head.lower_ == slot.prep):
        return 1.0
    return -1.0 if dep in _ARGUMENTS else 0.0


def _phrase_head(tok: Token) -> Token:
    """The head of the noun phrase a token sits in ("Achebe" -> "engineer" in "the engineer
    Rosalind Achebe")."""
    seen = 0
    while tok.dep_ in _WITHIN_PHRASE and tok.head.i != tok.i and seen < 4:
        tok, seen = tok.head, seen + 1
    return tok


def _governing_verb(tok: Token) -> tuple[Token | None, str]:
    """The verb the phrase is an argument of, and as what: "by X" of a passive is the
    `agent`; the object of another preposition is `pobj`."""
    if tok.dep_ == "pobj":
        prep = tok.head
        if prep.dep_ == "agent" and prep.head.pos_ in {"VERB", "AUX"}:
            return prep.head, "agent"
        if prep.head.pos_ in {"VERB", "AUX"}:
            return prep.head, "pobj"
        return None, ""
    if tok.head.pos_ in {"VERB", "AUX"} and tok.head.i != tok.i:
        return tok.head, tok.dep_
    return None, ""
