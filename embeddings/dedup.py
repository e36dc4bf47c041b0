"""Near-duplicate articles: the same wire story published again, lightly edited.

A newcomer is a duplicate of an indexed article when most of its word 5-shingles appear in
that article (it adds little of its own) and no number differs in the same words (an update
that changes a figure is news, not a copy). Candidates come from MinHash LSH (datasketch)
over the shingles, so a newcomer is compared with a handful of articles, not all of them;
the decision is then made on the exact shingle sets of the newcomer and each candidate.

Measured by `python -m evals.dedup_bench` on edited copies of real articles and on distinct
stories about the same events (README, "Duplicate stories").
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from datasketch import MinHash, MinHashLSH

from embeddings.types import Document

if TYPE_CHECKING:
    from embeddings.chunk_table import ChunkTable

SHINGLE = 4  # words per shingle
NUM_PERM = 128
SEED = 1
SCHEME = "affine32"  # uint32 values: 512 bytes a signature, fixed so stored ones stay valid
# LSH recall target: a copy cut to half its length still has Jaccard 0.5 with the original,
# so candidates are fetched from well below that; the exact containment check decides.
LSH_THRESHOLD = 0.3
# Share of the newcomer's shingles found in the candidate. On the bench (1,175 articles) 0.7
# and 0.75 both kept every distinct story apart (recall 0.983 / 0.970); 0.75 because two real
# stories four days apart that reuse background paragraphs reach 0.69 (README figures).
CONTAINMENT = 0.75
MIN_SHINGLES = 25  # shorter texts share boilerplate ("In this guide, we have gathered the best …")
# The banding MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM) picks (datasketch's
# _optimal_param, equal weights): 37 bands of 3 values. Stored articles' band keys live in
# SQLite (chunk_table.doc_dedup_bands), so a newcomer's candidates are one indexed lookup,
# the same set MinHashLSH.query returns; tests/test_dedup.py checks these against datasketch.
BANDS, ROWS = 37, 3

# "16.70", "903,896", "5-11" and "60/40" stay one token, so a changed figure is one token
_WORD = re.compile(r"\w+(?:[.,/:-]\w+)*")
_NUMBER = re.compile(r"\d")


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def shingles(text: str) -> set[str]:
    w = words(text)
    if len(w) < SHINGLE:
        return {" ".join(w)} if w else set()
    return {" ".join(w[i : i + SHINGLE]) for i in range(len(w) - SHINGLE + 1)}


def minhash(shingle_set: Iterable[str]) -> MinHash:
    m = MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME)
    m.update_batch([s.encode("utf-8") for s in shingle_set])
    return m


def signature_bytes(text: str) -> bytes:
    """The MinHash of an article's shingles as stored beside it (chunk_table.doc_dedup)."""
    return np.asarray(minhash(shingles(text)).hashvalues, dtype=np.uint32).tobytes()


def from_bytes(blob: bytes) -> MinHash:
    values = np.frombuffer(blob, dtype=np.uint32)
    return MinHash(num_perm=NUM_PERM, seed=SEED, scheme=SCHEME, hashvalues=values)


def band_keys(hashvalues: np.ndarray | bytes) -> list[tuple[int, bytes]]:
    """(band, key) per LSH band: an article is a candidate when any band key is equal."""
    values = np.frombuffer(hashvalues, np.uint32) if isinstance(hashvalues, bytes) else hashvalues
    values = np.asarray(values, dtype=np.uint32)
    return [(b, values[b * ROWS : (b + 1) * ROWS].tobytes()) for b in range(BANDS)]


# band keys -> {doc_id: the canonical it copies or None} of stored articles sharing one
StoredLookup = Callable[[list[tuple[int, bytes]]], dict[str, "str | None"]]


def _number_contexts(w: list[str]) -> dict[tuple[str, ...], Counter[str]]:
    """Each number counted under the two words before it and, apart, the two after it."""
    out: dict[tuple[str, ...], Counter[str]] = {}
    for i, t in enumerate(w):
        if not _NUMBER.search(t):
            continue
        if i >= 2:
            out.setdefault(("<", *w[i - 2 : i]), Counter())[t] += 1
        if i + 2 < len(w):
            out.setdefault((">", *w[i + 1 : i + 3]), Counter())[t] += 1
    return out


def facts_differ(a: str, b: str) -> bool:
    """Whether the same words carry a different number ("death toll rose to 12" / "... 15").

    Per context both texts share, a substitution shows as each text having a number more
    often than the other; a cut paragraph only lowers counts in one text, and an added
    dateline or credit line brings contexts the other text lacks."""
    ca, cb = _number_contexts(words(a)), _number_contexts(words(b))
    for key, na in ca.items():
        nb = cb.get(key)
        if nb is not None and (na - nb) and (nb - na):
            return True
    return False


def containment(new: set[str], old: set[str]) -> float:
    """Share of the newcomer's shingles found in the older article."""
    return len(new & old) / len(new) if new else 0.0


@dataclass(frozen=True)
class Match:
    canonical: str  # the doc_id the newcomer duplicates (always a canonical article)
    matched: str  # the article it was compared with (the canonical or one of its copies)
    containment: float


