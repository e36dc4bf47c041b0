"""The index: ids, idempotent re-ingest, replacement, deletion, filters, atomicity, damage.

Behaviour every backend shares runs on FAISS and on Milvus (milvus-lite, one file per test)
through the `store` fixture, which sets RAG_STORE as a deployment would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from embeddings.errors import IndexUnavailableError
from embeddings.index import Index
from embeddings.store import StoreConfig
from embeddings.types import DateSourceFilter, Document

SEEDS = Path(__file__).parent.parent / "seeds"


@pytest.fixture(params=["faiss", "milvus"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The backend under test, chosen the way a deployment chooses it: RAG_STORE."""
    monkeypatch.setenv("RAG_STORE", request.param)
    monkeypatch.delenv("RAG_MILVUS_URI", raising=False)  # milvus-lite in the test's folder
    monkeypatch.delenv("RAG_MILVUS_COLLECTION", raising=False)
    return str(request.param)


def doc(doc_id: str, text: str, **kw: str) -> Document:
    return Document(doc_id=doc_id, title=kw.pop("title", doc_id), text=text, **kw)


ARTICLE = (
    "The city council approved a new bridge over the river on Monday. "
    "Construction will cost 45 million dollars and take three years. "
    "The mayor said the bridge would cut commuting times in half."
)


def chunk_ids(index: Index, doc_id: str) -> list[int]:
    return index.chunk_ids(doc_id)


def test_reingest_unchanged_changes_nothing(tmp_path: Path, store: str, make_pipeline) -> None:
    pipeline = make_pipeline(tmp_path / "idx")
    first = pipeline.ingest([SEEDS])
    assert len(first.added) == 1 and first.chunks_added > 0
    (doc_id,) = first.added
    ids, stats = pipeline.index.chunk_ids(doc_id), pipeline.stats()
    manifest = tmp_path / "idx" / "manifest.json"
    before = manifest.read_text() if store == "faiss" else None
    report = make_pipeline(tmp_path / "idx").ingest([SEEDS])
    assert report.added == [] and report.updated == [] and report.unchanged == [doc_id]
    assert report.chunks_added == 0
    assert pipeline.index.chunk_ids(doc_id) == ids and pipeline.stats() == stats
    if store == "faiss":
        assert manifest.read_text() == before


def test_changed_article_replaces_its_chunks(tmp_path: Path, store: str, make_pipeline) -> None:
    pipeline = make_pipeline(tmp_path / "idx")
    pipeline.ingest(documents=[doc("bridge", ARTICLE)])
    old = chunk_ids(pipeline.index, "bridge")
    report = pipeline.ingest(documents=[doc("bridge", ARTICLE.replace("45", "60"))])
    assert report.updated == ["bridge"]
    new = chunk_ids(pipeline.index, "bridge")
    assert set(old).isdisjoint(new)
    assert pipeline.stats().chunks == len(new)
    hits = pipeline.retrieve("How much will the bridge cost?", k=1)
    assert "60 million" in hits[0].chunk.text


def test_ids_are_never_reused_after_delete(tmp_path: Path, store: str, make_pipeline) -> None:
    pipeline = make_pipeline(tmp_path / "idx")
    pipeline.ingest(documents=[doc("a", ARTICLE), doc("b", "A second story about rain.")])
    seen = set(chunk_ids(pipeline.index, "a")) | set(chunk_ids(pipeline.index, "b"))
    assert pipeline.delete("b") is True
    assert pipeline.delete("b") is False
    # a new process sees the same counter
    reopened = make_pipeline(tmp_path / "idx")
    reopened.ingest(documents=[doc("c", "A third story about snow in the hills.")])
    assert set(chunk_ids(reopened.index, "c")).isdisjoint(seen)
    assert reopened.document("b") is None and reopened.stats().documents == 2


