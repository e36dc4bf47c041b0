"""The `rag` command as a user runs it: JSON answers, and one-line errors with no traceback."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RAG = [sys.executable, "-m", "rag.cli"]


def run(*args: str, index: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [*RAG, *args] + (["--index", str(index)] if index else [])
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], text: str) -> None:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert text in lines[0] and "Traceback" not in proc.stderr


def test_ask_json_answers_and_cites_the_seed(fresh_index_dir: Path) -> None:
    proc = run(
        "ask",
        "How many vaccine doses has the US delivered abroad?",
        "--json",
        index=fresh_index_dir,
    )
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert set(answer) >= {"question", "text", "refused", "citations", "timings"}
    assert "330 million" in answer["text"] and not answer["refused"]
    assert "330 million" in answer["citations"][0]["text"]

    refused = json.loads(
        run("ask", "Who won the 2022 World Cup?", "--json", index=fresh_index_dir).stdout
    )
    assert refused["refused"] is True


def test_ingest_stats_delete_round_trip(tmp_path: Path) -> None:
    article = tmp_path / "news" / "harbour.md"
    article.parent.mkdir()
    article.write_text("# Harbour reopens\n\nThe harbour reopened after 14 months of repairs.\n")
    (tmp_path / "news" / "broken.json").write_text("{not json")
    index = tmp_path / "idx"
    proc = run("ingest", str(tmp_path / "news"), "-q", index=index)
    assert proc.returncode == 0, proc.stderr
    assert "1 added" in proc.stdout and "broken.json" in proc.stderr
    stats = json.loads(run("stats", index=index).stdout)
    assert stats["documents"] == 1 and stats["chunks"] >= 1
    doc_id = "harbour"
    listed = run("ask", "How long were the harbour repairs?", "--json", index=index)
    doc_id = json.loads(listed.stdout)["citations"][0]["doc_id"]
    assert run("delete", doc_id, index=index).returncode == 0
    assert_one_line_error(run("delete", doc_id, index=index), "no article")


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_is_one_line_error(question: str, tmp_path: Path) -> None:
    assert_one_line_error(run("ask", question, index=tmp_path / "idx"), "question is empty")


def test_missing_path_is_one_line_error(tmp_path: Path) -> None:
    proc = run("ingest", str(tmp_path / "nope"), index=tmp_path / "idx")
    assert_one_line_error(proc, "no such file or directory")


def test_damaged_and_unreadable_indexes_are_one_line_errors(
    fresh_index_dir: Path, tmp_path: Path
) -> None:
    gen = next(p for p in fresh_index_dir.iterdir() if p.name.startswith("gen-"))
    (gen / "chunks.sqlite").write_bytes(b"garbage" * 100)
    assert_one_line_error(run("stats", index=fresh_index_dir), "damaged")

    a_file = tmp_path / "file-not-dir"
    a_file.write_text("x")
    assert_one_line_error(run("stats", index=a_file), "not a directory")

    shutil.rmtree(gen)
    assert_one_line_error(run("ask", "Anything?", index=fresh_index_dir), "rebuild")
