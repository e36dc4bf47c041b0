"""The Milvus backend's collections and its BM25 terms (see `embeddings.milvus_store`).

BM25 is scored here, not by Milvus's BM25 function, for two measured reasons:

- milvus-lite 3.2.2 ignores analyzer filters: with `{"type": "stemmer"}` asked for, "bridge"
  does not find "bridges" (its analyzer knows only `standard` and `jieba`).
- milvus-lite 3.2.2 computes BM25's IDF per segment (its own TODO in `engine/collection.py`),
  so an article ingested into a large index sits alone in a fresh segment where every word
  has the IDF of a one-document corpus: "quenby", in no other of 20,366 chunks, scored 0.29
  against ~12 for the question's common words, and the new article left the BM25 top 30.
  That, not visibility, is why `evals.load`'s cross-replica probe failed on milvus-lite.

So each chunk stores a sparse vector of BM25 term weights (term frequency saturated and
length-normalised) over the same tokens as the FAISS backend's FTS5 `porter unicode61`
(SQLite's own tokenizer, through `fts5vocab`), and a question's vector weighs each of its
stems by its IDF over the whole collection, from a third collection `<prefix>_terms` of
document frequencies that every write updates. Inner product of the two is BM25, on any
Milvus, with the FAISS backend's stems. (Counting a stem's chunks at question time with a
search instead took 150 ms to 1 s per stem on milvus-lite: it materialises every hit.)
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from embeddings.errors import IndexUnavailableError, IngestError
from embeddings.text import content_words
from embeddings.types import DateSourceFilter, Document, DocumentWrite

MAX_VARCHAR = 65535  # bytes, Milvus's limit for one VARCHAR value
PART_CHARS = 16000  # 16000 chars of UTF-8 fit in 65535 bytes whatever the script
MAX_PARTS = 4096  # Milvus's limit for one ARRAY field: articles up to 65 M characters
SCHEMA_VERSION = "2"  # 2: client-side BM25 (`lex`) and versioned chunks

K1, B = 1.2, 0.75  # FTS5's bm25() constants
# Mean tokens per chunk on realtimeqa_dev (20,365 chunks: 86.7); the chunker cuts by tokens,
# so chunk lengths vary little and a fixed mean stands in for the collection's own.
AVGDL = 87.0
PAGE = 4096  # ids per `in [...]` filter and rows per upsert


def literal(value: Any) -> str:
    """A Milvus expression literal: JSON's escaping is the grammar's for strings and lists."""
    return json.dumps(value, ensure_ascii=False)


def doc_key(doc_id: str) -> str:
    return hashlib.sha1(doc_id.encode("utf-8")).hexdigest()


def filter_expr(flt: DateSourceFilter | None) -> str:
    if not flt:
        return ""
    clauses = []
    if flt.date_from:
        clauses.append(f"date >= {literal(flt.date_from)}")
    if flt.date_to:
        clauses.append(f"date <= {literal(flt.date_to)}")
    if flt.as_of:
        clauses.append(f"(date is null or date <= {literal(flt.as_of)})")
    if flt.sources:
        clauses.append(f"source in {literal(list(flt.sources))}")
    return " and ".join(clauses)


def and_(*clauses: str) -> str:
    return " and ".join(f"({c})" for c in clauses if c)


def _tokenised(texts: Sequence[str]) -> list[Counter[str]]:
    """Each text's stems and their counts, from FTS5's `porter unicode61` tokenizer."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61')")
        db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
        db.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", enumerate(texts))
        counts: list[Counter[str]] = [Counter() for _ in texts]
        for doc, term in db.execute("SELECT doc, term FROM v"):
            counts[doc][term] += 1
        return counts
    finally:
        db.close()


def term_id(term: str) -> int:
    """A stem's dimension in the sparse vectors (CRC-32: stable across processes)."""
    return zlib.crc32(term.encode("utf-8"))


def chunk_weights(texts: Sequence[str]) -> list[dict[int, float]]:
    """BM25's per-chunk factor of each stem: tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))."""
    out = []
    for counts in _tokenised(texts):
        dl = sum(counts.values())
        norm = K1 * (1 - B + B * dl / AVGDL)
        out.append({term_id(t): tf * (K1 + 1) / (tf + norm) for t, tf in counts.items()})
    return out


def query_terms(query: str) -> list[int]:
    """The question's content words, stemmed as the chunks were, as sparse dimensions."""
    words = content_words(query)
    if not words:
        return []
    return sorted({term_id(t) for t in _tokenised([" ".join(words)])[0]})


def idf(n_chunks: int, df: int) -> float:
    """FTS5's IDF, floored as FTS5 floors it, so a stem in most chunks still counts a little."""
    df = min(df, n_chunks)  # the two are counted a moment apart, around a concurrent write
    return max(math.log((n_chunks - df + 0.5) / (df + 0.5)), 1e-6)


def chunk_rows(put: DocumentWrite, version: int) -> list[dict[str, Any]]:
    d = put.document
    weights = chunk_weights([c.text for c in put.chunks])
    return [
        {
            "doc_id": d.doc_id,
            "version": version,
            "ordinal": chunk.ordinal,
            "start_char": chunk.start,
            "end_char": chunk.end,
            "text": chunk.text,
            "title": d.title[:PART_CHARS],
            "date": d.date,
            "source": d.source,
            "url": d.url,
            "lex": lex or {0: 1e-9},  # Milvus refuses an empty sparse vector
            "dense": np.asarray(vector, dtype=np.float32).tolist(),
        }
        for chunk, vector, lex in zip(put.chunks, put.vectors, weights, strict=True)
    ]


