"""The followed sources as the API (GET /v1/sources) and the UI panel show them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_watch import item, page, rss
from test_watch_site import FAST, Site, serve_site

from embeddings.sources import Watcher, parse_sources
from embeddings.sources.state import STATE_FILE
from rag.serve import ServeConfig, create_app
from rag.ui.sources import sources_html


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as s:
        yield s


@pytest.fixture
def watched(site: Site, fresh_index_dir: Path, make_pipeline) -> Iterator[tuple[TestClient, Path]]:
    """A served index with a hostile feed already watched once."""
    site.put("/a.html", page("Harbor bridge reopens"))
    evil = item(site, "a", "&lt;script&gt;alert(1)&lt;/script&gt; Bridge")
    site.put("/feed.xml", rss([evil], title="Gazette &lt;img src=x onerror=alert(2)&gt;"))
    pipeline = make_pipeline(fresh_index_dir)
    Watcher(pipeline.index, parse_sources([site.url("/feed.xml")]), fetch=FAST).run_round()
    with TestClient(create_app(pipeline, ServeConfig(ui=False))) as client:
        yield client, fresh_index_dir


def test_get_sources_lists_the_last_round_and_newest_articles(
    watched: tuple[TestClient, Path], site: Site
) -> None:
    client, _ = watched
    body = client.get("/v1/sources").json()
    [src] = body["sources"]
    assert src["source"] == site.url("/feed.xml") and src["kind"] == "feed"
    assert src["name"] == "Gazette <img src=x onerror=alert(2)>"
    assert src["last_round"]["new"] == 1 and src["last_round"]["error"] is None
    assert body["newest"][0]["url"] == site.url("/a.html")


def test_a_damaged_state_file_is_a_503_with_the_fix(watched: tuple[TestClient, Path]) -> None:
    client, index_dir = watched
    (index_dir / STATE_FILE).write_text("{not json")
    r = client.get("/v1/sources")
    assert r.status_code == 503
    assert "move it away to start over" in r.json()["error"]["message"]


def test_the_panel_escapes_what_feeds_say(watched: tuple[TestClient, Path]) -> None:
    _, index_dir = watched
    html = sources_html(index_dir)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "1 new, 0 updated" in html
    assert 'href="http://127.0.0.1:' in html


def test_the_panel_says_how_to_start_when_nothing_is_followed(tmp_path: Path) -> None:
    assert "No sources followed" in sources_html(tmp_path)
