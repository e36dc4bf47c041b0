"""Scoring functions for the evaluation: pure, typed, and small enough to check by hand.

Answer scores follow the SQuAD conventions (normalise, then take the best match over all
acceptable answers) so numbers are comparable with published results. Retrieval is scored at
document level: the ranked list of distinct `doc_id`s, since a question is answered by an
article, not by whichever chunk of it happened to rank first.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

__all__ = [
    "best_over",
    "citation_precision",
    "contains",
    "dedupe",
    "exact_match",
    "mean",
    "normalize_answer",
    "normalize_numbers",
    "percentile",
    "recall_at_k",
    "reciprocal_rank",
    "refusal_precision",
    "refusal_recall",
    "strip_citation_markers",
    "token_f1",
]

_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
# ASCII punctuation plus the typographic marks news text is full of (quotes, dashes, ellipsis).
_PUNCT = frozenset(string.punctuation) | frozenset("‘’“”–—…«»′″·•")
_CITATION_RE = re.compile(r"\s*\[\d+(?:\s*[,;-]\s*\d+)*\]")


_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
} | {
    w: str(10 * i)
    for i, w in enumerate("thirty forty fifty sixty seventy eighty ninety".split(), 3)
}
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b")
_SCALE = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_SCALED_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(thousand|million|billion|trillion)\b")
_GROUPED_RE = re.compile(r"(?<=\d),(?=\d{3}\b)")


def normalize_numbers(text: str) -> str:
    """One form for one number: "nine" -> "9", "4,200,000" -> "4200000", "$4.2 million" ->
    "$4200000", so an answer shown as the article writes it matches a gold answer written
    another way (the shown text itself is never changed)."""
    text = _NUMBER_WORD_RE.sub(lambda m: _NUMBER_WORDS[m.group(1)], text.lower())
    text = _GROUPED_RE.sub("", text)

    def scaled(m: re.Match[str]) -> str:
        value = float(m.group(1)) * _SCALE[m.group(2)]
        return str(int(value)) if value == int(value) else m.group(0)

    return _SCALED_RE.sub(scaled, text)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and the articles a/an/the, collapse
    whitespace. Typographic quotes and dashes count as punctuation too; numbers are written
    one way first (`normalize_numbers`)."""
    text = "".join(ch for ch in normalize_numbers(text) if ch not in _PUNCT)
    text = _ARTICLES_RE.sub(" ", text)
    return " ".join(text.split())


def strip_citation_markers(text: str) -> str:
    """Remove `[1]`, `[2, 3]` markers: once punctuation is stripped they would read as numbers
    and could match a numeric gold answer by accident."""
    return _CITATION_RE.sub("", text)


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall after normalisation (SQuAD's F1).

    Two empty strings agree (1.0); an empty string against a non-empty one scores 0.0.
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def contains(prediction: str, gold: str) -> float:
    """1.0 when the normalised gold answer occurs in the normalised prediction as whole tokens.

    Whole tokens, so gold "5" is not found in "25"; a gold answer that normalises to nothing
    (e.g. "the") never counts as found.
    """
    needle = normalize_answer(gold)
    if not needle:
        return 0.0
    return float(f" {needle} " in f" {normalize_answer(prediction)} ")


def best_over(metric: Callable[[str, str], float], prediction: str, golds: Iterable[str]) -> float:
    """Max of `metric(prediction, gold)` over the acceptable answers; 0.0 when there are none."""
    return max((metric(prediction, g) for g in golds), default=0.0)


def dedupe(ids: Iterable[str]) -> list[str]:
    """Distinct ids in first-seen order: the document ranking implied by a chunk ranking."""
    return list(dict.fromkeys(ids))


def recall_at_k(retrieved_doc_ids: Sequence[str], gold_doc_ids: Iterable[str], k: int) -> float:
    """Share of the gold documents found among the first `k` distinct retrieved documents.

    Duplicates in `retrieved_doc_ids` are collapsed first (keeping the first occurrence), so
    the value is never above 1; fewer than `k` results simply means fewer chances.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    gold = set(gold_doc_ids)
    if not gold:
        raise ValueError("recall is undefined for a question without gold documents")
    top = set(dedupe(retrieved_doc_ids)[:k])
    return len(gold & top) / len(gold)


def reciprocal_rank(retrieved_doc_ids: Sequence[str], gold_doc_ids: Iterable[str]) -> float:
    """1 / rank of the first gold document among distinct retrieved documents; 0.0 if absent."""
    gold = set(gold_doc_ids)
    if not gold:
        raise ValueError("reciprocal rank is undefined for a question without gold documents")
    for rank, doc_id in enumerate(dedupe(retrieved_doc_ids), 1):
        if doc_id in gold:
            return 1.0 / rank
    return 0.0


def citation_precision(
    citations: Sequence[tuple[str, str]],
    gold_doc_ids: Iterable[str],
    gold_answers: Iterable[str],
) -> tuple[int, int]:
    """(good, total) for one answer's citations, given as `(doc_id, cited text)` pairs.

    A citation is good when it points at a gold document or its text contains a gold answer
    (another article can legitimately report the same fact). Counts rather than a ratio, so a
    caller can pool them over many questions.
    """
    gold_docs = set(gold_doc_ids)
    answers = list(gold_answers)
    good = sum(
        1
        for doc_id, text in citations
        if doc_id in gold_docs or best_over(contains, text, answers) > 0
    )
    return good, len(citations)


def refusal_precision(refused: Sequence[bool], unanswerable: Sequence[bool]) -> float | None:
    """Of the questions refused, the share the corpus really does not answer.

    None when nothing was refused: precision is undefined, and 0 or 1 would both mislead.
    """
    _same_length(refused, unanswerable)
    n_refused = sum(refused)
    if n_refused == 0:
        return None
    return sum(r and u for r, u in zip(refused, unanswerable, strict=True)) / n_refused


def refusal_recall(refused: Sequence[bool], unanswerable: Sequence[bool]) -> float | None:
    """Of the questions the corpus does not answer, the share refused; None if there are none."""
    _same_length(refused, unanswerable)
    n_unanswerable = sum(unanswerable)
    if n_unanswerable == 0:
        return None
    return sum(r and u for r, u in zip(refused, unanswerable, strict=True)) / n_unanswerable


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation, as numpy's default; None if empty."""
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float | None:
    """Arithmetic mean; None for no values, so an empty subset reads as 'n/a', not as 0."""
    return sum(values) / len(values) if values else None


def _same_length(a: Sequence[object], b: Sequence[object]) -> None:
    if len(a) != len(b):
        raise ValueError("refused and unanswerable must have one entry per question")
