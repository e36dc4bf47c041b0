"""What `rag` says while it works: on a terminal only, never under --json; and the timings
and filters of `rag ask --json`."""

from __future__ import annotations

import json
from pathlib import Path

from cli_run import rag, rag_on_terminal

QUESTION = "How many vaccine doses has the US delivered abroad?"


def test_first_ask_on_an_empty_default_index_says_what_it_is_doing(tmp_path: Path) -> None:
    default = {"RAG_INDEX_DIR": str(tmp_path / "default-index")}  # no --index: the default
    run = rag_on_terminal("ask", QUESTION, until="seed article", extra_env=default)
    assert "first run: loading the models and indexing the bundled seed article" in run.terminal


def test_ingest_shows_a_chunks_bar_on_a_terminal(tmp_path: Path) -> None:
    news = tmp_path / "news"
    news.mkdir()
    for i in range(3):
        (news / f"{i}.txt").write_text(f"Article {i}. The harbour reopened after {i} months.\n")
    run = rag_on_terminal("ingest", str(news), "--index", str(tmp_path / "idx"))
    assert run.returncode == 0 and "3 added" in run.stdout
    assert "embedding" in run.terminal and "3/3" in run.terminal and "chunk/s" in run.terminal


def test_json_is_quiet_on_a_terminal_and_times_model_loading_apart(fresh_index_dir: Path) -> None:
    run = rag_on_terminal("ask", QUESTION, "--json", "--index", str(fresh_index_dir))
    assert run.returncode == 0, run.terminal
    assert run.terminal.strip() == ""
    answer = json.loads(run.stdout)
    assert "330 million" in answer["text"]
    assert list(answer["timings"])[:2] == ["load", "retrieve"]


def test_date_and_source_filters(fresh_index_dir: Path) -> None:
    def ask(*flags: str) -> dict:  # type: ignore[type-arg]
        proc = rag("ask", QUESTION, "--json", "--answerer", "extractive", *flags,
                   "--index", str(fresh_index_dir))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    assert not ask("--from", "2021-12-22", "--to", "2021-12-22")["refused"]  # the seed's day
    assert ask("--to", "2021-12-21")["refused"]
    assert ask("--source", "Nowhere Daily")["refused"]
