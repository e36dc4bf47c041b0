"""Articles, chunks and their BM25 table in one SQLite file, updated in place (MVCC).

Rows carry the generation that added them (`added`) and the one that removed them
(`removed`, NULL while live). A reader at generation G sees, through per-connection TEMP
views named like the tables (`documents`, `chunks`, `chunks_fts`), exactly the rows with
`added <= G` and `removed` NULL or `> G`; a writer adds and marks rows for G + 1 in one
transaction before the manifest names G + 1. So a write costs what it adds, not a copy of
the file (203 MB at a million short synthetic chunks in evals/segment_bench.py; real article
text makes it several times that). A writer killed after its SQLite commit but before the
manifest swap leaves rows no reader can see, which the next writer rolls back
(`rollback_after`). A merge purges rows removed at or before its snapshot (`purge`): a reader
process still on an older generation then misses those rows until its next `refresh`
(the pipeline refreshes before every question).

Why not one SQLite file per segment: FTS5 would compute BM25 per file (per-file IDF), and
SQLite attaches at most 10 files to a connection by default, fewer than a reader's segments.
Here BM25 statistics (document count, average length, IDF) are global but include removed
rows until a merge purges them (up to the merge policy's fifth of the collection) and a
killed write's rows until the next write; which rows can match is exact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from embeddings.text import content_words
from embeddings.types import ChunkRecord, DateSourceFilter, Document

SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT NOT NULL, title TEXT NOT NULL, date TEXT, source TEXT, url TEXT,
    path TEXT, text TEXT NOT NULL, content_hash TEXT NOT NULL,
    added INTEGER NOT NULL DEFAULT 0, removed INTEGER
);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL,
    added INTEGER NOT NULL DEFAULT 0, removed INTEGER
);
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, tokenize='porter unicode61');
"""
INDEXES = """
CREATE INDEX IF NOT EXISTS main.chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS main.documents_date ON documents(date);
CREATE INDEX IF NOT EXISTS main.documents_doc ON documents(doc_id);
CREATE INDEX IF NOT EXISTS main.chunks_added ON chunks(added);
CREATE INDEX IF NOT EXISTS main.chunks_removed ON chunks(removed) WHERE removed IS NOT NULL;
CREATE INDEX IF NOT EXISTS main.documents_added ON documents(added);
CREATE INDEX IF NOT EXISTS main.documents_removed ON documents(removed) WHERE removed IS NOT NULL;
"""
# A format-1 file: documents keyed by doc_id, no generation columns. Rewritten once, in place
# and in one transaction, by the first write (the documents table only; chunks gain columns).
MIGRATE_V1 = """
DROP VIEW IF EXISTS temp.chunks_fts; DROP VIEW IF EXISTS temp.chunks;
DROP VIEW IF EXISTS temp.documents;
ALTER TABLE main.chunks ADD COLUMN added INTEGER NOT NULL DEFAULT 0;
ALTER TABLE main.chunks ADD COLUMN removed INTEGER;
ALTER TABLE main.documents RENAME TO documents_v1;
CREATE TABLE main.documents (
    doc_id TEXT NOT NULL, title TEXT NOT NULL, date TEXT, source TEXT, url TEXT,
    path TEXT, text TEXT NOT NULL, content_hash TEXT NOT NULL,
    added INTEGER NOT NULL DEFAULT 0, removed INTEGER
);
INSERT INTO main.documents SELECT *, 0, NULL FROM main.documents_v1;
DROP TABLE main.documents_v1;
"""

