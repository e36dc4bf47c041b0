"""The shared backend: the whole index in Milvus, so API replicas hold no index state.

Two collections (names from `RAG_MILVUS_COLLECTION`, default prefix `rag`; schema and BM25
in `embeddings.milvus_schema`):

- `<prefix>_chunks`: one row per chunk with its text, doc id, the version of the article it
  belongs to, title, date, source, url, offsets, the dense vector (inner product on
  normalised vectors = cosine) and a sparse vector of BM25 term weights, so dense search,
  BM25 search, date/source filters and deletes all run inside Milvus.
- `<prefix>_documents`: one row per article (full text, hash for re-ingest) naming its live
  version.

Milvus has no transactions, so an article is replaced by versions: a write inserts the new
chunks under a new version, then upserts the article row naming that version (the one
atomic step: a single row), then deletes the older versions' chunks. Every read keeps only
chunks of the version the article row names, so a reader sees an article's old chunks or
its new ones, never both and never neither; a crash before the upsert leaves unlisted new
chunks that no reader returns and the next write of the article deletes. Deletion removes
chunks before the article row, so a crash leaves a listed article without chunks, which a
repeated delete removes. Concurrent writes of one article from two processes end with the
later upsert's version live; if that is the older version, its chunks may already be gone.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from embeddings import milvus_schema as schema
from embeddings.errors import IndexUnavailableError
from embeddings.milvus_schema import and_, doc_key, filter_expr, literal
from embeddings.store import Store, StoreConfig
from embeddings.types import ChunkRecord, DateSourceFilter, Document, DocumentWrite

_BATCH = 512  # rows per insert: well under the 64 MB gRPC message limit at 384 dims
_PAGE = 4096  # rows per page when reading everything (query's own cap is 16384)
_TRIES = 3  # searches per question while writers keep superseding what it found
_UPSERT_TRIES, _UPSERT_WAIT_S = 5, 0.02  # an article row missing mid-upsert: read again
# Seconds an article's replaced chunks stay fetchable after its row names the new version:
# a question that searched just before the swap still fetches the texts of its hits.
GRACE_S = 0.5
_CHUNK_FIELDS = ["id", "doc_id", "ordinal", "start_char", "end_char", "text", "title", "date"]
_CHUNK_FIELDS += ["source", "url"]
_DOC_FIELDS = ["doc_id", "title", "text_parts", "date", "source", "url", "path"]

T = TypeVar("T")


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
        self.terms_name = f"{config.milvus_collection}_terms"
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
        if self._ready:
            return True
        if not all(self.client.has_collection(n) for n in (self.chunks_name, self.docs_name)):
            return False
        schema.check_schema(self.client, self.chunks_name, self.docs_name, self.location)
        # `_create` makes the terms collection first, so it exists once the other two do.
        if self.client.has_collection(self.terms_name):
            for name in (self.terms_name, self.chunks_name, self.docs_name):
                self.client.load_collection(name)
            self._ready = True
        return self._ready

    def _create(self, dim: int) -> None:
        if not self.client.has_collection(self.terms_name):
            schema.create_terms(self.client, self.terms_name)
        if not self.client.has_collection(self.chunks_name):
            schema.create_chunks(self.client, self.chunks_name, dim)
        if not self.client.has_collection(self.docs_name):
            schema.create_documents(self.client, self.docs_name)
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

    def _versions(
        self, doc_ids: Sequence[str] | None = None, *, settle: bool = False
    ) -> dict[str, int]:
        """doc_id -> live version, of the given articles or of all. `settle`: read again a
        moment later while a row is missing. milvus-lite upserts an article row as a delete
        then an insert, and a row read in between is missing although the article is not
        deleted (a reader then saw none of its chunks, tests/test_milvus.py under load); a
        deleted article's chunks go before its row, so a row still missing means deleted."""
        live = self._read_versions(doc_ids)
        for _ in range(_UPSERT_TRIES if settle and doc_ids else 0):
            if set(doc_ids or ()) <= set(live):
                break
            time.sleep(_UPSERT_WAIT_S)
            live = self._read_versions(doc_ids)
        return live

    def _read_versions(self, doc_ids: Sequence[str] | None) -> dict[str, int]:
        if doc_ids is None:
            rows: Any = self._all(self.docs_name, "", ["doc_id", "version"])
        elif not doc_ids:
            return {}
        else:
            keys = literal([doc_key(d) for d in set(doc_ids)])
            rows = self.client.query(
                self.docs_name, filter=f"key in {keys}", output_fields=["doc_id", "version"]
            )
        return {r["doc_id"]: int(r["version"]) for r in rows}

    def _live(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        """The rows of live versions, read after the rows themselves, and an expression that
        excludes the superseded ones found (empty when there were none)."""
        live = self._versions([r["doc_id"] for r in rows], settle=True)
        kept = [r for r in rows if live.get(r["doc_id"]) == int(r["version"])]
        stale = {(r["doc_id"], int(r["version"])) for r in rows} - {
            (r["doc_id"], int(r["version"])) for r in kept
        }
        expr = " or ".join(f"(doc_id == {literal(d)} and version == {v})" for d, v in stale)
        return kept, f"not ({expr})" if expr else ""

    # ---- lifecycle -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Nothing to do: every read asks Milvus, with strong consistency."""

    @contextlib.contextmanager
    def writer(self) -> Iterator[None]:
        # Within a process only: Milvus has no locks; see the module docstring for what
        # concurrent writers from several replicas end with.
        with self._write_lock:
            yield

    @_milvus_errors
    def write(self, puts: Sequence[DocumentWrite], deletes: Sequence[str] = ()) -> None:
        if puts:
            self._create(int(puts[0].vectors.shape[1]))
            self._put(puts)
        if deletes and self._exists():
            self._delete_chunks(f"doc_id in {literal(list(deletes))}")
            keys = literal([doc_key(d) for d in deletes])
            self.client.delete(self.docs_name, filter=f"key in {keys}")
        if self._exists():
            # Seal what was written so Milvus builds its indexes: on milvus-lite 3.2.2 a
            # search over 5,000 unsealed chunks took 520 ms (dense) and 1.9 s (BM25), after
            # flush 42 ms and 26 ms (evals/store_bench.py's data, a shared busy machine).
            self.client.flush(self.chunks_name)
            self.client.flush(self.docs_name)
            self.client.flush(self.terms_name)

    def _put(self, puts: Sequence[DocumentWrite]) -> None:
        version = time.time_ns()
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        docs = [schema.document_row(put, version, now) for put in puts]  # checks lengths first
        rows = [row for put in puts for row in schema.chunk_rows(put, version)]
        replaced = [p.document.doc_id for p in puts]
        had_old = bool(self._versions(replaced))
        for i in range(0, len(rows), _BATCH):
            self.client.insert(self.chunks_name, rows[i : i + _BATCH])
        for i in range(0, len(docs), _BATCH // 8):
            self.client.upsert(self.docs_name, docs[i : i + _BATCH // 8])
        self._count_terms(Counter(t for row in rows for t in schema.presence(row["lex"])))
        if had_old:
            time.sleep(GRACE_S)
        self._delete_chunks(f"doc_id in {literal(replaced)} and version < {version}")

    def _delete_chunks(self, expr: str) -> None:
        gone = Counter(
            t for r in self._all(self.chunks_name, expr, ["lex"]) for t in schema.presence(r["lex"])
        )
        self.client.delete(self.chunks_name, filter=expr)
        self._count_terms(gone, -1)

    def _count_terms(self, counts: Counter[int], sign: int = 1) -> None:
        """Adds `counts` to the stems' document frequencies. Read-modify-write under this
        process's writer lock: two replicas writing at one moment can lose one's counts for
        the stems both touched, which nudges those stems' IDF and nothing else."""
        terms = sorted(counts)
        for i in range(0, len(terms), schema.PAGE):
            page = terms[i : i + schema.PAGE]
            df = self._df(page)
            rows = [
                {"term": t, "df": max(df.get(t, 0) + sign * counts[t], 0), "unused": [0.0, 0.0]}
                for t in page
            ]
            self.client.upsert(self.terms_name, rows)

    def _df(self, terms: Sequence[int]) -> dict[int, int]:
        rows = self.client.query(
            self.terms_name,
            filter=f"term in {literal(list(terms))}",
            output_fields=["term", "df"],
            limit=len(terms),
        )
        return {int(r["term"]): int(r["df"]) for r in rows}

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

    @_milvus_errors
    def document(self, doc_id: str) -> Document | None:
        if not self._exists():
            return None
        rows = self.client.query(
            self.docs_name, filter=f"key == {literal(doc_key(doc_id))}", output_fields=_DOC_FIELDS
        )
        return schema.to_document(rows[0]) if rows else None

    @_milvus_errors
    def documents(self) -> list[Document]:
        if not self._exists():
            return []
        docs = [schema.to_document(r) for r in self._all(self.docs_name, "", _DOC_FIELDS)]
        docs.sort(key=lambda d: d.title)  # then newest first, undated last (SQLite's order)
        docs.sort(key=lambda d: d.date or "", reverse=True)
        return docs

    @_milvus_errors
    def sources(self) -> set[str]:
        # Every article row is live (one row per article, naming its live version), so the
        # source field alone answers; reading whole rows took 0.50 s of a 0.57 s filtered
        # search on milvus-lite (evals/store_bench.py's data).
        if not self._exists():
            return set()
        return {s for r in self._all(self.docs_name, "", ["source"]) if (s := r.get("source"))}

    # ---- chunks and search ---------------------------------------------------------------

    @_milvus_errors
    def chunk_ids(self, doc_id: str) -> list[int]:
        if not self._exists():
            return []
        version = self._versions([doc_id], settle=True).get(doc_id)
        if version is None:
            return []
        expr = f"doc_id == {literal(doc_id)} and version == {version}"
        return sorted(int(r["id"]) for r in self._all(self.chunks_name, expr, ["id"]))

    @_milvus_errors
    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        """The chunks still stored: a replaced version's stay `GRACE_S` after the swap."""
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
        live = self._versions()
        rows = self._all(self.chunks_name, filter_expr(flt), ["id", "doc_id", "version"])
        return [int(r["id"]) for r in rows if live.get(r["doc_id"]) == int(r["version"])]

    def _search(self, data: Any, field: str, metric: str, k: int, expr: str) -> list[Any]:
        """Top-k of live versions: hits of a version superseded (or deleted) since the
        search are dropped and the search repeated without them."""
        hits: list[Any] = []
        for _ in range(_TRIES):
            found = self.client.search(
                self.chunks_name,
                data=[data],
                anns_field=field,
                filter=expr,
                limit=min(k, 16384),
                output_fields=["doc_id", "version"],
                search_params={"metric_type": metric},
            )[0]
            rows = [{"id": h["id"], "distance": h["distance"], **h["entity"]} for h in found]
            hits, exclude = self._live(rows)
            if not exclude:
                break
            expr = and_(expr, exclude)
        return hits

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
        data = np.asarray(vector, dtype=np.float32).ravel().tolist()
        hits = self._search(data, "dense", "IP", k, and_(filter_expr(flt), ids))
        return [(int(h["id"]), float(h["distance"])) for h in hits]

    @_milvus_errors
    def lexical_search(
        self, query: str, k: int, flt: DateSourceFilter | None = None
    ) -> list[tuple[int, float]]:
        terms = schema.query_terms(query)
        if k <= 0 or not terms or not self._exists():
            return []
        # Document frequencies over the whole collection, as FTS5's bm25() takes them.
        n, df = self._count(self.chunks_name), self._df(terms)
        # A stem missing from the counts is weighed as the rarest: milvus-lite's upsert of a
        # count row is a delete then an insert, and a question read between the two found no
        # count for any of its stems and so no article at all (tests/test_milvus.py, under
        # load). A stem no chunk holds matches nothing either way.
        weights = {t: schema.idf(n, df.get(t) or 1) for t in terms}
        hits = self._search(weights, "lex", "IP", k, filter_expr(flt))
        return [(int(h["id"]), float(h["distance"])) for h in hits]
