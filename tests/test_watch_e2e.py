"""`rag watch` and `rag serve --watch` as a user runs them, and a watcher killed mid-round."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_run import RAG, env, free_port, rag
from test_watch import BODY, item, page, rss
from test_watch_site import Site, serve_site

from embeddings.embedder import Embedder
from embeddings.index import Index, content_hash
from embeddings.sources.state import STATE_FILE

FAST_FLAGS = ["--delay", "0", "--timeout", "2"]


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as s:
        yield s


def news_site(site: Site, stories: int = 1) -> str:
    """A feed of `stories` entries; the first is the bridge story the questions ask about."""
    site.put("/bridge.html", page("Harbor bridge reopens after repairs"))
    items = [item(site, "bridge", "Harbor bridge reopens after repairs")]
    for i in range(1, stories):
        body = BODY.replace("Harbor bridge", f"Pier {i} walkway").replace("42", str(100 + i))
        site.put(f"/s{i}.html", page(f"Pier {i} walkway", body))
        items.append(item(site, f"s{i}", f"Pier {i} walkway reopens"))
    site.put("/feed.xml", rss(items), content_type="application/rss+xml")
    return site.url("/feed.xml")


def news_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "library.md").write_text(
        "---\ntitle: Library hours\ndate: 2026-11-28\nsource: Town Hall\n---\n"
        "The Elm Street library will stay open until 10 pm from December, the council said."
    )
    return folder


def test_watch_once_then_ask_answers_from_the_feed_with_its_link(
    site: Site, tmp_path: Path
) -> None:
    feed, folder, index = news_site(site), news_folder(tmp_path), tmp_path / "index"
    out = rag("watch", feed, str(folder), "--index", str(index), "--once", *FAST_FLAGS)
    assert out.returncode == 0, out.stderr
    lines = [line.split("] ", 1)[1] for line in out.stdout.splitlines()]
    assert lines == [
        "Harbor Gazette: 1 new, 0 updated, 0 unchanged, 0 removed, 0 failed",
        f"{folder}: 1 new, 0 updated, 0 unchanged, 0 removed, 0 failed",
    ]
    q = "How much did the Harbor bridge repairs cost?"
    answer = json.loads(rag("ask", q, "--index", str(index), "--json").stdout)
    assert "42 million" in answer["text"]
    assert answer["citations"][0]["url"] == site.url("/bridge.html")
    assert answer["citations"][0]["source"] == "Harbor Gazette"
    assert site.url("/bridge.html") in rag("ask", q, "--index", str(index)).stdout  # the link
    # Every source failing is a failed run for cron.
    bad = rag("watch", site.url("/nothing.xml"), "--index", str(index), "--once", *FAST_FLAGS)
    assert bad.returncode == 1
    assert bad.stderr.strip().endswith("failed: feed: HTTP 404 Not Found")
    usage = rag("watch", "ftp://x/feed", "--index", str(index), "--once")
    assert (usage.returncode, usage.stderr.strip()) == (
        2,
        "error: cannot watch 'ftp://x/feed': give an http(s) feed URL or a folder",
    )


def test_serve_watch_lists_both_sources(site: Site, tmp_path: Path) -> None:
    feed, folder, index = news_site(site), news_folder(tmp_path), tmp_path / "index"
    # A new index: `rag serve` alone refuses one (a mistyped --index must not become a new
    # index), but a watcher creates it, as `rag watch` does.
    port = free_port()
    args = ["serve", "--index", str(index), "--port", str(port), "--no-ui"]
    proc = subprocess.Popen(
        [*RAG, *args, "--watch", feed, str(folder), "--watch-every", "1h"],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/v1/sources"
    try:
        for _ in range(600):
            try:
                got = httpx.get(url, timeout=2).json()
                if len(got["sources"]) == 2 and all(s["last_round"] for s in got["sources"]):
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.2)
        else:
            raise AssertionError("the watcher did not finish a round in 120 s")
        by_kind = {s["kind"]: s for s in got["sources"]}
        assert by_kind["feed"]["name"] == "Harbor Gazette"
        assert by_kind["feed"]["last_round"]["new"] == 1
        assert by_kind["folder"]["source"] == str(folder)
        assert by_kind["folder"]["last_round"]["new"] == 1
        assert by_kind["folder"]["last_round"]["error"] is None
        assert got["newest"][0]["url"] == site.url("/bridge.html")
        docs = httpx.get(f"http://127.0.0.1:{port}/v1/documents", timeout=10).json()
        assert {d["title"] for d in docs["documents"]} >= {
            "Harbor bridge reopens after repairs",
            "Library hours",
        }
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def _consistent(index_dir: Path, embedder: Embedder) -> int:
    """Every article the seen-state claims is in the index, as it was seen; returns how many."""
    index = Index(index_dir, embedder)
    state_file = index_dir / STATE_FILE
    if not state_file.exists():
        return 0
    state = json.loads(state_file.read_text())
    claimed = 0
    for src in state["sources"].values():
        for entry in src.get("entries", {}).values():
            doc = index.document(entry["doc_id"])
            assert doc is not None, f"seen but not indexed: {entry['url']}"
            assert content_hash(doc) == entry["hash"]
            claimed += 1
        for f in src.get("files", {}).values():
            assert all(index.document(d) is not None for d in f["doc_ids"])
    index.close()
    return claimed


def test_a_watcher_killed_mid_round_loses_nothing(
    site: Site, tmp_path: Path, embedder: Embedder
) -> None:
    stories = 40
    feed, folder, index = news_site(site, stories), news_folder(tmp_path), tmp_path / "index"
    cmd = [*RAG, "watch", feed, str(folder), "--index", str(index), *FAST_FLAGS]
    rng = random.Random(21)
    kills = 0
    for _ in range(4):
        left = stories - _consistent(index, embedder)
        if not left:
            break
        before = len(site.log)
        proc = subprocess.Popen([*cmd, "--once"], env=env(), stdout=subprocess.DEVNULL)
        # Killed after a random number of this round's page requests (feed request first).
        target = before + 1 + rng.randint(1, left)
        while len(site.log) < target and proc.poll() is None:
            time.sleep(0.002)
        kills += proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        _consistent(index, embedder)
    assert kills >= 2  # most runs were killed mid-round, not after it
    out = subprocess.run([*cmd, "--once"], env=env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert " 0 failed" in out.stdout.splitlines()[0]
    assert _consistent(index, embedder) == stories
    again = subprocess.run([*cmd, "--once"], env=env(), capture_output=True, text=True, timeout=300)
    assert "Harbor Gazette: 0 new, 0 updated, 40 unchanged" in again.stdout
    assert len(Index(index, embedder).documents()) == stories + 1
    assert sys.platform != "win32"


def test_ctrl_c_ends_the_loop_cleanly(site: Site, tmp_path: Path) -> None:
    feed, index = news_site(site), tmp_path / "index"
    cmd = [*RAG, "watch", feed, "--index", str(index), "--every", "1h", *FAST_FLAGS]
    proc = subprocess.Popen(
        cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the round's line: the watcher now waits for the next
    assert "Harbor Gazette: 1 new" in first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert err.strip() == "stopping after the current article (Ctrl-C again to quit now)"
    assert "Traceback" not in err
