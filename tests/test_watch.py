"""`rag watch` rounds over a real index: feeds from a site on 127.0.0.1, and folders."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_watch_site import FAST, Site, serve_site

from embeddings.embedder import Embedder
from embeddings.index import Index
from embeddings.sources import Watcher, newest_articles, parse_sources, read_sources
from embeddings.sources.state import STATE_FILE

BODY = (
    "<p>The Harbor bridge reopened to traffic on Monday after eight months of repairs that "
    "cost 42 million dollars, the city's transport department said.</p><p>Engineer Maria "
    "Okafor, who led the project, said the new steel cables should last for sixty years.</p>"
)


def page(title: str, body: str = BODY) -> str:
    return (
        f"<html><head><title>{title}</title></head>"
        f"<body><article><h1>{title}</h1>{body}</article></body></html>"
    )


def rss(items: list[dict[str, str]], title: str = "Harbor Gazette") -> str:
    parts = []
    for it in items:
        tags = "".join(f"<{k}>{v}</{k}>" for k, v in it.items())
        parts.append(f"<item>{tags}</item>")
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
        f"<link>http://127.0.0.1/</link>{''.join(parts)}</channel></rss>"
    )


def item(site: Site, slug: str, title: str, date: str = "Mon, 30 Nov 2026 08:00:00 GMT") -> dict:
    return {
        "title": title,
        "link": site.url(f"/{slug}.html"),
        "guid": f"id-{slug}",
        "pubDate": date,
        "description": "Short teaser.",
    }


def watcher(index: Index, *sources: str) -> Watcher:
    return Watcher(index, parse_sources(list(sources)), fetch=FAST)


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as s:
        yield s


@pytest.fixture
def index(tmp_path: Path, embedder: Embedder) -> Index:
    return Index(tmp_path / "index", embedder)


def test_a_feed_becomes_articles_with_the_feeds_metadata(site: Site, index: Index) -> None:
    site.put("/bridge.html", page("Bridge page title"))
    site.put(
        "/feed.xml",
        rss([item(site, "bridge", "Harbor bridge reopens")]),
        content_type="application/rss+xml",
    )
    w = watcher(index, site.url("/feed.xml"))
    report = w.run_round().sources[0]
    assert report.line() == "Harbor Gazette: 1 new, 0 updated, 0 unchanged, 0 removed, 0 failed"
    [doc] = index.documents()
    assert (doc.title, doc.date, doc.source, doc.url) == (
        "Harbor bridge reopens",
        "2026-11-30",
        "Harbor Gazette",
        site.url("/bridge.html"),
    )
    assert "42 million dollars" in doc.text and "Okafor" in doc.text
    hits = index.lexical_search("Okafor cables", 3)
    assert hits and index.chunks([hits[0][0]])[hits[0][0]].url == site.url("/bridge.html")


def test_the_next_round_and_a_restart_fetch_nothing_again(site: Site, index: Index) -> None:
    site.put("/bridge.html", page("Bridge"))
    site.put("/feed.xml", rss([item(site, "bridge", "Harbor bridge reopens")]))
    watcher(index, site.url("/feed.xml")).run_round()
    generation = index.generation
    again = watcher(index, site.url("/feed.xml")).run_round().sources[0]  # a new process
    assert (again.new, again.unchanged, again.failed) == (0, 1, 0)
    assert len(site.hits("/bridge.html")) == 1  # the page was not asked for again
    assert site.hits("/feed.xml")[-1].status == 304  # the feed answered "not modified"
    assert index.generation == generation  # and nothing was written


def test_an_updated_entry_replaces_its_article(site: Site, index: Index) -> None:
    site.put("/bridge.html", page("Bridge"))
    site.put("/feed.xml", rss([item(site, "bridge", "Harbor bridge reopens")]))
    w = watcher(index, site.url("/feed.xml"))
    w.run_round()
    site.put("/bridge.html", page("Bridge", BODY.replace("42 million", "45 million")))
    site.put("/feed.xml", rss([item(site, "bridge", "Harbor bridge reopens, cost revised")]))
    report = w.run_round().sources[0]
    assert (report.new, report.updated) == (0, 1)
    [doc] = index.documents()
    assert doc.title == "Harbor bridge reopens, cost revised" and "45 million" in doc.text
    assert site.hits("/bridge.html")[-1].headers.get("if-none-match")  # asked conditionally


def test_a_page_that_fails_falls_back_to_a_long_summary_else_is_reported(
    site: Site, index: Index
) -> None:
    long_summary = "The council approved the new harbor budget on Friday. " * 6
    items = [
        {**item(site, "gone", "Budget approved"), "description": long_summary},
        item(site, "also-gone", "Teaser only"),
    ]
    site.put("/feed.xml", rss(items))
    report = watcher(index, site.url("/feed.xml")).run_round().sources[0]
    assert (report.new, report.failed) == (1, 1)
    assert (
        "entry 'Budget approved': page HTTP 404 Not Found; indexed the feed's summary instead"
        in report.problems
    )
    assert (
        "entry 'Teaser only': page HTTP 404 Not Found, and the feed's summary is too short to index"
        in report.problems
    )
    [doc] = index.documents()
    assert doc.title == "Budget approved" and "harbor budget" in doc.text
    # The failed entry is tried again next round (the feed is not taken as "not modified").
    site.put("/also-gone.html", page("Teaser only"))
    report = watcher(index, site.url("/feed.xml")).run_round().sources[0]
    assert (report.new, report.unchanged, report.failed) == (1, 1, 0)


def test_a_folder_follows_new_changed_and_deleted_files(tmp_path: Path, index: Index) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "library.txt").write_text(
        "The Elm Street library will open until 10 pm from December."
    )
    (folder / "parks.md").write_text("# Parks budget\n\nThe council voted 3 million for parks.")
    w = watcher(index, str(folder))
    assert (
        w.run_round()
        .sources[0]
        .line()
        .endswith("2 new, 0 updated, 0 unchanged, 0 removed, 0 failed")
    )
    (folder / "library.txt").write_text(
        "The Elm Street library will open until 11 pm from January."
    )
    (folder / "parks.md").unlink()
    (folder / "notes.pdf").write_bytes(b"%PDF")  # not a supported type: ignored, as by ingest
    report = w.run_round().sources[0]
    assert (report.new, report.updated, report.removed) == (0, 1, 1)
    [doc] = index.documents()
    assert "11 pm" in doc.text and doc.path == str(folder / "library.txt")
    report = w.run_round().sources[0]
    assert (report.new, report.updated, report.unchanged, report.removed) == (0, 0, 1, 0)


def test_deleting_several_files_is_one_commit(tmp_path: Path, index: Index) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    topics = ["library hours", "parks budget", "bus routes", "school meals"]
    for n, topic in enumerate(topics):
        (folder / f"{n}.txt").write_text(f"The council discussed the {topic} on Monday.")
    w = watcher(index, str(folder))
    assert w.run_round().sources[0].new == 4
    before = index.generation
    for n in range(3):
        (folder / f"{n}.txt").unlink()
    assert w.run_round().sources[0].removed == 3
    assert index.generation == before + 1  # one generation, not one per article
    [doc] = index.documents()
    assert doc.path == str(folder / "3.txt")


def test_the_seen_state_is_in_the_index_folder_and_feeds_the_api_views(
    site: Site, tmp_path: Path, index: Index
) -> None:
    site.put("/bridge.html", page("Bridge"))
    site.put("/feed.xml", rss([item(site, "bridge", "Harbor bridge reopens")]))
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "hours.md").write_text("# Library hours\n\nThe library opens until 10 pm.")
    watcher(index, site.url("/feed.xml"), str(folder)).run_round()
    state = json.loads((index.path / STATE_FILE).read_text())
    assert set(state["sources"]) == {site.url("/feed.xml"), str(folder)}
    assert not [p for p in os.listdir(index.path) if p.startswith(".watch-state-")]  # no temp left
    views = {v.source: v for v in read_sources(index.path)}
    feed = views[site.url("/feed.xml")]
    assert (feed.kind, feed.name, feed.articles) == ("feed", "Harbor Gazette", 1)
    assert feed.last_round is not None and feed.last_round.new == 1
    assert views[str(folder)].last_round is not None
    newest = {a["title"]: a for a in newest_articles(index.path)}
    assert set(newest) == {"Harbor bridge reopens", "Library hours"}  # a feed's and a folder's
    assert newest["Harbor bridge reopens"]["url"] == site.url("/bridge.html")
    assert newest["Library hours"]["source"] == str(folder)


def test_two_watchers_on_one_index_are_refused(index: Index, tmp_path: Path) -> None:
    from embeddings.errors import IngestError

    w1, w2 = watcher(index, str(tmp_path)), watcher(index, str(tmp_path))
    rounds = w1.rounds(60, once=True)
    next(rounds)  # w1 holds the lock while its generator is open
    with pytest.raises(IngestError, match="another watcher is already following sources"):
        next(w2.rounds(60, once=True))
    rounds.close()


def test_the_state_forgets_the_oldest_entries_no_longer_listed(
    site: Site, index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    from embeddings.sources import feeds

    monkeypatch.setattr(feeds, "MAX_REMEMBERED", 3)
    for slug in "abcd":
        site.put(f"/{slug}.html", page(f"Story {slug}", BODY.replace("42", str(ord(slug)))))
    site.put("/feed.xml", rss([item(site, s, f"Story {s}") for s in "abc"]))
    watcher(index, site.url("/feed.xml")).run_round()
    site.put("/feed.xml", rss([item(site, "d", "Story d")]))
    watcher(index, site.url("/feed.xml")).run_round()
    entries = json.loads((index.path / STATE_FILE).read_text())["sources"][site.url("/feed.xml")]
    assert len(entries["entries"]) == 3 and any(k.endswith("id-d") for k in entries["entries"])
    assert len(index.documents()) == 4  # forgetting is about the state, never the articles
