"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings fused by reciprocal rank."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass

from embeddings.embedder import Embedder
from embeddings.index import ChunkRecord, DateSourceFilter, Index

RETRIEVERS = ("bm25", "dense", "hybrid")
RRF_K = 60  # the constant from Cormack et al. (2009); insensitive in practice


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the two component scores, when present."""

    chunk: ChunkRecord
    score: float
    dense: float | None = None  # cosine similarity
    lexical: float | None = None  # BM25

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id


def parse_date(value: str | dt.date | None) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def recency_weight(doc_date: str | None, as_of: dt.date, *, implicit: bool = False) -> float:
    """Favours articles from the days just before `as_of` (later ones are filtered out
    before ranking; the 0.5 only applies if a caller ranks them anyway). `implicit`: `as_of`
    is today, not asked for, so an article dated a day ahead (another time zone) is simply
    the newest."""
    if not doc_date:
        return 1.0
    try:
        age = (as_of - dt.date.fromisoformat(doc_date[:10])).days
    except ValueError:
        return 1.0
    if age < 0:
        return 2.0 if implicit else 0.5
    return 1.0 + math.exp(-age / 7.0)


def with_as_of(flt: DateSourceFilter | None, as_of: dt.date | None) -> DateSourceFilter:
    """`flt` that also drops articles dated after `as_of`: "as of" means as known that day."""
    flt = flt or DateSourceFilter()
    return dataclasses.replace(flt, as_of=as_of.isoformat()) if as_of is not None else flt


def rrf(rankings: list[list[int]]) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, cid in enumerate(ranking):
            fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
    return fused


class Retriever:
    def __init__(self, index: Index, embedder: Embedder) -> None:
        self.index = index
        self.embedder = embedder

    @staticmethod
    def today() -> dt.date:
        return dt.date.today()

    def retrieve(
        self,
        question: str,
        *,
        k: int = 5,
        as_of: dt.date | None = None,
        filters: DateSourceFilter | None = None,
        mode: str = "hybrid",
    ) -> list[Hit]:
        if mode not in RETRIEVERS:
            raise ValueError(f"retriever must be one of {', '.join(RETRIEVERS)}, not {mode!r}")
        flt = with_as_of(filters, as_of)
        depth = max(4 * k, 30)
        dense: dict[int, float] = {}
        lexical: dict[int, float] = {}
        if mode in ("dense", "hybrid"):
            vector = self.embedder.encode([question])[0]
            dense = dict(self.index.dense_search(vector, depth, flt=flt if flt else None))
        if mode in ("bm25", "hybrid"):
            lexical = dict(self.index.lexical_search(question, depth, flt))
        fused = rrf([list(dense), list(lexical)])
        # A question asked without `as_of` is asked now: coverage from the last days comes
        # first (news that keeps arriving, `rag watch`); in an archive whose articles are
        # all weeks old every weight is ~1 and the order is unchanged.
        reference = as_of or self.today()
        dates = self.index.doc_dates(fused)
        fused = {
            cid: s * recency_weight(dates.get(cid), reference, implicit=as_of is None)
            for cid, s in fused.items()
        }
        top = sorted(fused, key=lambda cid: (-fused[cid], cid))[:k]
        records = self.index.chunks(top)
        return [
            Hit(records[cid], fused[cid], dense.get(cid), lexical.get(cid))
            for cid in top
            if cid in records
        ]
