"""Kill -9 a writer: the index opens whole and stays writable (the small CI kill loop)."""

from __future__ import annotations

import json
from pathlib import Path

from embeddings.index import Index
from embeddings.types import Document
from evals import killloop


def test_a_generation_left_by_a_killed_writer_does_not_block_the_next_write(
    tmp_path: Path, embedder
) -> None:
    """A kill between renaming the new generation into place and swapping the manifest left
    `gen-N+1` behind, and every later write failed with "Directory not empty". Temporary
    folders of killed writers are cleared by the next write too."""
    path = tmp_path / "idx"
    Index(path, embedder).ingest([Document("a", "a", killloop.article("a", 0))])
    generation = json.loads((path / "manifest.json").read_text())["generation"]
    orphan = path / f"gen-{generation + 1:06d}"
    orphan.mkdir()
    (orphan / "vectors.faiss").write_bytes(b"half of a write")
    for pid in (101, 102):  # writers killed while writing their temporary generation
        (path / f".tmp-gen-{generation + 1:06d}-{pid}").mkdir()

    index = Index(path, embedder)
    index.ingest([Document("b", "b", killloop.article("b", 0))])
    assert {d.doc_id for d in Index(path, embedder).documents()} == {"a", "b"}
    assert killloop.leftovers(path) == ()


def test_three_random_kills_leave_a_whole_index(tmp_path: Path, embedder) -> None:
    """`python -m evals.killloop` in small: three SIGKILLs at random moments of random writes."""
    results = killloop.run(tmp_path / "idx", kills=3, seed=7, max_delay=2.0, log=False)
    assert [r.problem for r in results] == [None, None, None]
    assert results[-1].opened > 0  # the worker did write before being killed
