"""Duplicate stories: one wire story run by several outlets is indexed once, cited with
every outlet, and nothing is lost when articles are deleted."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from embeddings import dedup
from embeddings.index import Index
from embeddings.store import StoreConfig
from embeddings.types import Document
from rag.cli.format import also_line, listing
from rag.types import AlsoPublished, Citation
from rag.ui.render import render_answer

WIRE = """The Orvana city council voted 7 to 2 on Tuesday to build a new bridge across the
Lumen river, ending a decade of debate over how to connect the two halves of the city.

The bridge will cost 45 million dollars and is expected to open in 2027, the council said.
Construction is set to begin next spring once the final designs are approved.

Mayor Ilse Varga said the crossing would cut commuting times in half for the 80,000
residents who live on the east bank and work in the old town.

Opponents argued that the money should go to the ferry service, which carries about
12,000 passengers a day and has not had a new boat since 1998.

The council also approved a study of cycle lanes on the new bridge, to be presented in
the autumn, and asked the transport office to plan bus routes over the crossing.

Local businesses on the east bank welcomed the vote, saying the bridge would bring more
customers to the market streets that have struggled since the ferry timetable was cut."""

OTHER_STORY = """The Orvana city council heard testimony on Tuesday about the state of the
Lumen river ferry, the second hearing this month on the city's transport plans.

Ferry captain Tomas Brell told council members that two of the four boats need new
engines and that the service cancelled 140 crossings last winter because of breakdowns.

Council members asked the transport office for a report on the cost of new boats,
expected before the budget vote in November, and for options to keep the fares low.

Residents of the east bank filled the chamber, many holding signs asking for more
evening crossings, and several spoke about missing work when boats broke down."""


def paragraphs(text: str) -> list[str]:
    return text.split("\n\n")


def copy_of(text: str) -> str:
    """How a second outlet runs the wire story: a dateline, one paragraph cut, a credit."""
    paras = paragraphs(text)
    paras[0] = "ORVANA (Wire) — " + paras[0]
    del paras[4]
    return "\n\n".join([*paras, "Copyright 2024 The Wire. All rights reserved."])


def article(doc_id: str, text: str, source: str, **kw: str) -> Document:
    return Document(
        doc_id=doc_id,
        title=kw.pop("title", f"Bridge vote ({source})"),
        text=text,
        date=kw.pop("date", "2024-03-05"),
        source=source,
        url=f"https://{source.lower()}.example/{doc_id}",
        **kw,
    )


ORIGINAL = article("herald-1", WIRE, "Herald")
COPY = article("gazette-9", copy_of(WIRE), "Gazette", title="Council backs Lumen bridge")


# ---- the detector alone (no model) -------------------------------------------------------


def test_a_changed_figure_is_news_but_a_cut_paragraph_or_credit_line_is_not() -> None:
    assert dedup.facts_differ(WIRE, WIRE.replace("45 million", "52 million"))
    assert dedup.facts_differ(WIRE, WIRE.replace("7 to 2", "6 to 3"))
    assert not dedup.facts_differ(WIRE, copy_of(WIRE))
    assert not dedup.facts_differ(WIRE, "\n\n".join(paragraphs(WIRE)[:3]))


def test_the_detector_matches_a_copy_and_not_another_story_on_the_same_topic() -> None:
    texts = {"a": WIRE, "b": OTHER_STORY}
    detector = dedup.Detector(texts.get)
    for doc_id, text in texts.items():
        detector.add(doc_id, dedup.minhash(dedup.shingles(text)))
    match = detector.find("c", copy_of(WIRE))
    assert match is not None and match.canonical == "a" and match.containment > 0.9
    assert detector.find("d", OTHER_STORY + "\n\nMore hearings are planned.") is not None
    assert detector.find("e", WIRE.replace("45 million", "52 million")) is None
    assert detector.find("a", copy_of(WIRE)) is None  # its own new version: a replace


def test_stored_band_keys_find_what_datasketch_lsh_finds() -> None:
    """The persisted bands are MinHashLSH's: same banding, same candidates, same matches."""
    from datasketch import MinHashLSH

    from embeddings.chunk_table import ChunkTable

    lsh = MinHashLSH(threshold=dedup.LSH_THRESHOLD, num_perm=dedup.NUM_PERM)
    assert (lsh.b, lsh.r) == (dedup.BANDS, dedup.ROWS)
    texts = {
        "a": WIRE,
        "b": OTHER_STORY,
        "c": "ORVANA (Wire) — " + OTHER_STORY,
        "d": "\n\n".join(paragraphs(WIRE)[:3]),
    }
    table = ChunkTable.new()
    table.begin()
    for doc_id, text in texts.items():
        table.put_document(article(doc_id, text, "Herald"), doc_id, 1)
        lsh.insert(doc_id, dedup.minhash(dedup.shingles(text)))
    table.commit()
    table.view(1)
    stored = dedup.Detector(texts.get, stored=table.dedup_candidates)
    in_memory = dedup.Detector(texts.get)
    for doc_id, text in texts.items():
        in_memory.add(doc_id, dedup.minhash(dedup.shingles(text)))
    for text in [
        copy_of(WIRE),
        OTHER_STORY + " More hearings are planned.",
        WIRE.replace("45", "52"),
    ]:
        sig = dedup.minhash(dedup.shingles(text))
        assert set(table.dedup_candidates(dedup.band_keys(sig.hashvalues))) == set(lsh.query(sig))
        assert stored.find("new", text) == in_memory.find("new", text)
    assert stored.find("new", copy_of(WIRE)) is not None


