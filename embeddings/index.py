"""The on-disk index: FAISS vectors plus chunk metadata and a BM25 table in SQLite.

Layout of an index directory::

    manifest.json        format, version, current generation, id counter (replaced atomically)
    gen-000007/          the current generation: vectors.faiss + chunks.sqlite
    .lock                serialises writers across processes

Every change writes a complete new generation beside the current one and then swaps
`manifest.json` with one `os.replace`, so a crash at any point leaves the previous index
readable. Chunk ids come from a counter kept in the manifest and are never reused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.chunking import chunk_document
from embeddings.embedder import Embedder
from embeddings.errors import IndexUnavailableError
from embeddings.loaders import Skipped
from embeddings.store import FaissStore
from embeddings.types import Chunk, Document

FORMAT = "rag-index"
VERSION = 1
MANIFEST = "manifest.json"

_SCHEMA = """
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

_WORD = re.compile(r"[A-Za-z0-9]+")
STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "did",
        "does",
        "tell",
        "say",
        "said",
        "says",
        "according",
    ]
)


def rebuild_hint(path: Path) -> str:
    return f"delete {path} and rebuild it with `rag ingest PATH --index {path}`"


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk with the metadata of its article, as retrieval returns it."""

    id: int
    doc_id: str
    ordinal: int
    start: int
    end: int
    text: str
    title: str
    date: str | None
    source: str | None
    url: str | None


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    chunks_added: int = 0

    def summary(self) -> str:
        text = (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.unchanged)} unchanged, {len(self.skipped)} skipped "
            f"({self.chunks_added} chunks embedded)"
        )
        return text


@dataclass(frozen=True)
class IndexStats:
    documents: int
    chunks: int
    updated_at: str | None
    path: str


@dataclass(frozen=True)
class DateSourceFilter:
    """Restricts search to articles by date range (inclusive, ISO) and source names."""

    date_from: str | None = None
    date_to: str | None = None
    sources: tuple[str, ...] = ()

    def sql(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if self.date_from:
            clauses.append("d.date >= ?")
            params.append(self.date_from)
        if self.date_to:
            clauses.append("d.date <= ?")
            params.append(self.date_to)
        if self.sources:
            clauses.append(f"d.source IN ({','.join('?' * len(self.sources))})")
            params.extend(self.sources)
        return " AND ".join(clauses), params

    def __bool__(self) -> bool:
        return bool(self.date_from or self.date_to or self.sources)


def content_hash(doc: Document) -> str:
    payload = json.dumps([doc.title, doc.date, doc.source, doc.url, doc.text])
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def fts_query(text: str) -> str:
    """An FTS5 OR-query of the content words, quoted so user text can't inject syntax."""
    words = [w.lower() for w in _WORD.findall(text)]
    terms = dict.fromkeys(w for w in words if w not in STOPWORDS and len(w) > 1)
    return " OR ".join(f'"{t}"' for t in terms)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