_DOC_COLUMNS = "doc_id, title, text, date, source, url, path"
BUSY_MS = 30_000  # a writer's commit waits for readers' statements (milliseconds each)

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
    """One SQLite connection seeing one generation through TEMP views; callers hold locks."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.generation = -1
        self.versioned = "added" in {r[1] for r in db.execute("PRAGMA main.table_info(chunks)")}
        self._has_dedup: bool | None = None

    @classmethod
    def new(cls, target: str | Path = ":memory:") -> ChunkTable:
        db = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        _run(db, SCHEMA + INDEXES)
        table = cls(db)
        table.view(0)
        return table

    @classmethod
    def open(cls, path: Path) -> ChunkTable:
        """Opens read-write (a reader may have to roll back a killed writer's hot journal)
        but reads only; raises when the file is missing or not a chunk table."""
        if not path.is_file():
            raise FileNotFoundError(path)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        db.execute("SELECT count(*) FROM main.documents").fetchone()  # raises if damaged
        return cls(db)

    def view(self, generation: int) -> None:
        """Points this connection's views at `generation` (a format-1 file: everything)."""
        if generation == self.generation:
            return
        live = (
            f"WHERE added <= {int(generation)} AND (removed IS NULL OR removed > {int(generation)})"
            if self.versioned
            else ""
        )
        _run(  # not executescript: that would commit a writer's open transaction
            self.db,
            "DROP VIEW IF EXISTS temp.chunks_fts; DROP VIEW IF EXISTS temp.chunks;"
            "DROP VIEW IF EXISTS temp.documents;"
            f"CREATE TEMP VIEW documents AS SELECT * FROM main.documents {live};"
            f"CREATE TEMP VIEW chunks AS SELECT * FROM main.chunks {live};"
            "CREATE TEMP VIEW chunks_fts AS SELECT rowid AS rowid, text FROM main.chunks_fts "
            "WHERE rowid IN (SELECT id FROM temp.chunks);",
        )
        self.generation = generation

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
        """BM25 over chunk text (FTS5, Porter stems); scores are positive, higher is better.

        The FTS table holds rows of every generation, so matches join the visible chunks.
        `f.text MATCH` and `f.rank` (= bm25) because the view `chunks_fts` shadows the
        table's own name."""
        match = fts_query(query)
        if not match or k <= 0:
            return []
        sql = "SELECT f.rowid, -f.rank FROM main.chunks_fts f JOIN chunks c ON c.id = f.rowid"
        params: list[Any] = [match]
        if flt:
            # A join, not `rowid IN (SELECT …)`: SQLite ran that form at 950 ms a query on
            # 20,365 chunks (realtimeqa_dev, with as_of) against 5 ms for this one.
            where, extra = filter_sql(flt)
            sql += f" JOIN documents d USING (doc_id) WHERE f.text MATCH ? AND {where}"
            params += extra
        else:
            sql += " WHERE f.text MATCH ?"
        sql += " ORDER BY f.rank LIMIT ?"
        params.append(k)
        return [(int(r), float(s)) for r, s in self.db.execute(sql, params)]

    # ---- writing: one transaction per generation, under the index's writer lock ----------

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def migrate(self) -> None:
        """Gives a format-1 file its generation columns (inside the caller's transaction)."""
        if not self.versioned:
            _run(self.db, MIGRATE_V1 + INDEXES)
            self.versioned = True
            self.generation = -1  # the views must be rebuilt over the new columns

    def rollback_after(self, generation: int) -> None:
        """Undoes the rows of writers killed after their SQLite commit but before their
        manifest swap: nothing past the committed `generation` was ever visible."""
        g = int(generation)
        self.db.execute(
            "DELETE FROM main.chunks_fts WHERE rowid IN "
            "(SELECT id FROM main.chunks WHERE added > ?)",
            (g,),
        )
        self.db.execute("DELETE FROM main.chunks WHERE added > ?", (g,))
        self.db.execute("DELETE FROM main.documents WHERE added > ?", (g,))
        self.db.execute("UPDATE main.chunks SET removed = NULL WHERE removed > ?", (g,))
        self.db.execute("UPDATE main.documents SET removed = NULL WHERE removed > ?", (g,))
        self._drop_orphan_dedup()

    def purge(self, upto: int) -> int:
        """Deletes rows removed at or before generation `upto`; returns how many chunks."""
        self.db.execute(
            "DELETE FROM main.chunks_fts WHERE rowid IN "
            "(SELECT id FROM main.chunks WHERE removed <= ?)",
            (upto,),
        )
        n = self.db.execute("DELETE FROM main.chunks WHERE removed <= ?", (upto,)).rowcount
        self.db.execute("DELETE FROM main.documents WHERE removed <= ?", (upto,))
        self._drop_orphan_dedup()
        return int(n)

    def put_document(self, doc: Document, digest: str, generation: int) -> None:
        self.db.execute(
            "INSERT INTO main.documents (doc_id, title, date, source, url, path, text, "
            "content_hash, added) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                doc.doc_id,
                doc.title,
                doc.date,
                doc.source,
                doc.url,
                doc.path,
                doc.text,
                digest,
                generation,
            ),
        )
        self._put_dedup(doc)

    def put_chunks(
        self, rows: Iterable[tuple[int, str, int, int, int, str]], generation: int
    ) -> None:
        """Rows of (id, doc_id, ordinal, start, end, text)."""
        rows = list(rows)
        self.db.executemany(
            "INSERT INTO main.chunks (id, doc_id, ordinal, start, end, text, added) "
            "VALUES (?,?,?,?,?,?,?)",
            [(*r, generation) for r in rows],
        )
        self.db.executemany(
            "INSERT INTO main.chunks_fts(rowid, text) VALUES (?,?)", [(r[0], r[5]) for r in rows]
        )

    def remove_document(self, doc_id: str, generation: int) -> list[int]:
        """Marks the article and its live chunks removed at `generation`; returns their ids
        (the caller tombstones their vectors)."""
        ids = [
            r[0]
            for r in self.db.execute(
                "SELECT id FROM main.chunks WHERE doc_id=? AND removed IS NULL", (doc_id,)
            )
        ]
        self.db.execute(
            "UPDATE main.chunks SET removed=? WHERE doc_id=? AND removed IS NULL",
            (generation, doc_id),
        )
        self.db.execute(
            "UPDATE main.documents SET removed=? WHERE doc_id=? AND removed IS NULL",
            (generation, doc_id),
        )
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

    def _drop_orphan_dedup(self) -> None:
        """MinHash rows are not versioned: a row outlives its article until no generation
        can see the article any more (purged, or rolled back after a killed writer)."""
        if self.has_dedup():
            self.db.execute(
                "DELETE FROM main.doc_dedup WHERE doc_id NOT IN (SELECT doc_id FROM main.documents)"
            )

    def minhashes(self) -> dict[str, tuple[str | None, bytes]]:
        """doc_id -> (the canonical it copies or None, its MinHash bytes)."""
        if not self.has_dedup():
            return {}
        rows = self.db.execute(  # articles this generation sees, not ones removed since
            "SELECT doc_id, duplicate_of, minhash FROM doc_dedup "
            "WHERE doc_id IN (SELECT doc_id FROM documents)"
        )
        return {r[0]: (r[1], bytes(r[2])) for r in rows}

    def duplicate_links(self, doc_ids: Sequence[str] | None = None) -> dict[str, str]:
        """copy doc_id -> canonical doc_id, for every copy (or those copying `doc_ids`)."""
        if not self.has_dedup():
            return {}
        sql = (
            "SELECT doc_id, duplicate_of FROM doc_dedup WHERE duplicate_of IS NOT NULL "
            "AND doc_id IN (SELECT doc_id FROM documents)"
        )
        if doc_ids is None:
            return dict(self.db.execute(sql))
        ids = list(doc_ids)
        return dict(self.db.execute(f"{sql} AND duplicate_of IN ({_marks(len(ids))})", ids))


def _run(db: sqlite3.Connection, script: str) -> None:
    """Statements one by one, inside whatever transaction is open."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)