class Detector:
    """Articles already indexed (and those accepted earlier in the same batch), by MinHash.

    `text_of` returns a stored article's text, fetched only for LSH candidates. With
    `stored`, indexed articles are found through their persisted band keys (not held in
    memory); those removed or re-added here are then hidden from it."""

    def __init__(
        self,
        text_of: Callable[[str], str | None],
        *,
        stored: StoredLookup | None = None,
        containment_threshold: float = CONTAINMENT,
        lsh_threshold: float = LSH_THRESHOLD,
    ) -> None:
        self._text_of = text_of
        self.threshold = containment_threshold
        # params given: datasketch derives them by numeric integration, 68 ms a detector
        params = (BANDS, ROWS) if lsh_threshold == LSH_THRESHOLD else None
        self._lsh = MinHashLSH(threshold=lsh_threshold, num_perm=NUM_PERM, params=params)
        self._root: dict[str, str] = {}  # doc_id -> its canonical (itself when canonical)
        self._texts: dict[str, str] = {}  # batch texts, not yet stored
        self._stored = stored
        self._hidden: set[str] = set()  # stored articles superseded in this batch

    def add(
        self, doc_id: str, sig: MinHash, canonical: str | None = None, text: str | None = None
    ) -> None:
        if doc_id in self._root:
            self.remove(doc_id)
        self._lsh.insert(doc_id, sig)
        self._root[doc_id] = canonical or doc_id
        if text is not None:
            self._texts[doc_id] = text

    def remove(self, doc_id: str) -> None:
        self._hidden.add(doc_id)
        if doc_id in self._root:
            self._lsh.remove(doc_id)
            del self._root[doc_id]
            self._texts.pop(doc_id, None)

    def root(self, doc_id: str) -> str | None:
        return self._root.get(doc_id)

    def candidates(
        self, doc_id: str, text: str, sig: MinHash | None = None
    ) -> list[tuple[str, float, bool]]:
        """(article, containment, facts differ) for each LSH candidate other than `doc_id`
        and its own copies (a new version of an article replaces it, never duplicates it)."""
        return [(o, score, differ) for o, _, score, differ in self._scored(doc_id, text, sig)]

    def _lookup(self, sig: MinHash) -> dict[str, str]:
        """LSH candidate -> its canonical, from this batch and (band keys) the stored ones."""
        found = {o: self._root[o] for o in self._lsh.query(sig) if o in self._root}
        if self._stored is not None:
            for other, canonical in self._stored(band_keys(sig.hashvalues)).items():
                if other not in found and other not in self._hidden:
                    found[other] = canonical or other
        return found

    def _scored(
        self, doc_id: str, text: str, sig: MinHash | None
    ) -> list[tuple[str, str, float, bool]]:
        mine = shingles(text)
        if len(mine) < MIN_SHINGLES:
            return []
        out = []
        found = self._lookup(sig if sig is not None else minhash(mine))
        for other in sorted(found):  # sorted: ties in containment resolve the same each run
            root = found[other]
            if other == doc_id or root == doc_id:
                continue
            other_text = self._texts.get(other)
            if other_text is None:
                other_text = self._text_of(other)
            if other_text is None:
                continue
            score = containment(mine, shingles(other_text))
            differ = score >= self.threshold and facts_differ(text, other_text)
            out.append((other, root, score, differ))
        return out

    def find(self, doc_id: str, text: str, sig: MinHash | None = None) -> Match | None:
        """The canonical article this text duplicates, if any (the closest one)."""
        best: Match | None = None
        for other, root, score, differ in self._scored(doc_id, text, sig):
            good = score >= self.threshold and not differ
            if good and (best is None or score > best.containment):
                best = Match(root, other, score)
        return best


def mark_duplicates(
    todo: list[tuple[Document, str]], table: ChunkTable, digest: Callable[[Document], str]
) -> tuple[list[tuple[Document, str]], dict[str, str]]:
    """The articles to write, in order, with `duplicate_of` set on copies (of what `table`
    holds or of an earlier one in `todo`), plus the stored copies of articles in `todo`
    whose status changes; and doc_id -> canonical for the copies in `todo`."""

    def text_of(doc_id: str) -> str | None:
        doc = table.document(doc_id)
        return doc.text if doc is not None else None

    if table.has_bands():  # one indexed lookup per article: O(new), not O(indexed)
        detector = Detector(text_of, stored=table.dedup_candidates)
    else:  # written before band rows (this write adds them): every signature, once
        detector = Detector(text_of)
        stored = table.minhashes()
        for doc_id, (canonical, blob) in stored.items():
            detector.add(doc_id, from_bytes(blob), canonical)
        if len(stored) < table.count_documents():  # from before dedup: hash the texts
            for doc in table.documents():
                if doc.doc_id not in stored:
                    detector.add(doc.doc_id, minhash(shingles(doc.text)))
    marked, copies = [], {}
    for doc, doc_digest in todo:
        canonical = _place(detector, doc)
        if canonical is not None:
            copies[doc.doc_id] = canonical
        marked.append((dataclasses.replace(doc, duplicate_of=canonical), doc_digest))
    # Copies of an article just replaced or turned into a copy are checked again against
    # what is indexed now: still a copy (of it or of another), else a canonical article.
    batch = {doc.doc_id for doc, _ in todo}
    for copy_id, old in table.duplicate_links(sorted(batch)).items():
        stored_doc = table.document(copy_id)
        if copy_id in batch or stored_doc is None:
            continue
        canonical = _place(detector, stored_doc)
        if canonical != old:
            doc = dataclasses.replace(stored_doc, duplicate_of=canonical)
            marked.append((doc, digest(doc)))
    return marked, copies


def _place(detector: Detector, doc: Document) -> str | None:
    """The canonical `doc` copies, or None; `doc` joins the detector either way (a new
    version of an article replaces the old one in it, never copies it)."""
    detector.remove(doc.doc_id)
    sig = minhash(shingles(doc.text))
    match = detector.find(doc.doc_id, doc.text, sig)
    canonical = match.canonical if match else None
    detector.add(doc.doc_id, sig, canonical, text=doc.text)
    return canonical
