"""The packaged model under llama.cpp: its F16 copy, candidate scoring in one batch, and the
thread count that backs off when another process is busy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.models.generate import Messages
from rag.models.llama import (
    LlamaCppGenerator,
    busy_neighbours,
    packaged_model_path,
    prompt_threads,
    widened_model_path,
)
from rag.reader.answerers import build_messages
from rag.settings import load_settings
from rag.types import Citation

SENTENCES = [
    "Secretary of State Antony Blinken said the US had delivered 330 million doses abroad.",
    "The summit took place in Jakarta on Tuesday.",
]


def messages(question: str) -> Messages:
    context = [Citation(n, "d", "t", None, s, 0, len(s), 1.0) for n, s in enumerate(SENTENCES, 1)]
    return build_messages(question, context)


def test_the_packaged_model_is_widened_once_into_the_cache(tmp_path: Path) -> None:
    source = packaged_model_path()
    first = widened_model_path(source, tmp_path)
    assert first != source and first.parent == tmp_path and first.suffix == ".gguf"
    made = first.stat().st_mtime_ns
    assert widened_model_path(source, tmp_path) == first
    assert first.stat().st_mtime_ns == made, "the copy is reused, not made again"
    assert [p.name for p in tmp_path.iterdir()] == [first.name], "no temporary file is left"


def test_a_damaged_copy_is_set_aside_and_the_packaged_file_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_MODEL_CACHE", str(tmp_path))
    source = packaged_model_path()
    damaged = tmp_path / f"{source.stem}-{source.stat().st_size}.F16.gguf"
    damaged.write_bytes(b"GGUF" + b"\0" * 64)  # a copy cut short, say by a full disk
    generator = LlamaCppGenerator(cache_dir=load_settings().runtime.model_cache)
    assert generator.model_path == source
    assert not damaged.exists(), "the next start makes a good copy"
    assert generator.score(messages("Where did the summit take place?"), ["Jakarta"])[0] < 0


def test_an_unwritable_cache_runs_the_packaged_file_as_it_is(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    source = packaged_model_path()
    assert widened_model_path(source, blocker / "models") == source


@pytest.mark.parametrize(
    ("question", "right"),
    [
        ("Who is the Secretary of State?", "Antony Blinken"),
        ("Where did the summit take place?", "Jakarta"),
        ("How many doses has the US delivered abroad?", "330 million"),
    ],
)
def test_the_right_answer_is_the_likeliest(
    generator: LlamaCppGenerator, question: str, right: str
) -> None:
    answers = ["Antony Blinken", "Jakarta", "330 million", "Tuesday"]
    scores = dict(zip(answers, generator.score(messages(question), answers), strict=True))
    assert max(scores, key=scores.__getitem__) == right


def test_scores_do_not_depend_on_how_candidates_are_batched(
    generator: LlamaCppGenerator,
) -> None:
    question = messages("Who said what about the doses?")
    answers = ["Antony Blinken", "Jakarta", "330 million", "Tuesday", "the US", "doses", "Blinken"]
    answers += ["The summit", "Secretary of State Antony Blinken"]
    together = generator.score(question, answers)  # more than one decode's worth of sequences
    generator.score(messages("When was the summit?"), ["Tuesday"])  # another prompt in the cache
    alone = [generator.score(question, [a])[0] for a in answers]
    assert together == pytest.approx(alone, abs=0.02)
    assert generator.score(question, []) == []


def test_a_busy_neighbour_takes_a_core_from_the_prompt_read() -> None:
    if busy_neighbours() is None:
        pytest.skip("no /proc/loadavg on this platform")
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert (busy_neighbours() or 0) >= 1
        assert prompt_threads() <= max(1, (os.cpu_count() or 2) - 1)
    finally:
        spin.kill()
        spin.wait()


def test_threads_fit_the_cores_this_process_may_use() -> None:
    if not hasattr(os, "sched_getaffinity") or not shutil.which("taskset"):
        pytest.skip("no CPU affinity or taskset on this platform")
    code = (
        "from rag.models.llama import llama_threads, prompt_threads; "
        "print(llama_threads(), prompt_threads())"
    )
    one_core = subprocess.run(
        ["taskset", "-c", "0", sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "RAG_THREADS": ""},
    )
    assert one_core.returncode == 0, one_core.stderr
    assert one_core.stdout.split() == ["1", "1"]
