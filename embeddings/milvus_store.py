"""The shared backend: the whole index in Milvus, so API replicas hold no index state.

Two collections (names from `RAG_MILVUS_COLLECTION`, default prefix `rag`):

- `<prefix>_chunks`: one row per chunk with its text, doc id, title, date, source, url,
  offsets, the dense vector (inner product on normalised vectors = cosine) and a sparse
  vector filled by Milvus's own BM25 function over the text, so dense search, BM25 search,
  date/source filters and deletes all run inside Milvus.
- `<prefix>_documents`: one row per article (full text, hash for re-ingest); Milvus wants a
  vector in every collection, so it carries a 2-d zero vector it never searches.

Milvus has no transactions. A write inserts the new chunks first (stamped with the write's
time), then upserts the article rows, then deletes the article's chunks with an older stamp.
A crash in between leaves an article with its old and new chunks both searchable until the
next ingest of it, never with none; concurrent writers of one article end with the newest
chunks. Deletion removes chunks before the article row, so a crash leaves a listed article
without chunks, which a repeated delete removes. Readers may see that interval too.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from embeddings.errors import IndexUnavailableError, IngestError
from embeddings.store import Store, StoreConfig
from embeddings.text import content_words
from embeddings.types import ChunkRecord, DateSourceFilter, Document, DocumentWrite

_MAX_VARCHAR = 65535  # bytes, Milvus's limit for one VARCHAR value
_PART_CHARS = 16000  # 16000 chars of UTF-8 fit in 65535 bytes whatever the script
_MAX_PARTS = 4096  # Milvus's limit for one ARRAY field: articles up to 65 M characters
_BATCH = 512  # rows per insert: well under the 64 MB gRPC message limit at 384 dims
_PAGE = 4096  # rows per page when reading everything (query's own cap is 16384)
_CHUNK_FIELDS = ["id", "doc_id", "ordinal", "start_char", "end_char", "text", "title", "date"]
_CHUNK_FIELDS += ["source", "url"]
_DOC_FIELDS = ["doc_id", "title", "text_parts", "date", "source", "url", "path"]

# BM25 tokenisation meant to match the FAISS backend's FTS5 `porter unicode61`: lower case,
# English (Snowball) stems; the stop words are dropped from the query by `content_words`.
# milvus-lite 3.2.2 accepts the stemmer but does not apply it ("bridges" does not find
# "bridge"; run_analyzer is unimplemented there), so on lite BM25 matches whole words.
ANALYZER = {
    "tokenizer": "standard",
    "filter": ["lowercase", {"type": "stemmer", "language": "english"}],
}

T = TypeVar("T")


def literal(value: Any) -> str:
    """A Milvus expression literal: JSON's escaping is the grammar's for strings and lists."""
    return json.dumps(value, ensure_ascii=False)


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


def _and(*clauses: str) -> str:
    return " and ".join(f"({c})" for c in clauses if c)


def _milvus_errors(method: Callable[..., T]) -> Callable[..., T]:
    """Milvus failures become one-line `IndexUnavailableError`s, not gRPC tracebacks."""

    @functools.wraps(method)
    def wrapper(self: MilvusStore, *args: Any, **kwargs: Any) -> T:
        from pymilvus.exceptions import MilvusException

        try:
            return method(self, *args, **kwargs)
        except MilvusException as exc:
            raise IndexUnavailableError(
                f"Milvus at {self.location} failed: {getattr(exc, 'message', exc)}"
            ) from None

    return wrapper


class MilvusStore(Store):
    kind = "milvus"

    def __init__(self, config: StoreConfig, path: Path) -> None:
        from pymilvus import MilvusClient

        if config.milvus_uri:
            uri = config.milvus_uri
        else:  # milvus-lite in the index folder
            path.mkdir(parents=True, exist_ok=True)
            uri = str(path / "milvus.db")
        self.location = uri
        self.chunks_name = f"{config.milvus_collection}_chunks"
        self.docs_name = f"{config.milvus_collection}_documents"
        self._write_lock = threading.Lock()
        self._ready = False
        try:
            self.client = MilvusClient(uri, token=config.milvus_token or "")
        except Exception as exc:  # grpc, milvus-lite start-up, bad URI: all one message
            raise IndexUnavailableError(
                f"cannot open Milvus at {uri} ({getattr(exc, 'message', exc)}); "
                "check RAG_MILVUS_URI"
            ) from None

    # ---- collections ---------------------------------------------------------------------

    def _exists(self) -> bool:
        names = (self.chunks_name, self.docs_name)
        if not self._ready and all(self.client.has_collection(n) for n in names):
            for name in names:
                self.client.load_collection(name)
            self._ready = True
        return self._ready

    def _create(self, dim: int) -> None:
        from pymilvus import DataType, Function, FunctionType

        client = self.client
        if not client.has_collection(self.chunks_name):
            s = client.create_schema(auto_id=True, enable_dynamic_field=False)
            s.add_field("id", DataType.INT64, is_primary=True)
            s.add_field("doc_id", DataType.VARCHAR, max_length=_MAX_VARCHAR)
            for name in ("ordinal", "start_char", "end_char", "stamp"):
                s.add_field(name, DataType.INT64)
            s.add_field(
                "text",
                DataType.VARCHAR,
                max_length=_MAX_VARCHAR,
                enable_analyzer=True,
                analyzer_params=ANALYZER,
            )
            s.add_field("title", DataType.VARCHAR, max_length=_MAX_VARCHAR)
            for name in ("date", "source", "url"):
                s.add_field(name, DataType.VARCHAR, max_length=_MAX_VARCHAR, nullable=True)
            s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
            s.add_function(
                Function(
                    name="text_bm25",
                    function_type=FunctionType.BM25,
                    input_field_names=["text"],
                    output_field_names=["sparse"],
                )
            )
            ip = client.prepare_index_params()
            # FLAT: exact, like the FAISS backend's IndexFlatIP (milvus-lite builds only
            # FLAT); a server holding millions of chunks would take HNSW here.
            ip.add_index(field_name="dense", index_type="FLAT", metric_type="IP")
            ip.add_index(
                field_name="sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25"
            )
            client.create_collection(
                self.chunks_name, schema=s, index_params=ip, consistency_level="Strong"
            )
        if not client.has_collection(self.docs_name):
            s = client.create_schema(auto_id=False, enable_dynamic_field=False)
            s.add_field("doc_id", DataType.VARCHAR, max_length=_MAX_VARCHAR, is_primary=True)
            s.add_field("title", DataType.VARCHAR, max_length=_MAX_VARCHAR)
            s.add_field(
                "text_parts",
                DataType.ARRAY,
                element_type=DataType.VARCHAR,
                max_capacity=_MAX_PARTS,
                max_length=_MAX_VARCHAR,
            )
            for name in ("date", "source", "url", "path"):
                s.add_field(name, DataType.VARCHAR, max_length=_MAX_VARCHAR, nullable=True)
            s.add_field("content_hash", DataType.VARCHAR, max_length=64)
            s.add_field("updated_at", DataType.VARCHAR, max_length=64)
            s.add_field("unused", DataType.FLOAT_VECTOR, dim=2)
            ip = client.prepare_index_params()
            ip.add_index(field_name="unused", index_type="FLAT", metric_type="L2")
            client.create_collection(
                self.docs_name, schema=s, index_params=ip, consistency_level="Strong"
            )
        if not self._exists():
            raise IndexUnavailableError(f"Milvus at {self.location}: collections did not load")
        if self.dim != dim:
            raise IndexUnavailableError(
                f"Milvus collection {self.chunks_name} at {self.location} holds {self.dim}-d "
                f"vectors, the embedder makes {dim}-d ones; use another RAG_MILVUS_COLLECTION"
            )

    def _all(self, name: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every matching row, page by page (a single query stops at 16384 rows)."""
        quiet = logging.getLogger("pymilvus")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # milvus-lite: "failed to get mvccTs", harmless
        try:
            it = self.client.query_iterator(
                name, batch_size=_PAGE, filter=expr, output_fields=fields
            )
        finally:
            quiet.setLevel(level)
        try:
            while rows := it.next():
                yield from rows
        finally:
            it.close()

    def _count(self, name: str) -> int:
        rows = self.client.query(name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    # ---- lifecycle -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Nothing to do: every read asks Milvus, with strong consistency."""

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        # Within a process only: Milvus has no locks; see the module docstring for why
        # concurrent writers from several replicas still end consistent.
        with self._write_lock:
            yield

    @_milvus_errors
    def write(self, puts: Sequence[DocumentWrite], deletes: Sequence[str] = ()) -> None:
        if puts:
            self._create(int(puts[0].vectors.shape[1]))
            self._put(puts)
        if deletes and self._exists():
            ids = literal(list(deletes))
            self.client.delete(self.chunks_name, filter=f"doc_id in {ids}")
            self.client.delete(self.docs_name, filter=f"doc_id in {ids}")
        if self._exists():
            # Seal what was written so Milvus builds its indexes: on milvus-lite 3.2.2 a
            # search over 5,000 unsealed chunks took 520 ms (dense) and 1.9 s (BM25), after
            # flush 42 ms and 26 ms (evals/store_bench.py's data, a shared busy machine).
            self.client.flush(self.chunks_name)
            self.client.flush(self.docs_name)

    def _put(self, puts: Sequence[DocumentWrite]) -> None:
        stamp = time.time_ns()
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        rows: list[dict[str, Any]] = []
        docs: list[dict[str, Any]] = []
        for put in puts:
            d = put.document
            parts = [d.text[i : i + _PART_CHARS] for i in range(0, len(d.text), _PART_CHARS)]
            if len(parts) > _MAX_PARTS:
                raise IngestError(
                    f"article {d.doc_id} is too long for Milvus ({len(d.text)} chars)"
                )
            meta = {"date": d.date, "source": d.source, "url": d.url}
            for chunk, vector in zip(put.chunks, put.vectors, strict=True):
                rows.append(
                    {
                        "doc_id": d.doc_id,
                        "ordinal": chunk.ordinal,
                        "start_char": chunk.start,
                        "end_char": chunk.end,
                        "stamp": stamp,
                        "text": chunk.text,
                        "title": d.title[:_PART_CHARS],
                        "dense": np.asarray(vector, dtype=np.float32).tolist(),
                        **meta,
                    }
                )
            docs.append(
                {
                    "doc_id": d.doc_id,
                    "title": d.title[:_PART_CHARS],
                    "text_parts": parts,
                    "path": d.path,
                    "content_hash": put.content_hash,
                    "updated_at": now,
                    "unused": [0.0, 0.0],
                    **meta,
                }
            )
        for i in range(0, len(rows), _BATCH):
            self.client.insert(self.chunks_name, rows[i : i + _BATCH])
        for i in range(0, len(docs), _BATCH // 8):
            self.client.upsert(self.docs_name, docs[i : i + _BATCH // 8])
        replaced = literal([p.document.doc_id for p in puts])
        self.client.delete(self.chunks_name, filter=f"doc_id in {replaced} and stamp < {stamp}")

    def close(self) -> None:
        self.client.close()

    # ---- counts and articles -------------------------------------------------------------

    @property
    def dim(self) -> int | None:
        if not self._exists():
            return None
        for f in self.client.describe_collection(self.chunks_name)["fields"]:
            if f["name"] == "dense":
                return int(f["params"]["dim"])
        return None

    @_milvus_errors
    def count(self) -> int:
        return self._count(self.chunks_name) if self._exists() else 0

    @_milvus_errors
    def count_documents(self) -> int:
        return self._count(self.docs_name) if self._exists() else 0

    @_milvus_errors
    def updated_at(self) -> str | None:
        if not self._exists():
            return None
        return max(
            (r["updated_at"] for r in self._all(self.docs_name, "", ["updated_at"])), default=None
        )

    @_milvus_errors
    def content_hashes(self) -> dict[str, str]:
        if not self._exists():
            return {}
        rows = self._all(self.docs_name, "", ["doc_id", "content_hash"])
        return {r["doc_id"]: r["content_hash"] for r in rows}

    @staticmethod
    def _document(row: dict[str, Any]) -> Document:
        return Document(
            row["doc_id"],
            row["title"],
            "".join(row["text_parts"]),
            row.get("date"),
            row.get("source"),
            row.get("url"),
            row.get("path"),
        )

    @_milvus_errors
    def document(self, doc_id: str) -> Document | None:
        if not self._exists():
            return None
        rows = self.client.query(
            self.docs_name, filter=f"doc_id == {literal(doc_id)}", output_fields=_DOC_FIELDS
        )
        return self._document(rows[0]) if rows else None

    @_milvus_errors
    def documents(self) -> list[Document]:
        if not self._exists():
            return []
        docs = [self._document(r) for r in self._all(self.docs_name, "", _DOC_FIELDS)]
        docs.sort(key=lambda d: d.title)  # then newest first, undated last (SQLite's order)
        docs.sort(key=lambda d: d.date or "", reverse=True)
        return docs

    # ---- chunks and search ---------------------------------------------------------------

    @_milvus_errors
    def chunk_ids(self, doc_id: str) -> list[int]:
        if not self._exists():
            return []
        rows = self._all(self.chunks_name, f"doc_id == {literal(doc_id)}", ["id"])
        return sorted(int(r["id"]) for r in rows)

    @_milvus_errors
    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        if not ids or not self._exists():
            return {}
        rows = self.client.query(
            self.chunks_name,
            filter=f"id in {literal([int(i) for i in ids])}",
            output_fields=_CHUNK_FIELDS,
        )
        return {int(r["id"]): ChunkRecord(*(r.get(f) for f in _CHUNK_FIELDS)) for r in rows}

    @_milvus_errors
    def doc_dates(self, ids: Sequence[int]) -> dict[int, str | None]:
        if not ids or not self._exists():
            return {}
        rows = self.client.query(
            self.chunks_name,
            filter=f"id in {literal([int(i) for i in ids])}",
            output_fields=["id", "date"],
        )
        return {int(r["id"]): r.get("date") for r in rows}

    @_milvus_errors
    def allowed_ids(self, flt: DateSourceFilter) -> list[int]:
        if not self._exists():
            return []
        return [int(r["id"]) for r in self._all(self.chunks_name, filter_expr(flt), ["id"])]

    @_milvus_errors
    def search(
        self,
        vector: np.ndarray,
        k: int,
        allowed: Sequence[int] | None = None,
        flt: DateSourceFilter | None = None,
    ) -> list[tuple[int, float]]:
        if k <= 0 or (allowed is not None and not len(allowed)) or not self._exists():
            return []
        ids = "" if allowed is None else f"id in {literal([int(i) for i in allowed])}"
        hits = self.client.search(
            self.chunks_name,
            data=[np.asarray(vector, dtype=np.float32).ravel().tolist()],
            anns_field="dense",
            filter=_and(filter_expr(flt), ids),
            limit=min(k, 16384),
            output_fields=["id"],
            search_params={"metric_type": "IP"},
        )
        return [(int(h["id"]), float(h["distance"])) for h in hits[0]]

    @_milvus_errors
    def lexical_search(
        self, query: str, k: int, flt: DateSourceFilter | None = None
    ) -> list[tuple[int, float]]:
        words = content_words(query)
        if k <= 0 or not words or not self._exists():
            return []
        hits = self.client.search(
            self.chunks_name,
            data=[" ".join(words)],
            anns_field="sparse",
            filter=filter_expr(flt),
            limit=min(k, 16384),
            output_fields=["id"],
            search_params={"metric_type": "BM25"},
        )
        # milvus-lite 3.2.2 reports BM25 as a negative distance (best first), a server as a
        # positive score: the magnitude is the BM25 score either way.
        return [(int(h["id"]), abs(float(h["distance"]))) for h in hits[0]]
