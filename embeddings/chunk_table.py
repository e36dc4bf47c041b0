"""Articles, chunks and their BM25 table in one SQLite file (the FAISS backend's metadata)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from embeddings.text import content_words
from embeddings.types import ChunkRecord, DateSourceFilter, Document

SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, title TEXT NOT NULL, date TEXT, source TEXT, url TEXT,
    path TEXT, text TEXT NOT NULL, content_hash TEXT NOT NULL
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL
);
CREATE INDEX chunks_doc ON chunks(doc_id);
CREATE INDEX documents_date ON documents(date);
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, tokenize='porter unicode61');
"""

_DOC_COLUMNS = "doc_id, title, text, date, source, url, path"

# Duplicate stories (embeddings/dedup.py): each article's MinHash and, for a copy, the
# canonical article it repeats. A table of its own, created on the first write after the
# upgrade: an index folder from before it opens as one without duplicates.
DEDUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS doc_dedup (
    doc_id TEXT PRIMARY KEY, duplicate_of TEXT, minhash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS doc_dedup_of ON doc_dedup(duplicate_of);
"""


def fts_query(text: str) -> str:
    """An FTS5 OR-query of the content words, quoted so user text can't inject syntax."""
    return " OR ".join(f'"{t}"' for t in content_words(text))


def filter_sql(flt: DateSourceFilter) -> tuple[str, list[Any]]:
    """A WHERE clause over `documents d` with its parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if flt.date_from:
        clauses.append("d.date >= ?")
        params.append(flt.date_from)
    if flt.date_to:
        clauses.append("d.date <= ?")
        params.append(flt.date_to)
    if flt.as_of:
        clauses.append("(d.date IS NULL OR d.date <= ?)")
        params.append(flt.as_of)
    if flt.sources:
        clauses.append(f"d.source IN ({','.join('?' * len(flt.sources))})")
        params.extend(flt.sources)
    return " AND ".join(clauses), params


def _marks(n: int) -> str:
    return ",".join("?" * n)


class ChunkTable:
    """One SQLite connection over the schema above; callers hold the locks."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self._has_dedup: bool | None = None

    @classmethod
    def new(cls, target: str | Path = ":memory:") -> ChunkTable:
        db = sqlite3.connect(target, check_same_thread=False)
        db.executescript(SCHEMA)
        return cls(db)

    @classmethod
    def open_readonly(cls, path: Path) -> ChunkTable:
        if not path.is_file():
            raise FileNotFoundError(path)
        return cls(sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False))

    def copy_to(self, path: Path) -> ChunkTable:
        """A writable copy in a new file (`sqlite3` online backup)."""
        db = sqlite3.connect(path, check_same_thread=False)
        self.db.backup(db)
        return ChunkTable(db)

    def finish(self) -> None:
        """Leaves the file self-contained (no journal beside it) and closes it."""
        self.db.execute("PRAGMA journal_mode=DELETE")
        self.db.close()

    def close(self) -> None:
        self.db.close()

    # ---- reading -------------------------------------------------------------------------

    def count_chunks(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM chunks").fetchone()[0])

    def count_documents(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM documents").fetchone()[0])

    def content_hashes(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT doc_id, content_hash FROM documents"))

    def document(self, doc_id: str) -> Document | None:
        row = self.db.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents WHERE doc_id = ?", (doc_id,)
        ).fetchone()
        return Document(*row) if row else None

    def documents(self) -> list[Document]:
        rows = self.db.execute(
            f"SELECT {_DOC_COLUMNS} FROM documents ORDER BY date DESC, title"
        ).fetchall()
        return [Document(*r) for r in rows]

    def chunk_ids(self, doc_id: str) -> list[int]:
        rows = self.db.execute("SELECT id FROM chunks WHERE doc_id=? ORDER BY id", (doc_id,))
        return [r[0] for r in rows]

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        rows = self.db.execute(
            "SELECT c.id, c.doc_id, c.ordinal, c.start, c.end, c.text, d.title, d.date, "
            "d.source, d.url FROM chunks c JOIN documents d USING (doc_id) "
            f"WHERE c.id IN ({_marks(len(ids))})",
            list(ids),
        ).fetchall()
        return {r[0]: ChunkRecord(*r) for r in rows}

    def allowed_ids(self, flt: DateSourceFilter) -> list[int]:
        where, params = filter_sql(flt)
        rows = self.db.execute(
            f"SELECT c.id FROM chunks c JOIN documents d USING (doc_id) WHERE {where}", params
        ).fetchall()
        return [r[0] for r in rows]

    def doc_dates(self, ids: Sequence[int]) -> dict[int, str | None]:
        rows = self.db.execute(
            "SELECT c.id, d.date FROM chunks c JOIN documents d USING (doc_id) "
            f"WHERE c.id IN ({_marks(len(ids))})",
            list(ids),
        ).fetchall()
        return dict(rows)

    def lexical_search(
        self, query: str, k: int, flt: DateSourceFilter | None = None
    ) -> list[tuple[int, float]]:
        """BM25 over chunk text (FTS5, Porter stems); scores are positive, higher is better."""
        match = fts_query(query)
        if not match or k <= 0:
            return []
        sql = "SELECT f.rowid, -bm25(chunks_fts) FROM chunks_fts f"
        params: list[Any] = [match]
        if flt:
            # A join, not `rowid IN (SELECT …)`: SQLite ran that form at 950 ms a query on
            # 20,365 chunks (realtimeqa_dev, with as_of) against 5 ms for this one.
            where, extra = filter_sql(flt)
            sql += " JOIN chunks c ON c.id = f.rowid JOIN documents d USING (doc_id)"
            sql += f" WHERE chunks_fts MATCH ? AND {where}"
            params += extra
        else:
            sql += " WHERE chunks_fts MATCH ?"
        sql += " ORDER BY bm25(chunks_fts) LIMIT ?"
        params.append(k)
        return [(int(r), float(s)) for r, s in self.db.execute(sql, params)]

    # ---- writing (inside one transaction of the caller) ----------------------------------

    def put_document(self, doc: Document, digest: str) -> None:
        self.db.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?)",
            (doc.doc_id, doc.title, doc.date, doc.source, doc.url, doc.path, doc.text, digest),
        )
        self._put_dedup(doc)

    def put_chunks(self, rows: Iterable[tuple[int, str, int, int, int, str]]) -> None:
        """Rows of (id, doc_id, ordinal, start, end, text)."""
        rows = list(rows)
        self.db.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?)", rows)
        self.db.executemany(
            "INSERT INTO chunks_fts(rowid, text) VALUES (?,?)", [(r[0], r[5]) for r in rows]
        )

    def remove_document(self, doc_id: str) -> list[int]:
        """Deletes the article and its chunks; returns the chunk ids that were removed."""
        ids = self.chunk_ids(doc_id)
        if ids:
            self.db.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])
            self.db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        self.db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        if self.has_dedup():
            self.db.execute("DELETE FROM doc_dedup WHERE doc_id=?", (doc_id,))
        return ids

    # ---- duplicate stories ---------------------------------------------------------------

    def has_dedup(self) -> bool:
        if self._has_dedup is None:
            row = self.db.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='doc_dedup'"
            ).fetchone()
            self._has_dedup = row is not None
        return self._has_dedup

    def _put_dedup(self, doc: Document) -> None:
        """Every written article gets its MinHash (2-13 ms measured, against far more to embed
        it), so another process or a later ingest with detection on finds it; articles from
        before this table are hashed from their text when an ingest needs them."""
        from embeddings.dedup import signature_bytes

        if not self.has_dedup():
            for statement in filter(str.strip, DEDUP_SCHEMA.split(";")):
                self.db.execute(statement)  # not executescript: that would commit first
            self._has_dedup = True
        self.db.execute(
            "INSERT OR REPLACE INTO doc_dedup VALUES (?,?,?)",
            (doc.doc_id, doc.duplicate_of, signature_bytes(doc.text)),
        )

    def minhashes(self) -> dict[str, tuple[str | None, bytes]]:
        """doc_id -> (the canonical it copies or None, its MinHash bytes)."""
        if not self.has_dedup():
            return {}
        rows = self.db.execute("SELECT doc_id, duplicate_of, minhash FROM doc_dedup")
        return {r[0]: (r[1], bytes(r[2])) for r in rows}

    def duplicate_links(self, doc_ids: Sequence[str] | None = None) -> dict[str, str]:
        """copy doc_id -> canonical doc_id, for every copy (or those copying `doc_ids`)."""
        if not self.has_dedup():
            return {}
        sql = "SELECT doc_id, duplicate_of FROM doc_dedup WHERE duplicate_of IS NOT NULL"
        if doc_ids is None:
            return dict(self.db.execute(sql))
        ids = list(doc_ids)
        return dict(self.db.execute(f"{sql} AND duplicate_of IN ({_marks(len(ids))})", ids))
