"""Segments: many small writes search like one index; deletes, replaces and filters stay exact
across segments; a merge changes no result, loses no concurrent write, and a kill in the
middle of one leaves a whole index. Real FAISS and SQLite, small synthetic articles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from embeddings import faiss_store, segment_merges
from embeddings.faiss_store import FaissStore
from embeddings.segments import MergePolicy
from embeddings.types import Chunk, DateSourceFilter, Document, DocumentWrite
from evals import killloop

DIM = 32
ROOT = Path(__file__).resolve().parent.parent
TOPICS = ["harbour", "bridge", "budget", "storm", "vaccine", "court", "market", "museum"]


def article(i: int, version: int = 0) -> DocumentWrite:
    """Article `i`: 3 to 6 chunks with their own words and vectors, dated by `i`."""
    rng = np.random.default_rng(1000 * i + version)
    topic = TOPICS[i % len(TOPICS)]
    texts = [
        f"The {topic} report {i} version {version} part {j} mentions word{i}x{j}."
        for j in range(int(rng.integers(3, 7)))
    ]
    body = " ".join(texts)
    chunks, start = [], 0
    for j, t in enumerate(texts):
        chunks.append(Chunk(f"a{i}", t, start, start + len(t), j))
        start += len(t) + 1
    doc = Document(f"a{i}", f"Article {i}", body, date=f"2020-01-{1 + i % 28:02d}", source="S")
    vectors = rng.standard_normal((len(chunks), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return DocumentWrite(doc, f"h{i}-{version}", tuple(chunks), vectors)


def open_store(path: Path, **policy: int) -> FaissStore:
    store = FaissStore(path, dim=lambda: DIM, embedder_name="test")
    store.policy = MergePolicy(**{"coalesce_below": 0, "max_segments": 1000, **policy})
    store.background_merge = False
    return store


def queries(n: int = 12) -> np.ndarray:
    q = np.random.default_rng(5).standard_normal((n, DIM)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def results(store: FaissStore) -> list[object]:
    """Everything a reader sees, with chunk ids mapped to (article, ordinal)."""

    def named(hits: list[tuple[int, float]]) -> list[tuple[str, int, float]]:
        chunks = store.chunks([i for i, _ in hits])
        return [(chunks[i].doc_id, chunks[i].ordinal, round(s, 4)) for i, s in hits]

    early = DateSourceFilter(as_of="2020-01-10")
    out: list[object] = [sorted((d.doc_id, d.text) for d in store.documents()), store.count()]
    for q in queries():
        out.append(named(store.search(q, 10)))
        out.append(named(store.search(q, 5, flt=early)))
    for word in ("harbour report", "budget word3x1", "storm version"):
        out.append(named(store.lexical_search(word, 10)))
    return out


def history(store: FaissStore, n: int = 24) -> None:
    """Articles written two at a time, some replaced and deleted later (in older segments)."""
    for i in range(0, n, 2):
        store.write([article(i), article(i + 1)])
    store.write([article(3, version=1), article(10, version=1)])  # replace
    store.write([], ["a5", "a12"])  # delete


def fresh_equivalent(path: Path, n: int = 24) -> FaissStore:
    """One write of what `history` leaves: the single-segment reference."""
    store = open_store(path)
    live = [article(i) for i in range(n) if i not in (3, 5, 10, 12)]
    store.write([*live, article(3, version=1), article(10, version=1)])
    return store


def test_many_small_writes_search_like_one_index(tmp_path: Path) -> None:
    store = open_store(tmp_path / "seg")
    history(store)
    assert len(store.vectors.segments) == 13  # type: ignore[union-attr]
    assert len(store.vectors.tombstones) > 0  # type: ignore[union-attr]
    reference = fresh_equivalent(tmp_path / "one")
    assert len(reference.vectors.segments) == 1  # type: ignore[union-attr]
    got, want = results(store), results(reference)
    assert got[:-3] == want[:-3]  # documents, count, dense and filtered dense: exact
    # BM25 sees the replaced and deleted rows' words until a merge purges them (a few per
    # cent of its statistics here): the same chunks are found.
    assert (
        [{(d, o) for d, o, _ in r} for r in got[-3:]]
        == [  # type: ignore[union-attr]
            {(d, o) for d, o, _ in r}  # type: ignore[union-attr]
            for r in want[-3:]
        ]
    )
    reopened = open_store(tmp_path / "seg")
    assert results(reopened) == got


def test_deletes_and_replaces_in_older_segments_are_exact(tmp_path: Path) -> None:
    store = open_store(tmp_path / "seg")
    history(store)
    assert store.document("a5") is None and store.chunk_ids("a5") == []
    assert "version 1" in (store.document("a3") or Document("", "", "")).text
    hits = [i for q in queries() for i, _ in store.search(q, 50)]
    docs = {c.doc_id for c in store.chunks(hits).values()}
    assert len(store.chunks(hits)) == len(set(hits))  # every hit is a live chunk
    assert not docs & {"a5", "a12"}
    texts = [c.text for c in store.chunks(hits).values() if c.doc_id == "a3"]
    assert texts and all("version 1" in t for t in texts)
    early = store.allowed_ids(DateSourceFilter(as_of="2020-01-06"))
    assert {c.doc_id for c in store.chunks(early).values()} == {"a0", "a1", "a2", "a3", "a4"}
    assert not store.lexical_search("word5x0", 5)  # deleted article: no BM25 hit either


def test_a_merge_changes_no_result_and_drops_tombstones(tmp_path: Path) -> None:
    store = open_store(tmp_path / "seg")
    history(store)
    before = results(store)
    assert store.merge([s.name for s in store.vectors.segments])  # type: ignore[union-attr]
    assert len(store.vectors.segments) == 1  # type: ignore[union-attr]
    assert len(store.vectors.tombstones) == 0  # type: ignore[union-attr]
    after = results(store)
    assert after[:-3] == before[:-3]
    # purged rows leave BM25: now exactly the single-write index's scores
    assert after[-3:] == results(fresh_equivalent(tmp_path / "one"))[-3:]
    assert results(open_store(tmp_path / "seg")) == after
    assert killloop.leftovers(tmp_path / "seg") == ()


def test_the_policy_merges_in_the_background_and_close_waits(tmp_path: Path) -> None:
    store = open_store(tmp_path / "seg", max_segments=4)
    store.background_merge = True
    for i in range(10):
        store.write([article(i)])
    store.close()
    reopened = open_store(tmp_path / "seg")
    assert len(reopened.vectors.segments) <= 5  # type: ignore[union-attr]
    assert {d.doc_id for d in reopened.documents()} == {f"a{i}" for i in range(10)}


def test_a_write_during_a_merge_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process writes (and deletes from a segment being merged) between the merge's
    snapshot and its swap: the merge commits and keeps both changes."""
    path = tmp_path / "seg"
    merger = open_store(path)
    for i in range(6):
        merger.write([article(i)])
    other = open_store(path)
    fold = segment_merges._fold
    ran = []

    def fold_while_writing(*args: object) -> object:
        other.write([article(50)], ["a1"])
        ran.append(True)
        return fold(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(segment_merges, "_fold", fold_while_writing)
    assert merger.merge([s.name for s in merger.vectors.segments])  # type: ignore[union-attr]
    assert ran
    for store in (merger, open_store(path)):
        docs = {d.doc_id for d in store.documents()}
        assert docs == {"a0", "a2", "a3", "a4", "a5", "a50"}
        assert len(store.vectors.segments) == 2  # type: ignore[union-attr]
        hits = [i for q in queries() for i, _ in store.search(q, 40)]
        assert {c.doc_id for c in store.chunks(hits).values()} == docs
        assert store.count() == sum(len(store.chunk_ids(d)) for d in docs)


def test_readers_and_a_writer_thread_run_during_a_background_merge(tmp_path: Path) -> None:
    store = open_store(tmp_path / "seg")
    for i in range(8):
        store.write([article(i)])
    names = [s.name for s in store.vectors.segments]  # type: ignore[union-attr]
    merge = threading.Thread(target=store.merge, args=(names,))
    merge.start()
    for i in range(8, 12):
        store.write([article(i)])
        assert store.search(queries()[0], 5)
    merge.join()
    assert {d.doc_id for d in store.documents()} == {f"a{i}" for i in range(12)}
    assert store.count() == len(store.vectors.ids())  # type: ignore[union-attr]


KILLED_MERGER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[3])
    from test_segments import article, open_store
    from embeddings import faiss_store, segment_merges
    from embeddings.generations import Generations
    from pathlib import Path
    store = open_store(Path(sys.argv[1]))
    for i in range(6):
        store.write([article(i)])
    store.write([], ["a2"])
    def stop(*args, **kwargs):
        print("stopped", flush=True)
        time.sleep(60)
    if sys.argv[2] == "saved":  # the merged file is written, not yet renamed
        fold = segment_merges._fold
        def folded(*args):
            merged, dropped = fold(*args)
            save = merged.save
            merged.save = lambda path: (save(path), stop())
            return merged, dropped
        segment_merges._fold = folded
    else:  # renamed into place, the manifest not yet swapped
        Generations.swap = stop
    store.merge([s.name for s in store.vectors.segments])
    """
)


@pytest.mark.parametrize("point", ["saved", "renamed"])
def test_a_kill_during_a_merge_leaves_a_whole_index(tmp_path: Path, point: str) -> None:
    path = tmp_path / "seg"
    script = tmp_path / "merger.py"
    script.write_text(KILLED_MERGER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path), point, str(ROOT / "tests")],
        stdout=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"stopped"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert len(killloop.leftovers(path)) == 1  # the merge's output, never named
    store = open_store(path)
    assert len(store.vectors.segments) == 6  # type: ignore[union-attr]  # as before the merge
    assert {d.doc_id for d in store.documents()} == {"a0", "a1", "a3", "a4", "a5"}
    assert store.count() == len(store.vectors.ids())  # type: ignore[union-attr]
    store.write([article(9)])
    assert killloop.leftovers(path) == ()
    assert store.merge([s.name for s in store.vectors.segments])  # type: ignore[union-attr]


V1_SCHEMA = """
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