def test_damaged_and_incompatible_indexes_are_refused(fresh_index_dir: Path, embedder) -> None:
    manifest = json.loads((fresh_index_dir / "manifest.json").read_text())
    gen = fresh_index_dir / manifest["generation_dir"]

    (gen / "vectors.faiss").write_bytes(b"not a faiss index")
    with pytest.raises(IndexUnavailableError, match=r"damaged.*rag ingest"):
        Index(fresh_index_dir, embedder)

    (fresh_index_dir / "manifest.json").write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(IndexUnavailableError, match=r"version 99.*rebuild"):
        Index(fresh_index_dir, embedder)

    (fresh_index_dir / "manifest.json").write_text("{truncated")
    with pytest.raises(IndexUnavailableError, match="damaged"):
        Index(fresh_index_dir, embedder)


WRITER = textwrap.dedent(
    """
    import sys
    from embeddings.embedder import Embedder
    from embeddings.index import Index
    from embeddings.types import Document
    embedder = Embedder()
    embedder.encode(["warm up"])  # the model loads before the kills start, not during them
    index = Index(sys.argv[1], embedder)
    i = len(index.documents())
    # one commit before the kills start: each later kill must keep at least this one
    index.ingest([Document(f"d{i}", f"t{i}", f"Story number {i} about the harbour. " * 40)])
    print("ready", flush=True)
    while True:
        i += 1
        index.ingest([Document(f"d{i}", f"t{i}", f"Story number {i} about the harbour. " * 40)])
    """
)


def test_kill_during_save_leaves_a_readable_index(tmp_path: Path, embedder) -> None:
    """SIGKILL a writer at varied moments; every time the index opens and is consistent."""
    path = tmp_path / "idx"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    for delay in (0.05, 0.15, 0.3, 0.45, 0.6):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        index = Index(path, embedder)  # raises if the swap was not atomic
        stats = index.stats()
        (n_chunks,) = index.db.execute("SELECT count(*) FROM chunks").fetchone()
        assert stats.chunks == n_chunks == len(index)
        gens = [p for p in path.iterdir() if p.name.startswith("gen-")]
        assert len(gens) <= 2  # the current one, plus at most one left by the kill
    assert index.stats().documents >= 1


def test_filters_restrict_by_date_and_source(tmp_path: Path, store: str, make_pipeline) -> None:
    pipeline = make_pipeline(tmp_path / "idx")
    pipeline.ingest(
        documents=[
            doc(
                "old",
                "The festival drew 10,000 visitors to the park.",
                date="2020-05-01",
                source="Herald",
            ),
            doc(
                "new",
                "The festival drew 25,000 visitors to the park.",
                date="2023-05-01",
                source="Gazette",
            ),
        ]
    )
    q = "How many visitors did the festival draw?"
    assert {h.doc_id for h in pipeline.retrieve(q, k=5, filters={"date_from": "2022-01-01"})} == {
        "new"
    }
    assert {h.doc_id for h in pipeline.retrieve(q, k=5, filters={"sources": ["Herald"]})} == {"old"}
    assert pipeline.retrieve(q, k=5, filters={"date_to": "2019-01-01"}) == []
    # as_of favours the article from just before the date
    assert pipeline.retrieve(q, k=2, as_of="2020-05-03")[0].doc_id == "old"
    assert pipeline.retrieve(q, k=2, as_of="2023-05-03")[0].doc_id == "new"


def test_sources_lists_exactly_the_live_articles_sources(
    tmp_path: Path, store: str, embedder
) -> None:
    """The names `--source` matches against: a deleted article's source is gone with it."""
    index = Index(tmp_path / "ix", embedder)
    assert index.sources() == []
    index.ingest(
        [
            doc("a", ARTICLE, source="Herald"),
            doc("b", "Rain fell in the hills all week.", source="gazette"),
            doc("c", "The harbour reopened after repairs.", source="Courier"),
            doc("d", "A quiet day at the market."),  # no source
        ]
    )
    assert index.sources() == ["Courier", "gazette", "Herald"]
    index.delete("c")
    assert index.sources() == ["gazette", "Herald"]
    hits = index.lexical_search("rain", 5, DateSourceFilter(sources=("GAZETTE",)))
    assert {index.chunks([h])[h].doc_id for h, _ in hits} == {"b"}


