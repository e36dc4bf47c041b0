"""The Milvus store shared by replicas: milvus-lite served on 127.0.0.1, several clients.

What a deployment with two API replicas on one Milvus relies on: an article ingested or
deleted through one replica changes the other's next answer, a replaced article is never
seen half old and half new, BM25 ranks a brand-new article by the whole collection's
statistics with the FAISS backend's stems, and odd document ids round-trip.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_run import free_port

from embeddings.errors import IndexUnavailableError
from embeddings.index import Index
from embeddings.store import StoreConfig
from embeddings.types import DateSourceFilter, Document

PROBE = Document(
    "probe",
    "Quenby Glass Museum names a director",
    "The Quenby Glass Museum named Maribel Okonkwo-Staines as its new director on 2 May "
    "2022. She previously ran the city's botanical garden.",
    "2022-05-02",
)
QUESTION = "Who is the new director of the Quenby Glass Museum?"
TOPICS = ["museum", "director", "glass", "new", "garden", "harbour", "council", "school"]


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """milvus-lite's own gRPC server, as `evals.load` runs it for its replicas."""
    port = free_port()
    cmd = [sys.executable, "-m", "milvus_lite", "server", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--data-dir", str(tmp_path_factory.mktemp("milvus"))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, "milvus-lite did not start"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture
def shared(milvus_uri: str, monkeypatch: pytest.MonkeyPatch) -> StoreConfig:
    """A fresh collection pair on the server, chosen through the environment as replicas do."""
    name = f"t{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("RAG_STORE", "milvus")
    monkeypatch.setenv("RAG_MILVUS_URI", milvus_uri)
    monkeypatch.setenv("RAG_MILVUS_COLLECTION", name)
    return StoreConfig.from_env()


def distractors(n: int = 48) -> list[Document]:
    """Articles sharing the probe question's common words, each with one of them, so that
    in a collection of them those words are rare enough to weigh in BM25."""
    docs = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        text = (
            f"Story {i} about the {topic}: the {topic} of district {i} held its annual "
            f"meeting on Tuesday, and residents number {100 + i} asked about the budget."
        )
        docs.append(Document(f"d{i}", f"{topic.title()} story {i}", text, "2022-04-01"))
    return docs


def test_an_article_ingested_through_one_replica_answers_the_other(
    tmp_path: Path, shared: StoreConfig, make_pipeline
) -> None:
    writer, reader = make_pipeline(tmp_path / "a"), make_pipeline(tmp_path / "b")
    writer.ingest(documents=distractors())
    assert "Okonkwo-Staines" not in reader.ask(QUESTION).text

    writer.ingest(documents=[PROBE])
    # The new article sits in a segment of its own: BM25 must still weigh "Quenby" by the
    # whole collection (milvus-lite's own BM25 scored it as if the segment were the corpus).
    bm25 = reader.retrieve(QUESTION, k=3, retriever="bm25")
    assert [h.doc_id for h in bm25][:1] == ["probe"]
    assert "Okonkwo-Staines" in reader.ask(QUESTION).text

    assert writer.delete("probe") is True
    assert "probe" not in {h.doc_id for h in reader.retrieve(QUESTION, k=10)}
    assert "Okonkwo-Staines" not in reader.ask(QUESTION).text
    assert reader.document("probe") is None


EDITIONS = ["kestrel", "osprey", "heron", "plover", "curlew"]


def edition(tag: str) -> Document:
    """A several-chunk article whose every sentence names its edition."""
    sentences = [
        f"The {tag} edition reports that the harbour bridge reopened with {n} lanes "
        f"after repairs that the {tag} desk followed for weeks, costing {n} million."
        for n in range(2, 40)
    ]
    return Document("bridge", "Harbour bridge", " ".join(sentences), "2024-01-02", "Herald")


@pytest.mark.xfail(
    reason="known race on milvus-lite under load: about 1 run in 4 a search or chunk listing "
    "mid-replace finds none of the article's chunks (two versions are never seen together)",
    strict=False,
)
def test_a_reader_never_sees_an_article_half_replaced(
    tmp_path: Path, shared: StoreConfig, embedder
) -> None:
    writer = Index(tmp_path / "w", embedder, shared)
    reader = Index(tmp_path / "r", embedder, shared)  # its own client, as a replica has
    writer.ingest([edition(EDITIONS[0]), Document("other", "Rain", "Rain in the hills.")])
    chunks_per_edition = len(writer.chunk_ids("bridge"))
    assert chunks_per_edition >= 3
    vector = embedder.encode(["harbour bridge lanes repairs"])[0]
    done, seen, problems = threading.Event(), [], []

    def editions_in(ids: list[int]) -> set[str]:
        texts = [r.text for r in reader.chunks(ids).values() if r.doc_id == "bridge"]
        return {tag for tag in EDITIONS for t in texts if f"The {tag} edition" in t}

    def read() -> None:
        try:
            read_until_done()
        except Exception as exc:  # a failing read is a finding, not a silent thread death
            problems.append(("error", repr(exc)))

    def read_until_done() -> None:
        while not done.is_set():
            dense = [i for i, _ in reader.dense_search(vector, 20)]
            lexical = [i for i, _ in reader.lexical_search("harbour bridge lanes", 20)]
            live = reader.chunk_ids("bridge")
            for what, ids in (("dense", dense), ("bm25", lexical), ("chunk_ids", live)):
                found = editions_in(ids)
                seen.append(found)
                if len(found) != 1:
                    problems.append((what, sorted(found)))
            if len(live) != chunks_per_edition:
                problems.append(("chunk count", len(live)))

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for tag in EDITIONS[1:]:
            writer.ingest([edition(tag)])
            time.sleep(0.3)
    finally:
        done.set()
        thread.join()
    assert not problems, problems[:5]
    assert len({tag for found in seen for tag in found}) >= 2  # the reader saw replacements
    # Superseded chunks are gone, and filters see exactly the live edition.
    assert writer.store.count() == chunks_per_edition + 1
    live = set(reader.chunk_ids("bridge"))
    assert set(reader.allowed_ids(DateSourceFilter(date_from="2024-01-01"))) == live
    assert set(reader.allowed_ids(DateSourceFilter(sources=("herald",)))) == live
    as_of = reader.allowed_ids(DateSourceFilter(as_of="2023-12-31"))
    assert set(as_of) == set(reader.chunk_ids("other"))  # undated stays, later goes
    assert editions_in(sorted(live)) == {EDITIONS[-1]}


def test_bm25_stems_like_the_faiss_store(tmp_path: Path, embedder, monkeypatch) -> None:
    """Same tokens as FTS5's `porter unicode61`: "bridges" finds "bridge", and both stores
    put the same article first."""
    monkeypatch.delenv("RAG_MILVUS_URI", raising=False)
    docs = [
        Document("a", "Bridge", "The council approved a new bridge over the river."),
        Document("b", "Trains", "Commuters running for the trains crowded the station."),
        Document("c", "Rivers", "Rivers flooded the valley after the storms."),
    ]
    stores = {
        kind: Index(tmp_path / kind, embedder, StoreConfig(kind=kind, milvus_collection="s"))
        for kind in ("faiss", "milvus")
    }
    for index in stores.values():
        index.ingest(docs)
    for query, expected in [("Which bridges?", "a"), ("run", "b"), ("river flooding", "c")]:
        for kind, index in stores.items():
            hits = index.lexical_search(query, 3)
            assert hits and index.chunks([hits[0][0]])[hits[0][0]].doc_id == expected, kind


def test_documents_with_backslashes_and_quotes_list_and_delete(
    tmp_path: Path, embedder, monkeypatch
) -> None:
    monkeypatch.delenv("RAG_MILVUS_URI", raising=False)
    index = Index(tmp_path / "ix", embedder, StoreConfig(kind="milvus"))
    odd = ["C:\\news\\a.txt", 'say "hi"', "it's\\"]
    index.ingest([Document(d, d, f"Story {n} about the harbour.") for n, d in enumerate(odd)])
    assert sorted(d.doc_id for d in index.documents()) == sorted(odd)
    assert index.sources() == []
    assert all(index.document(d) is not None and index.chunk_ids(d) for d in odd)
    assert index.delete(odd[0]) is True
    assert sorted(d.doc_id for d in index.documents()) == sorted(odd[1:])


def test_collections_from_before_stemmed_bm25_are_refused_with_the_fix(
    tmp_path: Path, shared: StoreConfig, embedder, milvus_uri: str
) -> None:
    from pymilvus import DataType, MilvusClient

    client = MilvusClient(milvus_uri)
    for part in ("chunks", "documents"):
        name = f"{shared.milvus_collection}_{part}"
        s = client.create_schema(auto_id=False)
        s.add_field("doc_id", DataType.VARCHAR, max_length=64, is_primary=True)
        s.add_field("dense", DataType.FLOAT_VECTOR, dim=2)
        ip = client.prepare_index_params()
        ip.add_index(field_name="dense", index_type="FLAT", metric_type="L2")
        client.create_collection(name, schema=s, index_params=ip)
    with pytest.raises(IndexUnavailableError, match=r"predate stemmed BM25.*ingest again"):
        Index(tmp_path / "ix", embedder, shared).stats()


def test_the_api_on_a_milvus_server_keeps_uploads_in_the_index_folder(
    tmp_path: Path, shared: StoreConfig, make_pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's location is the server's URI, not a folder: uploads stay beside the index."""
    from rag.serve.app import create_app

    monkeypatch.chdir(tmp_path)
    pipeline = make_pipeline(tmp_path / "index")
    app = create_app(pipeline)
    assert app.state.rag.uploads.root == (tmp_path / "index" / "uploads").resolve()
    assert not any(p.name.startswith("http") for p in tmp_path.iterdir())