def test_a_format_1_index_opens_and_takes_writes(tmp_path: Path) -> None:
    """A folder written by the previous format (one whole generation per write) is read as
    one base segment; its first write upgrades the SQLite file in place."""
    import sqlite3

    path = tmp_path / "v1"
    gen = path / "gen-000003"
    gen.mkdir(parents=True)
    db = sqlite3.connect(gen / "chunks.sqlite")
    db.executescript(V1_SCHEMA)
    vectors = faiss_store.FaissVectors(DIM)
    next_id = 1
    for i in range(4):
        put = article(i)
        d = put.document
        db.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?)",
            (d.doc_id, d.title, d.date, d.source, d.url, d.path, d.text, put.content_hash),
        )
        ids = np.arange(next_id, next_id + len(put.chunks))
        for i_, c in zip(ids, put.chunks, strict=True):
            db.execute(
                "INSERT INTO chunks VALUES (?,?,?,?,?,?)",
                (int(i_), c.doc_id, c.ordinal, c.start, c.end, c.text),
            )
            db.execute("INSERT INTO chunks_fts(rowid, text) VALUES (?,?)", (int(i_), c.text))
        vectors.add(ids, put.vectors)
        next_id += len(put.chunks)
    db.commit()
    db.close()
    vectors.save(gen / "vectors.faiss")
    (path / "gen-000002").mkdir()  # an older generation's folder
    manifest = {"format": "rag-index", "version": 1, "generation": 3, "next_id": next_id}
    manifest |= {"generation_dir": "gen-000003", "dim": DIM}
    (path / "manifest.json").write_text(json.dumps(manifest))

    store = open_store(path)
    assert store.count() == next_id - 1 and len(store.documents()) == 4
    assert store.lexical_search("word2x1", 3)
    store.write([article(1, version=1), article(7)], ["a0"])
    reopened = open_store(path)
    assert {d.doc_id for d in reopened.documents()} == {"a1", "a2", "a3", "a7"}
    assert reopened.count() == sum(len(reopened.chunk_ids(d)) for d in ("a1", "a2", "a3", "a7"))
    assert json.loads((path / "manifest.json").read_text())["version"] == 2
    assert killloop.leftovers(path) == ()
