"""`rag list`, `rag delete` by path, a mistyped --index, skipped files, help and --version."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
from pathlib import Path

import pytest
from cli_run import rag

from rag.cli import build_parser, main


def one_error_line(proc, text: str) -> str:  # type: ignore[no-untyped-def]
    assert proc.returncode != 0, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert text in lines[0], lines[0]
    return lines[0]


def write_news(folder: Path) -> None:
    folder.mkdir()
    (folder / "harbour.md").write_text(
        "---\ntitle: Harbour reopens\ndate: 2024-05-02\nsource: Harbour Times\n---\n"
        "The harbour reopened after 14 months of repairs.\n"
    )
    (folder / "feed.jsonl").write_text(
        json.dumps({"title": "Bridge vote", "text": "The council approved the bridge."}) + "\n"
    )


def test_list_shows_the_articles_and_delete_takes_the_ingested_path(tmp_path: Path) -> None:
    write_news(tmp_path / "news")
    ingested = rag("ingest", "news", "-q", "--index", "idx", cwd=tmp_path)  # relative paths
    assert ingested.returncode == 0, ingested.stderr
    index = str(tmp_path / "idx")

    rows = json.loads(rag("list", "--json", "--index", index).stdout)
    by_title = {r["title"]: r for r in rows}
    assert set(by_title) == {"Harbour reopens", "Bridge vote"}
    harbour = by_title["Harbour reopens"]
    assert harbour["date"] == "2024-05-02" and harbour["source"] == "Harbour Times"
    assert harbour["chunks"] == 1 and harbour["path"] == str(tmp_path / "news" / "harbour.md")
    text = rag("list", "--index", index).stdout.splitlines()
    assert len(text) == 2 and harbour["doc_id"] in text[0] and "Harbour reopens" in text[0]

    # From another folder, by the absolute path of the file, then by the folder.
    gone = rag("delete", str(tmp_path / "news" / "harbour.md"), "--index", index, cwd=Path("/"))
    assert gone.returncode == 0 and gone.stdout.strip() == f"deleted {harbour['doc_id']}"
    assert [r["title"] for r in json.loads(rag("list", "--json", "--index", index).stdout)] == [
        "Bridge vote"
    ]
    assert rag("delete", str(tmp_path / "news"), "--index", index).returncode == 0
    empty = rag("list", "--index", index)
    assert empty.returncode == 0 and empty.stdout == "" and "no articles" in empty.stderr
    one_error_line(rag("delete", "news/nothing.md", "--index", index), "no article")


@pytest.mark.parametrize(
    "command", [["ask", "Anything?"], ["chat"], ["list"], ["stats"], ["delete", "x"], ["ui"]]
)
def test_an_index_folder_that_does_not_exist_is_an_error(
    tmp_path: Path, command: list[str]
) -> None:
    typo = tmp_path / "idx-typo"
    line = one_error_line(rag(*command, "--index", str(typo)), f"no index at {typo}")
    assert "rag ingest" in line and not typo.exists()


@pytest.mark.parametrize("flag", ["--from", "--to"])
def test_a_malformed_filter_date_is_an_error(tmp_path: Path, flag: str) -> None:
    proc = rag("ask", "Anything?", flag, "2024-13-01", "--index", str(tmp_path / "idx"))
    one_error_line(proc, f"{flag} must be a YYYY-MM-DD date, not '2024-13-01'")


def test_skipped_files_one_line_each_and_exit_1_when_nothing_loaded(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.json").write_text("")
    (bad / "blank.txt").write_text("  \n")
    (bad / "feed.jsonl").write_text('{"text": ""}\n{oops\n')
    proc = rag("ingest", str(bad), "--index", str(tmp_path / "idx"))  # stderr is not a terminal
    assert proc.returncode == 1
    assert "0 added" in proc.stdout
    assert sorted(proc.stderr.strip().splitlines()) == [
        f"skipped {bad / 'blank.txt'}: empty file",
        f"skipped {bad / 'empty.json'}: empty file",
        f"skipped 2 records in {bad / 'feed.jsonl'}: line 1: no text; line 2: invalid JSON",
    ]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize(
    "command", ["ingest", "ask", "chat", "list", "delete", "stats", "eval", "ui"]
)
def test_help_explains_every_argument_and_offers_only_options_that_act(command: str) -> None:
    sub = _subparsers(build_parser([command]))[command]
    unexplained = [a.dest for a in sub._actions if not a.help]
    assert unexplained == []
    options = {s for a in sub._actions for s in a.option_strings}
    generates = command in ("ask", "chat", "eval", "ui")
    assert ({"--generator", "--model", "--base-url"} <= options) == generates
    assert ({"--from", "--to", "--source"} <= options) == (command in ("ask", "chat"))


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"rag {importlib.metadata.version('rag-news')}"