def document_row(put: DocumentWrite, version: int, now: str) -> dict[str, Any]:
    d = put.document
    parts = [d.text[i : i + PART_CHARS] for i in range(0, len(d.text), PART_CHARS)]
    if len(parts) > MAX_PARTS:
        raise IngestError(f"article {d.doc_id} is too long for Milvus ({len(d.text)} chars)")
    return {
        "key": doc_key(d.doc_id),
        "doc_id": d.doc_id,
        "version": version,
        "title": d.title[:PART_CHARS],
        "text_parts": parts,
        "date": d.date,
        "source": d.source,
        "url": d.url,
        "path": d.path,
        "content_hash": put.content_hash,
        "updated_at": now,
        "unused": [0.0, 0.0],
    }


def to_document(row: dict[str, Any]) -> Document:
    return Document(
        row["doc_id"],
        row["title"],
        "".join(row["text_parts"]),
        row.get("date"),
        row.get("source"),
        row.get("url"),
        row.get("path"),
    )


def presence(lex: dict[int, float]) -> list[int]:
    """The stems a chunk holds (not the placeholder of a chunk without words)."""
    return [t for t, w in lex.items() if w > 1e-6]


def create_terms(client: Any, name: str) -> None:
    """Stem -> number of chunks holding it; upserted under the writer's lock."""
    from pymilvus import DataType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    s.add_field("term", DataType.INT64, is_primary=True)
    s.add_field("df", DataType.INT64)
    s.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
    ip = client.prepare_index_params()
    ip.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=s, index_params=ip, consistency_level="Strong")


def create_chunks(client: Any, name: str, dim: int) -> None:
    from pymilvus import DataType

    s = client.create_schema(auto_id=True, enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("doc_id", DataType.VARCHAR, max_length=MAX_VARCHAR)
    for field in ("version", "ordinal", "start_char", "end_char"):
        s.add_field(field, DataType.INT64)
    for field in ("text", "title"):
        s.add_field(field, DataType.VARCHAR, max_length=MAX_VARCHAR)
    for field in ("date", "source", "url"):
        s.add_field(field, DataType.VARCHAR, max_length=MAX_VARCHAR, nullable=True)
    s.add_field("lex", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    ip = client.prepare_index_params()
    # FLAT: exact, like the FAISS backend's IndexFlatIP (milvus-lite builds only FLAT); a
    # server holding millions of chunks would take HNSW here.
    ip.add_index(field_name="dense", index_type="FLAT", metric_type="IP")
    ip.add_index(field_name="lex", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection(
        name,
        schema=s,
        index_params=ip,
        consistency_level="Strong",
        description=f"rag chunks, schema {SCHEMA_VERSION}",
    )


def create_documents(client: Any, name: str) -> None:
    from pymilvus import DataType

    s = client.create_schema(auto_id=False, enable_dynamic_field=False)
    # The key is a digest of the doc id: pymilvus pages through a collection by its primary
    # key in a filter expression it writes itself, which broke on ids holding a backslash.
    s.add_field("key", DataType.VARCHAR, max_length=64, is_primary=True)
    s.add_field("doc_id", DataType.VARCHAR, max_length=MAX_VARCHAR)
    s.add_field("version", DataType.INT64)
    s.add_field("title", DataType.VARCHAR, max_length=MAX_VARCHAR)
    s.add_field(
        "text_parts",
        DataType.ARRAY,
        element_type=DataType.VARCHAR,
        max_capacity=MAX_PARTS,
        max_length=MAX_VARCHAR,
    )
    for field in ("date", "source", "url", "path"):
        s.add_field(field, DataType.VARCHAR, max_length=MAX_VARCHAR, nullable=True)
    s.add_field("content_hash", DataType.VARCHAR, max_length=64)
    s.add_field("updated_at", DataType.VARCHAR, max_length=64)
    s.add_field("unused", DataType.FLOAT_VECTOR, dim=2)  # Milvus wants a vector field
    ip = client.prepare_index_params()
    ip.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
    client.create_collection(
        name,
        schema=s,
        index_params=ip,
        consistency_level="Strong",
        description=f"rag documents, schema {SCHEMA_VERSION}",
    )


def check_schema(client: Any, chunks: str, docs: str, location: str) -> None:
    """Collections made before schema 2 hold unstemmed, per-segment BM25 and unversioned
    chunks: searching them beside new ones would mix two rankings, so they are refused."""
    fields = {f["name"] for f in client.describe_collection(chunks)["fields"]}
    fields |= {"doc_" + f["name"] for f in client.describe_collection(docs)["fields"]}
    if not {"lex", "version", "doc_key", "doc_version"} <= fields:
        raise IndexUnavailableError(
            f"Milvus collections {chunks}/{docs} at {location} predate stemmed BM25 and "
            "versioned articles: drop them (or set RAG_MILVUS_COLLECTION to a new name) "
            "and ingest again"
        )