class Index:
    """One index directory, loaded in memory for search and rewritten whole on change."""

    def __init__(self, path: str | Path, embedder: Embedder) -> None:
        self.path = Path(path).expanduser()
        self.embedder = embedder
        self._lock = threading.RLock()
        self._manifest: dict[str, Any] = {}
        self._manifest_seen: tuple[int, int, int] | None = None  # stat of the last read
        self._db: sqlite3.Connection | None = None
        self._store: FaissStore | None = None
        self._load()

    # ---- loading -------------------------------------------------------------------------

    def _read_manifest(self) -> dict[str, Any] | None:
        if self.path.exists() and not self.path.is_dir():
            raise IndexUnavailableError(f"index path {self.path} is a file, not a directory")
        manifest_path = self.path / MANIFEST
        if not manifest_path.exists():
            if self.path.is_dir() and any(p.name.startswith("gen-") for p in self.path.iterdir()):
                raise IndexUnavailableError(
                    f"index at {self.path} is damaged (manifest missing); {rebuild_hint(self.path)}"
                )
            return None
        try:
            manifest = json.loads(manifest_path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexUnavailableError(
                f"index at {self.path} is damaged (unreadable manifest: {exc.__class__.__name__}); "
                f"{rebuild_hint(self.path)}"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise IndexUnavailableError(
                f"{self.path} does not hold a rag index; {rebuild_hint(self.path)}"
            )
        if manifest.get("version") != VERSION:
            raise IndexUnavailableError(
                f"index at {self.path} has format version {manifest.get('version')}, this "
                f"program reads version {VERSION}; {rebuild_hint(self.path)}"
            )
        return manifest

    def _load(self) -> None:
        manifest = self._read_manifest()
        if manifest is None:
            self._manifest = {"format": FORMAT, "version": VERSION, "generation": 0, "next_id": 1}
            self._db = self._new_db(":memory:")
            self._store = FaissStore(self.embedder.dim)
            return
        gen_dir = self.path / manifest["generation_dir"]
        try:
            store = FaissStore.load(gen_dir / "vectors.faiss")
            db_path = gen_dir / "chunks.sqlite"
            if not db_path.is_file():
                raise FileNotFoundError(db_path)
            db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, check_same_thread=False)
            (n_chunks,) = db.execute("SELECT count(*) FROM chunks").fetchone()
        except Exception as exc:  # faiss raises RuntimeError, sqlite DatabaseError, OSError...
            raise IndexUnavailableError(
                f"index at {self.path} is damaged ({exc.__class__.__name__}); "
                f"{rebuild_hint(self.path)}"
            ) from None
        if n_chunks != len(store) or store.dim != manifest.get("dim", store.dim):
            raise IndexUnavailableError(
                f"index at {self.path} is damaged ({len(store)} vectors for {n_chunks} chunks); "
                f"{rebuild_hint(self.path)}"
            )
        if self._db is not None:
            self._db.close()
        self._manifest, self._db, self._store = manifest, db, store

    def refresh(self) -> None:
        """Pick up a generation written by another process (e.g. `rag ingest` beside the UI)."""
        with self._lock:
            try:  # os.replace gives every commit a new inode: a stat tells whether to read
                st = os.stat(self.path / MANIFEST)
                seen = (st.st_ino, st.st_mtime_ns, st.st_size)
            except OSError:
                seen = None
            if seen is not None and seen == self._manifest_seen:
                return
            manifest = self._read_manifest()
            if manifest and manifest.get("generation") != self._manifest.get("generation"):
                self._load()
            self._manifest_seen = seen

    @staticmethod
    def _new_db(target: str) -> sqlite3.Connection:
        db = sqlite3.connect(target, check_same_thread=False)
        db.executescript(_SCHEMA)
        return db

    # ---- reading -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._store) if self._store else 0

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None
        return self._db

    def stats(self) -> IndexStats:
        with self._lock:
            (docs,) = self.db.execute("SELECT count(*) FROM documents").fetchone()
            return IndexStats(docs, len(self), self._manifest.get("updated_at"), str(self.path))

    def document(self, doc_id: str) -> Document | None:
        with self._lock:
            row = self.db.execute(
                "SELECT doc_id, title, text, date, source, url, path FROM documents "
                "WHERE doc_id = ?",
                (doc_id,),
            ).fetchone()
        return Document(*row) if row else None

    def documents(self) -> list[Document]:
        with self._lock:
            rows = self.db.execute(
                "SELECT doc_id, title, text, date, source, url, path FROM documents "
                "ORDER BY date DESC, title"
            ).fetchall()
        return [Document(*r) for r in rows]

    def chunks(self, ids: Sequence[int]) -> dict[int, ChunkRecord]:
        if not ids:
            return {}
        with self._lock:
            rows = self.db.execute(
                "SELECT c.id, c.doc_id, c.ordinal, c.start, c.end, c.text, d.title, d.date, "
                "d.source, d.url FROM chunks c JOIN documents d USING (doc_id) "
                f"WHERE c.id IN ({','.join('?' * len(ids))})",
                list(ids),
            ).fetchall()
        return {r[0]: ChunkRecord(*r) for r in rows}

    def allowed_ids(self, flt: DateSourceFilter) -> list[int] | None:
        """Chunk ids passing the filter, or None when there is no filter."""
        if not flt:
            return None
        where, params = flt.sql()
        with self._lock:
            rows = self.db.execute(
                f"SELECT c.id FROM chunks c JOIN documents d USING (doc_id) WHERE {where}", params
            ).fetchall()
        return [r[0] for r in rows]

    def doc_dates(self, ids: Iterable[int]) -> dict[int, str | None]:
        ids = list(ids)
        if not ids:
            return {}
        with self._lock:
            rows = self.db.execute(
                "SELECT c.id, d.date FROM chunks c JOIN documents d USING (doc_id) "
                f"WHERE c.id IN ({','.join('?' * len(ids))})",
                ids,
            ).fetchall()
        return dict(rows)

    def dense_search(
        self, vector: np.ndarray, k: int, allowed: Sequence[int] | None = None
    ) -> list[tuple[int, float]]:
        with self._lock:
            assert self._store is not None
            return self._store.search(vector, k, allowed)

    def lexical_search(
        self, query: str, k: int, flt: DateSourceFilter | None = None
    ) -> list[tuple[int, float]]:
        """BM25 over chunk text (SQLite FTS5); scores are positive, higher is better."""
        match = fts_query(query)
        if not match:
            return []
        sql = "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ?"
        params: list[Any] = [match]
        if flt:
            where, extra = flt.sql()
            sql += (
                " AND rowid IN (SELECT c.id FROM chunks c JOIN documents d USING (doc_id) "
                f"WHERE {where})"
            )
            params += extra
        sql += " ORDER BY bm25(chunks_fts) LIMIT ?"
        params.append(k)
        with self._lock:
            return [(int(r), float(s)) for r, s in self.db.execute(sql, params)]

    # ---- writing -------------------------------------------------------------------------

    def ingest(
        self,
        documents: Iterable[Document],
        *,
        progress: bool = False,
        skipped: Sequence[Skipped] = (),
    ) -> IngestReport:
        """Add new articles, replace changed ones, leave unchanged ones alone."""
        report = IngestReport(skipped=list(skipped))
        with self._lock, self._writer():
            existing = dict(self.db.execute("SELECT doc_id, content_hash FROM documents"))
            seen: set[str] = set()
            todo: list[tuple[Document, str]] = []
            for doc in documents:
                if doc.doc_id in seen:
                    continue
                seen.add(doc.doc_id)
                digest = content_hash(doc)
                if existing.get(doc.doc_id) == digest:
                    report.unchanged.append(doc.doc_id)
                    continue
                (report.updated if doc.doc_id in existing else report.added).append(doc.doc_id)
                todo.append((doc, digest))
            if not todo:
                return report
            chunks: list[Chunk] = []
            for doc, _ in todo:
                chunks.extend(chunk_document(doc, count_tokens=self.embedder.count_tokens))
            vectors = self.embedder.encode([c.text for c in chunks], progress=progress)
            report.chunks_added = len(chunks)

            def apply(db: sqlite3.Connection, store: FaissStore, next_id: int) -> int:
                for doc, digest in todo:
                    self._remove_doc(db, store, doc.doc_id)
                    db.execute(
                        "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?)",
                        (
                            doc.doc_id,
                            doc.title,
                            doc.date,
                            doc.source,
                            doc.url,
                            doc.path,
                            doc.text,
                            digest,
                        ),
                    )
                ids = np.arange(next_id, next_id + len(chunks), dtype=np.int64)
                db.executemany(
                    "INSERT INTO chunks VALUES (?,?,?,?,?,?)",
                    [
                        (int(i), c.doc_id, c.ordinal, c.start, c.end, c.text)
                        for i, c in zip(ids, chunks, strict=True)
                    ],
                )
                db.executemany(
                    "INSERT INTO chunks_fts(rowid, text) VALUES (?,?)",
                    [(int(i), c.text) for i, c in zip(ids, chunks, strict=True)],
                )
                store.add(ids, vectors)
                return next_id + len(chunks)

            self._commit(apply)
        return report

    def delete(self, doc_id: str) -> bool:
        with self._lock, self._writer():
            if not self.db.execute("SELECT 1 FROM documents WHERE doc_id=?", (doc_id,)).fetchone():
                return False

            def apply(db: sqlite3.Connection, store: FaissStore, next_id: int) -> int:
                self._remove_doc(db, store, doc_id)
                return next_id

            self._commit(apply)
            return True

    @staticmethod
    def _remove_doc(db: sqlite3.Connection, store: FaissStore, doc_id: str) -> None:
        ids = [r[0] for r in db.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]
        if ids:
            store.remove(ids)
            db.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])
            db.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        db.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        """Holds the directory's write lock and picks up any newer generation first."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self.refresh()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _commit(self, apply: Any) -> None:
        """Writes the next generation aside, then swaps the manifest: the atomic step."""
        generation = int(self._manifest.get("generation", 0)) + 1
        name = f"gen-{generation:06d}"
        tmp = self.path / f".tmp-{name}-{os.getpid()}"
        for stale in self.path.glob(".tmp-gen-*"):  # killed writers' (other pids); we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            db = sqlite3.connect(tmp / "chunks.sqlite", check_same_thread=False)
            self.db.backup(db)
            assert self._store is not None
            store = self._store.copy()
            with db:
                next_id = apply(db, store, int(self._manifest["next_id"]))
            db.execute("PRAGMA journal_mode=DELETE")
            db.close()
            store.save(tmp / "vectors.faiss")
            for f in ("chunks.sqlite", "vectors.faiss"):
                _fsync_file(tmp / f)
            # A writer killed between this rename and the manifest swap leaves `name` behind;
            # the manifest never pointed at it, and renaming onto a non-empty folder fails
            # (ENOTEMPTY), which made every later write fail. Under the lock it is an orphan.
            shutil.rmtree(self.path / name, ignore_errors=True)
            os.replace(tmp, self.path / name)
            manifest = {
                **self._manifest,
                "generation": generation,
                "generation_dir": name,
                "next_id": next_id,
                "dim": store.dim,
                "embedder": self.embedder.name,
                "updated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            }
            staged = self.path / f".{MANIFEST}.tmp"
            staged.write_text(json.dumps(manifest, indent=2), "utf-8")
            _fsync_file(staged)
            os.replace(staged, self.path / MANIFEST)  # <- the commit point
            _fsync_dir(self.path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._load()
        for p in self.path.iterdir():  # older generations and leftovers of crashed writers
            if (p.name.startswith("gen-") and p.name != name) or p.name.startswith(".tmp-gen-"):
                shutil.rmtree(p, ignore_errors=True)
