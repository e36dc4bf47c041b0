"""A reader refreshing while a writer commits and prunes the generation it is opening
(issue 19, Also): the interleaving is forced, not waited for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from embeddings import faiss_store
from embeddings.errors import IndexUnavailableError
from embeddings.index import Index
from embeddings.types import Document

BRIDGE = "The Orvana bridge opened on Monday. It cost 48 million euros."
FERRY = "The Telmi ferry made its last crossing. The harbour office sold the boat."


def test_a_generation_pruned_under_a_reader_is_not_damage(
    tmp_path: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_STORE", "faiss")
    writer = Index(tmp_path / "ix", embedder)
    writer.ingest([Document("bridge", "Bridge", BRIDGE)])
    reader = Index(tmp_path / "ix", embedder)
    assert reader.document("bridge") is not None
    writer.ingest([Document("ferry", "Ferry", FERRY)])  # the reader must pick this up

    load = faiss_store.FaissVectors.load
    raced: list[Path] = []

    def load_after_a_commit(path: Path) -> Any:
        if not raced:  # the reader has read the manifest and is opening its generation
            raced.append(Path(path))
            writer.ingest([Document("pier", "Pier", "The Quenby pier reopened in May.")])
            assert not Path(path).exists(), "the writer pruned the generation being opened"
        return load(path)

    monkeypatch.setattr(faiss_store.FaissVectors, "load", staticmethod(load_after_a_commit))
    reader.refresh()
    assert raced
    assert {d.doc_id for d in reader.documents()} == {"bridge", "ferry", "pier"}


def test_damage_is_still_reported(tmp_path: Path, embedder: Any) -> None:
    writer = Index(tmp_path / "ix", embedder)
    writer.ingest([Document("bridge", "Bridge", BRIDGE)])
    reader = Index(tmp_path / "ix", embedder)
    writer.ingest([Document("ferry", "Ferry", FERRY)])
    gen = max((tmp_path / "ix").glob("gen-*"))
    for f in gen.iterdir():
        f.write_bytes(b"not an index")
    with pytest.raises(IndexUnavailableError, match="damaged"):
        reader.refresh()
