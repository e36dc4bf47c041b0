"""Duplicate-story rows of the chunk table: each article's MinHash and LSH band keys.

Part of `ChunkTable` (a mixin over its connection); not versioned like articles, so the
writer drops a row once no generation sees its article. The detector is embeddings.dedup.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from embeddings.types import Document

# Duplicate stories (embeddings/dedup.py): each article's MinHash and, for a copy, the
# canonical article it repeats; and its LSH band keys (embeddings.dedup.band_keys), found by
# one indexed lookup. Created, with rows for every visible article, by the first write that
# finds them missing: an index folder from before them opens as it was.
DEDUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS doc_dedup (
    doc_id TEXT PRIMARY KEY, duplicate_of TEXT, minhash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS doc_dedup_of ON doc_dedup(duplicate_of);
CREATE TABLE IF NOT EXISTS doc_dedup_bands (
    band INTEGER NOT NULL, key BLOB NOT NULL, doc_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS doc_dedup_bands_key ON doc_dedup_bands(band, key);
CREATE INDEX IF NOT EXISTS doc_dedup_bands_doc ON doc_dedup_bands(doc_id);
"""


def _marks(n: int) -> str:
    return ",".join("?" * n)


class DedupRows:
    """The duplicate-story tables over `db`, which the chunk table owns (callers hold locks)."""

    db: sqlite3.Connection
    _has_dedup: bool | None = None
    _has_bands: bool | None = None

    def has_dedup(self) -> bool:
        if self._has_dedup is None:
            self._has_dedup = self._has_table("doc_dedup")
        return self._has_dedup

    def has_bands(self) -> bool:
        """Whether every article has its LSH band rows (embeddings.dedup.band_keys)."""
        if self._has_bands is None:
            self._has_bands = self.has_dedup() and self._has_table("doc_dedup_bands")
        return self._has_bands

    def _has_table(self, name: str) -> bool:
        sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
        return self.db.execute(sql, (name,)).fetchone() is not None

    def _doc_ids(self, sql: str, generation: int) -> list[str]:
        if not self.has_dedup():
            return []
        return [r[0] for r in self.db.execute(sql, (generation,))]

    def _put_dedup(self, doc: Document) -> None:
        """Every written article gets its MinHash (2-13 ms measured, against far more to embed
        it) and its band rows, so another process or a later ingest with detection on finds
        it; articles from before these tables get theirs in the write that creates them."""
        from embeddings.dedup import signature_bytes

        if not self.has_bands():
            self._create_dedup()
        sig = signature_bytes(doc.text)
        self.db.execute(
            "INSERT OR REPLACE INTO doc_dedup VALUES (?,?,?)", (doc.doc_id, doc.duplicate_of, sig)
        )
        self._put_bands(doc.doc_id, sig)

    def _create_dedup(self) -> None:
        """Both tables, and the rows of the articles this generation sees (inside the write's
        transaction, so a killed write leaves none of it): one pass over the index, once."""
        from embeddings.dedup import signature_bytes

        for statement in filter(str.strip, DEDUP_SCHEMA.split(";")):
            self.db.execute(statement)  # not executescript: that would commit first
        rows = self.db.execute(
            "SELECT v.doc_id, v.text, d.minhash FROM documents v "
            "LEFT JOIN main.doc_dedup d USING (doc_id)"
        ).fetchall()
        done: set[str] = set()  # a format-1 file just migrated has no views: all rows
        for doc_id, text, blob in rows:
            if doc_id in done:
                continue
            done.add(doc_id)
            if blob is None:  # from before duplicate detection: never a copy
                blob = signature_bytes(text)
                self.db.execute("INSERT INTO doc_dedup VALUES (?,NULL,?)", (doc_id, blob))
            self._put_bands(doc_id, bytes(blob))
        self._has_dedup = self._has_bands = True

    def _put_bands(self, doc_id: str, sig: bytes) -> None:
        from embeddings.dedup import band_keys

        self.db.execute("DELETE FROM main.doc_dedup_bands WHERE doc_id = ?", (doc_id,))
        self.db.executemany(
            "INSERT INTO main.doc_dedup_bands VALUES (?,?,?)",
            [(band, key, doc_id) for band, key in band_keys(sig)],
        )

    def _drop_orphan_dedup(self, doc_ids: Sequence[str]) -> None:
        """MinHash rows are not versioned: a row outlives its article until no generation
        can see the article any more (purged, or rolled back after a killed writer). Only
        `doc_ids` (those rows just went) are checked, so a write stays O(new)."""
        if not self.has_dedup() or not doc_ids:
            return
        ids = sorted(set(doc_ids))
        tables = ["doc_dedup", "doc_dedup_bands"] if self.has_bands() else ["doc_dedup"]
        for name in tables:
            self.db.executemany(
                f"DELETE FROM main.{name} WHERE doc_id = ? "
                "AND NOT EXISTS (SELECT 1 FROM main.documents WHERE doc_id = ?)",
                [(i, i) for i in ids],
            )

    def dedup_candidates(self, keys: Sequence[tuple[int, bytes]]) -> dict[str, str | None]:
        """Visible articles sharing a (band, key) with `keys`: doc_id -> canonical or None."""
        if not keys:
            return {}
        rows = self.db.execute(  # CROSS JOIN: SQLite scanned the bands table for `IN (VALUES)`
            f"WITH q(band, key) AS (VALUES {','.join(['(?,?)'] * len(keys))}) "
            "SELECT DISTINCT b.doc_id, d.duplicate_of FROM q CROSS JOIN main.doc_dedup_bands b "
            "ON b.band = q.band AND b.key = q.key JOIN main.doc_dedup d ON d.doc_id = b.doc_id "
            "WHERE EXISTS (SELECT 1 FROM documents v WHERE v.doc_id = b.doc_id)",
            [x for key in keys for x in key],
        )
        return dict(rows)

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
        sql = (  # EXISTS, not IN (SELECT …): that materialised every visible doc_id per call
            "SELECT doc_id, duplicate_of FROM doc_dedup x WHERE duplicate_of IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM documents v WHERE v.doc_id = x.doc_id)"
        )
        if doc_ids is None:
            return dict(self.db.execute(sql))
        ids = list(doc_ids)
        return dict(self.db.execute(f"{sql} AND duplicate_of IN ({_marks(len(ids))})", ids))