def test_a_stored_signature_round_trips() -> None:
    blob = dedup.signature_bytes(WIRE)
    assert len(blob) == dedup.NUM_PERM * 4
    assert dedup.from_bytes(blob).jaccard(dedup.minhash(dedup.shingles(WIRE))) == 1.0


# ---- the index ---------------------------------------------------------------------------


@pytest.fixture
def index(tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> Index:
    monkeypatch.delenv("RAG_DEDUP", raising=False)
    monkeypatch.setenv("RAG_STORE", "faiss")
    return Index(tmp_path / "ix", embedder)


def searched_docs(index: Index, query: str) -> set[str]:
    hits = index.lexical_search(query, 50)
    return {r.doc_id for r in index.chunks([i for i, _ in hits]).values()}


def test_a_copy_is_stored_without_chunks_and_listed_with_its_canonical(index: Index) -> None:
    index.ingest([ORIGINAL])
    report = index.ingest([COPY])
    assert report.duplicates == {"gazette-9": "herald-1"}
    assert "1 merged as duplicates" in report.summary()
    assert report.chunks_added == 0 and index.chunk_ids("gazette-9") == []
    assert searched_docs(index, "bridge Lumen ferry commuting") == {"herald-1"}
    copy = index.document("gazette-9")
    assert copy is not None and copy.duplicate_of == "herald-1" and copy.text == COPY.text
    listed = {d.doc_id: d.duplicate_of for d in index.documents()}
    assert listed == {"herald-1": None, "gazette-9": "herald-1"}
    rows = listing(index.documents(), index.chunk_counts())
    assert any(r.line().endswith("(copy of herald-1)") for r in rows)
    copies = index.copies(["herald-1"])["herald-1"]
    assert [(d.source, d.url) for d in copies] == [("Gazette", COPY.url)]
    assert index.ingest([COPY]).unchanged == ["gazette-9"]  # re-ingest: nothing to do


def test_signatures_persist_for_another_process_and_within_a_batch(
    tmp_path: Path, index: Index, embedder
) -> None:
    third = article("courier-3", copy_of(WIRE).replace("Tuesday", "Tuesday evening"), "Courier")
    report = index.ingest([ORIGINAL, COPY])  # both in one batch
    assert report.duplicates == {"gazette-9": "herald-1"}
    again = Index(tmp_path / "ix", embedder)  # a restart, or another process
    assert again.ingest([third]).duplicates == {"courier-3": "herald-1"}
    assert {d.source for d in again.copies(["herald-1"])["herald-1"]} == {"Gazette", "Courier"}


def test_distinct_stories_updates_and_replacements_are_not_merged(index: Index) -> None:
    index.ingest([ORIGINAL])
    other = article("herald-2", OTHER_STORY, "Herald", title="Ferry hearing")
    update = article("herald-3", WIRE.replace("45 million", "52 million"), "Herald")
    report = index.ingest([other, update])
    assert report.duplicates == {} and report.added == ["herald-2", "herald-3"]
    new_version = dataclasses.replace(ORIGINAL, text=copy_of(WIRE))
    report = index.ingest([new_version])
    assert report.updated == ["herald-1"] and report.duplicates == {}
    assert index.document("herald-1").text == new_version.text  # type: ignore[union-attr]
    assert index.chunk_ids("herald-1")


def test_copies_follow_their_canonical_when_it_is_rewritten(index: Index) -> None:
    ferry = article("herald-2", OTHER_STORY, "Herald", title="Ferry hearing")
    index.ingest([ferry, ORIGINAL, COPY])
    assert index.document("gazette-9").duplicate_of == "herald-1"  # type: ignore[union-attr]
    # herald-1 now carries another outlet's ferry piece: the bridge story must stay findable
    rewritten = dataclasses.replace(ORIGINAL, text=OTHER_STORY + "\n\nMore hearings follow.")
    report = index.ingest([rewritten])
    assert report.duplicates == {"herald-1": "herald-2"}
    assert index.document("gazette-9").duplicate_of is None  # type: ignore[union-attr]
    assert index.chunk_ids("gazette-9") and index.chunk_ids("herald-1") == []
    assert "gazette-9" in searched_docs(index, "bridge Lumen commuting")


def test_deleting_the_canonical_promotes_a_copy_and_keeps_every_outlet(index: Index) -> None:
    short = article("courier-3", "\n\n".join(paragraphs(WIRE)[:4]), "Courier")
    index.ingest([ORIGINAL, COPY, short])
    assert index.copies(["herald-1"])["herald-1"][0].doc_id in {"gazette-9", "courier-3"}
    assert index.delete("herald-1")
    heir = index.document("gazette-9")  # the longest copy carries the story on
    assert heir is not None and heir.duplicate_of is None and index.chunk_ids("gazette-9")
    assert searched_docs(index, "bridge Lumen ferry commuting") == {"gazette-9"}
    assert index.document("courier-3").duplicate_of == "gazette-9"  # type: ignore[union-attr]
    assert index.delete("courier-3")  # a copy: only it goes
    assert [d.doc_id for d in index.documents()] == ["gazette-9"]
    assert index.copies(["gazette-9"]) == {}


def test_opting_out_indexes_every_copy(tmp_path: Path, embedder) -> None:
    index = Index(tmp_path / "ix", embedder, dedup=False)
    report = index.ingest([ORIGINAL, COPY])
    assert report.duplicates == {} and index.chunk_ids("gazette-9")
    assert searched_docs(index, "bridge Lumen ferry commuting") == {"herald-1", "gazette-9"}


def test_an_index_from_before_dedup_opens_and_merges_on_the_next_write(
    tmp_path: Path, index: Index, embedder
) -> None:
    index.ingest([ORIGINAL])
    gen = tmp_path / "ix" / index.store.generations.manifest["generation_dir"]  # type: ignore[attr-defined]
    with sqlite3.connect(gen / "chunks.sqlite") as db:
        db.execute("DROP TABLE doc_dedup")
    old = Index(tmp_path / "ix", embedder)
    assert [d.duplicate_of for d in old.documents()] == [None]
    assert old.ingest([COPY]).duplicates == {"gazette-9": "herald-1"}
    assert Index(tmp_path / "ix", embedder).document("gazette-9").duplicate_of == "herald-1"  # type: ignore[union-attr]


def band_rows(index: Index) -> int:
    table = index.store.table  # type: ignore[attr-defined]
    return int(table.db.execute("SELECT count(*) FROM main.doc_dedup_bands").fetchone()[0])


def test_later_writes_find_copies_through_the_stored_bands(index: Index) -> None:
    ferry = article("herald-2", OTHER_STORY, "Herald", title="Ferry hearing")
    index.ingest([ORIGINAL])
    index.ingest([ferry])
    assert band_rows(index) == 2 * dedup.BANDS
    report = index.ingest(
        [COPY, article("gazette-10", WIRE.replace("45 million", "52 million"), "Gazette")]
    )
    assert report.duplicates == {"gazette-9": "herald-1"}  # the changed figure is news
    assert index.ingest(
        [article("courier-4", OTHER_STORY + "\n\nMore to come.", "Courier")]
    ).duplicates == {"courier-4": "herald-2"}
    assert index.delete("herald-2")  # promotes courier-4; herald-2's bands stay until purged
    report = index.ingest([article("post-5", "ORVANA (Wire) — " + OTHER_STORY, "Post")])
    assert report.duplicates == {"post-5": "courier-4"}


def test_an_index_from_before_band_rows_gets_them_on_the_next_write(
    tmp_path: Path, index: Index, embedder
) -> None:
    index.ingest([ORIGINAL])
    gen = tmp_path / "ix" / index.store.generations.manifest["generation_dir"]  # type: ignore[attr-defined]
    with sqlite3.connect(gen / "chunks.sqlite") as db:
        db.execute("DROP TABLE doc_dedup_bands")
    old = Index(tmp_path / "ix", embedder)
    assert old.ingest([COPY]).duplicates == {"gazette-9": "herald-1"}
    assert band_rows(old) == 2 * dedup.BANDS  # both articles, so the next write looks up
    third = article("courier-3", copy_of(WIRE).replace("Tuesday", "Tuesday evening"), "Courier")
    assert old.ingest([third]).duplicates == {"courier-3": "herald-1"}


def test_milvus_says_dedup_is_faiss_only(tmp_path: Path, embedder) -> None:
    index = Index(tmp_path / "mv", embedder, StoreConfig(kind="milvus"))
    try:
        report = index.ingest([ORIGINAL, COPY])
        assert report.duplicates == {} and index.chunk_ids("gazette-9")
        assert "FAISS store only" in report.summary()
    finally:
        index.close()


def test_the_api_ingest_report_names_the_merged_copies(
    tmp_path: Path, make_pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from rag.serve import ServeConfig, create_app

    monkeypatch.delenv("RAG_DEDUP", raising=False)
    monkeypatch.setenv("RAG_STORE", "faiss")
    app = create_app(make_pipeline(tmp_path / "ix"), ServeConfig(ui=False))
    rows = [{"text": d.text, "title": d.title, "source": d.source} for d in (ORIGINAL, COPY)]
    with TestClient(app) as client:
        r = client.post("/v1/documents", json={"documents": rows})
    assert r.status_code == 200, r.text
    body = r.json()
    original, copy = body["added"]
    assert body["duplicates"] == {copy: original}
    assert "1 merged as duplicates" in body["summary"]


def test_rag_ingest_reports_merged_copies_and_can_opt_out(tmp_path: Path) -> None:
    """One slow end-to-end check of the command line (two processes load the embedder)."""
    import json

    from cli_run import rag

    news = tmp_path / "news.jsonl"
    rows = [dataclasses.asdict(d) for d in (ORIGINAL, COPY)]
    news.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    merged = rag("ingest", str(news), "-q", "--index", str(tmp_path / "a"))
    assert merged.returncode == 0, merged.stderr
    assert "2 added" in merged.stdout and "1 merged as duplicates" in merged.stdout
    kept = rag("ingest", str(news), "-q", "--no-dedup", "--index", str(tmp_path / "b"))
    assert kept.returncode == 0, kept.stderr
    assert "2 added" in kept.stdout and "merged" not in kept.stdout


# ---- citations ---------------------------------------------------------------------------


def test_citations_name_the_other_outlets(tmp_path: Path, embedder, generator) -> None:
    from rag import Pipeline

    pipeline = Pipeline(tmp_path / "p", embedder=embedder, generator=generator)
    pipeline.ingest(documents=[ORIGINAL, COPY])
    answer = pipeline.ask(
        "How much will the Lumen bridge cost?", as_of="2024-03-06", answerer="extractive"
    )
    cited = [c for c in answer.citations if c.doc_id == "herald-1"]
    assert cited and all(c.doc_id != "gazette-9" for c in answer.context)
    also = cited[0].also
    assert also == (AlsoPublished("gazette-9", "Gazette", COPY.url, COPY.title, COPY.date),)
    assert answer.to_dict()["citations"][0]["also"][0]["source"] == "Gazette"
    assert also_line(cited[0]) == f"also published by Gazette ({COPY.url})"
    html = render_answer(answer, lambda doc_id: None)
    assert "also published by" in html and f'href="{COPY.url}"' in html


def test_a_citation_without_copies_shows_nothing_extra() -> None:
    c = Citation(1, "a", "Title", None, "text", 0, 4, 1.0)
    assert also_line(c) is None and c.to_dict()["also"] == ()


def test_the_eval_index_cache_key_follows_the_dedup_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index built with copies merged is not reused for a run with RAG_DEDUP=0."""
    from evals.dataset import Dataset
    from evals.runner import index_key

    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"doc_id": "a", "title": "t", "text": "x"}\n', encoding="utf-8")
    dataset = Dataset("tiny", tmp_path, [], docs)
    monkeypatch.delenv("RAG_DEDUP", raising=False)
    merged = index_key(dataset)
    monkeypatch.setenv("RAG_DEDUP", "0")
    assert index_key(dataset) != merged
    monkeypatch.setenv("RAG_DEDUP", "1")
    assert index_key(dataset) == merged