def test_delete_many_promotes_a_copy_of_every_deleted_canonical(tmp_path: Path, embedder) -> None:
    """A batch that deletes a story's canonical and one copy leaves the other copy in
    charge, chunked and searchable, in one generation."""
    from test_dedup import COPY, ORIGINAL, WIRE, article, paragraphs

    index = Index(tmp_path / "ix", embedder)
    short = article("courier-3", "\n\n".join(paragraphs(WIRE)[:4]), "Courier")
    index.ingest([ORIGINAL, COPY, short, doc("other", ARTICLE)])
    before = index.generation
    assert index.delete_many(["herald-1", "gazette-9", "missing", "herald-1"]) == [
        "herald-1",
        "gazette-9",
    ]
    assert index.generation == before + 1
    heir = index.document("courier-3")
    assert heir is not None and heir.duplicate_of is None and index.chunk_ids("courier-3")
    assert sorted(d.doc_id for d in index.documents()) == ["courier-3", "other"]
    assert index.delete_many(["missing"]) == [] and index.generation == before + 1


def test_a_reader_picks_up_what_another_writer_committed(
    tmp_path: Path, store: str, embedder
) -> None:
    reader = Index(tmp_path / "ix", embedder)
    reader.refresh()  # nothing on disk yet
    assert len(reader) == 0
    Index(tmp_path / "ix", embedder).ingest([doc("bridge", ARTICLE)])
    reader.refresh()
    assert reader.document("bridge") is not None and len(reader) > 0
    Index(tmp_path / "ix", embedder).delete("bridge")
    reader.refresh()
    assert reader.document("bridge") is None


def test_awkward_ids_and_sources_are_data_not_syntax(tmp_path: Path, store: str, embedder) -> None:
    """Quotes, backslashes and accents reach the store's query language as plain values."""
    index = Index(tmp_path / "ix", embedder)
    odd_id, odd_source = 'story "7" \\ draft', "Le Monde d'Été"
    index.ingest(
        [
            doc(odd_id, ARTICLE, source=odd_source, date="2024-01-02"),
            doc("plain", "A second story about rain in the hills.", source="Herald"),
        ]
    )
    assert index.document(odd_id) is not None and index.document(odd_id).text == ARTICLE
    allowed = index.allowed_ids(DateSourceFilter(sources=(odd_source,)))
    assert allowed and set(allowed) == set(index.chunk_ids(odd_id))
    hits = index.lexical_search("bridge", 5, DateSourceFilter(sources=(odd_source,)))
    assert hits and {index.chunks([h])[h].doc_id for h, _ in hits} == {odd_id}
    assert all(score > 0 for _, score in hits)  # BM25 scores, positive in both stores
    if store == "faiss":  # FTS5 stems; milvus-lite 3.2.2 ignores the stemmer (README)
        stemmed = index.lexical_search("Which bridges?", 5)
        assert [index.chunks([h])[h].doc_id for h, _ in stemmed][:1] == [odd_id]
    assert index.delete(odd_id) is True
    assert index.document(odd_id) is None and index.chunk_ids(odd_id) == []
    assert [d.doc_id for d in index.documents()] == ["plain"]


def test_long_articles_round_trip_whole(tmp_path: Path, store: str, embedder) -> None:
    """An article longer than one Milvus VARCHAR (64 KiB) comes back character for character."""
    text = " ".join(
        f"Paragraph {i} about the harbour, the ferries and the tide." for i in range(1500)
    )
    assert len(text.encode()) > 65535
    index = Index(tmp_path / "ix", embedder)
    index.ingest([doc("long", text, title="Harbour")])
    assert index.document("long") == Document("long", "Harbour", text)
    assert index.stats().chunks == len(index.chunk_ids("long")) > 1


def test_an_unknown_store_is_refused_with_the_choices() -> None:
    with pytest.raises(IndexUnavailableError, match="RAG_STORE must be one of faiss, milvus"):
        StoreConfig.from_env({"RAG_STORE": "qdrant"})


def test_an_unreachable_milvus_server_is_one_clear_error(tmp_path: Path, embedder) -> None:
    config = StoreConfig(kind="milvus", milvus_uri="http://127.0.0.1:9")  # discard port
    with pytest.raises(IndexUnavailableError, match="Milvus"):
        Index(tmp_path / "ix", embedder, config).stats()
