"""One pipeline under many threads, and a reader beside a writer in another process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from embeddings.index import Index
from rag.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent

# Answerable, unanswerable and out-of-corpus: each takes a different path (extracted span,
# quote, refusal), so a race in any of them shows up as a different answer.
QUESTIONS = [
    "Who is the US Secretary of State?",
    "To how many countries has the US delivered vaccine doses?",
    "How many vaccine doses did the US deliver to Lithuania?",
    "Who won the 1998 football world cup?",
]


def _key(answer) -> tuple:  # type: ignore[no-untyped-def]
    """Everything a user sees of an answer (timings aside)."""
    d = answer.to_dict()
    d.pop("timings")
    return tuple(sorted((k, repr(v)) for k, v in d.items()))


def test_eight_threads_get_exactly_the_serial_answers(seed_pipeline: Pipeline) -> None:
    serial = {q: _key(seed_pipeline.ask(q)) for q in QUESTIONS}
    # each thread asks every question, starting at a different one, so all four run at once
    jobs = [QUESTIONS[i % 4 :] + QUESTIONS[: i % 4] for i in range(8)]

    def run(questions: list[str]) -> list[tuple[str, tuple]]:
        return [(q, _key(seed_pipeline.ask(q))) for q in questions]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [r for rs in pool.map(run, jobs) for r in rs]
    assert len(results) == 32
    for question, key in results:
        assert key == serial[question], question


# Step i adds article w{i}, except every fourth step, which deletes the article added just
# before: both processes replay the same steps to know what generation base+i must hold.
STEPS = 12
WRITER = textwrap.dedent(
    """
    import sys
    from embeddings.embedder import Embedder
    from embeddings.index import Index
    from embeddings.types import Document
    sys.path.insert(0, sys.argv[2])
    from test_concurrency import STEPS, extra_article
    index = Index(sys.argv[1], Embedder())
    for i in range(1, STEPS + 1):
        if i % 4 == 0:
            index.delete(f"w{i - 1}")
        else:
            index.ingest([Document(f"w{i}", f"w{i}", extra_article(i))])
    """
)


def extra_article(i: int) -> str:
    """Articles far from the seed questions, so the answers must not change."""
    return (
        f"The orchard of Velmora Valley harvested {i * 100} crates of quince this autumn. "
        "Beekeepers in the valley reported a wet spring and a late bloom. "
        "The cooperative plans a new cider press for next season."
    )


def expected_extras(step: int) -> set[str]:
    docs: set[str] = set()
    for i in range(1, step + 1):
        if i % 4 == 0:
            docs.discard(f"w{i - 1}")
        else:
            docs.add(f"w{i}")
    return docs


def test_a_reader_beside_a_writing_process_sees_only_whole_generations(
    fresh_index_dir: Path, make_pipeline
) -> None:
    pipeline = make_pipeline(fresh_index_dir)
    question = QUESTIONS[0]
    expected = _key(pipeline.ask(question))
    base = int(pipeline.index.generation or 0)
    seed_docs = {d.doc_id for d in pipeline.documents()}
    script = fresh_index_dir.parent / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writer = subprocess.Popen(
        [sys.executable, str(script), str(fresh_index_dir), str(Path(__file__).parent)],
        env=env,
        stderr=subprocess.PIPE,
    )
    seen: set[int] = set()
    try:
        while True:
            done = writer.poll() is not None  # one more round after the last commit
            answer = pipeline.ask(question)
            assert _key(answer) == expected
            seen.add(check_whole_generation(pipeline.index, base, seed_docs))
            if done:
                break
    finally:
        if writer.poll() is None:
            writer.kill()
        _, err = writer.communicate()
    assert writer.returncode == 0, err.decode()[-2000:]
    assert max(seen) == base + STEPS  # the reader followed the writer to the end
    assert len(seen) >= 2, "the reader never ran while the writer was writing"
    assert expected == _key(make_pipeline(fresh_index_dir).ask(question))


def check_whole_generation(index: Index, base: int, seed_docs: set[str]) -> int:
    """The loaded generation holds exactly what the writer had written by then."""
    generation = int(index.generation or 0)
    docs = {d.doc_id for d in index.documents()}
    assert docs == seed_docs | expected_extras(generation - base), generation
    (n_chunks,) = index.db.execute("SELECT count(*) FROM chunks").fetchone()
    (n_text,) = index.db.execute("SELECT count(*) FROM chunks_fts").fetchone()
    assert n_chunks == n_text == len(index) > 0
    return generation
