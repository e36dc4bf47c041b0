"""Bad feeds, bad pages, bad servers and bad files: each one clear line, nothing lost."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_watch import BODY, item, page, rss
from test_watch_site import Site, serve_site

from embeddings.embedder import Embedder
from embeddings.index import Index
from embeddings.sources import FetchOptions, Watcher, parse_every, parse_sources
from embeddings.sources.report import SourceReport

FAST = FetchOptions(timeout_s=0.5, retries=1, backoff_s=0.01, host_delay_s=0.0, max_bytes=1_000_000)


@pytest.fixture
def site() -> Iterator[Site]:
    with serve_site() as s:
        yield s


@pytest.fixture
def index(tmp_path: Path, embedder: Embedder) -> Index:
    return Index(tmp_path / "index", embedder)


def one_round(index: Index, *sources: str) -> SourceReport:
    return Watcher(index, parse_sources(list(sources)), fetch=FAST).run_round().sources[0]


def test_a_feed_that_is_not_xml_fails_in_one_line(site: Site, index: Index) -> None:
    site.put("/feed.xml", "<html><body><p>Welcome to our shop</p></body></html>")
    r = one_round(index, site.url("/feed.xml"))
    assert r.line() == (
        f"127.0.0.1:{site.port}: failed: not an RSS or Atom feed: no <rss>, <feed> or <rdf> element"
    )
    site.put("/json", '{"items": []}', content_type="application/json")
    r = one_round(index, site.url("/json"))
    assert r.error == "not an RSS or Atom feed: not well-formed (invalid token)"
    assert len(index) == 0


def test_truncated_xml_keeps_the_whole_entries_and_says_so(site: Site, index: Index) -> None:
    site.put("/a.html", page("Bridge"))
    whole = rss([item(site, "a", "Harbor bridge reopens"), item(site, "b", "Second story")])
    second = whole.index("<item>", whole.index("</item>"))
    site.put("/feed.xml", whole[: whole.index("</title>", second) + len("</title>")])
    r = one_round(index, site.url("/feed.xml"))
    assert r.new == 1 and r.failed == 1
    assert r.problems[0].startswith("feed XML is malformed (")
    assert (
        r.problems[1]
        == "entry 'Second story': no link, and the feed's summary is too short to index"
    )
    assert [d.title for d in index.documents()] == ["Harbor bridge reopens"]


def test_duplicate_guids_and_missing_dates(site: Site, index: Index) -> None:
    site.put("/a.html", page("A"))
    site.put("/b.html", page("B", BODY.replace("bridge", "tunnel")))
    first = {k: v for k, v in item(site, "a", "First").items() if k != "pubDate"}
    dup = {**item(site, "b", "Same id again"), "guid": "id-a"}
    site.put("/feed.xml", rss([first, dup]))
    r = one_round(index, site.url("/feed.xml"))
    assert (r.new, r.failed) == (1, 0)
    assert "1 entries repeat an id already in the feed; kept the first" in r.problems
    [doc] = index.documents()
    assert doc.title == "First" and doc.date is None  # undated, not a guessed date


def test_a_50_mb_page_is_capped_and_reported(site: Site, index: Index) -> None:
    site.put("/huge.html", "", stream_bytes=50_000_000)
    site.put("/feed.xml", rss([item(site, "huge", "Huge page")]))
    r = one_round(index, site.url("/feed.xml"))
    assert r.failed == 1
    assert r.problems == (
        "entry 'Huge page': page larger than the 1 MB cap (more than that); not read, "
        "and the feed's summary is too short to index",
    )


def test_binary_page_redirect_loop_and_hang_each_fail_alone(site: Site, index: Index) -> None:
    site.put("/ok.html", page("Fine"))
    site.put("/img.html", b"\x89PNG\r\n\x1a\n\x00\x00" * 100, content_type="image/png")
    site.put("/bin.html", b"<p>\x00\x01\x02" * 100, content_type="text/html")
    site.put("/loop.html", "", redirect_to="/loop2.html")
    site.put("/loop2.html", "", redirect_to="/loop.html")
    site.put("/hang.html", "", hang=True)
    slugs = ["ok", "img", "bin", "loop", "hang"]
    site.put("/feed.xml", rss([item(site, s, f"Story {s}") for s in slugs]))
    r = one_round(index, site.url("/feed.xml"))
    assert (r.new, r.failed) == (1, 4)
    why = {p.split(":", 1)[0]: p.split(": ", 1)[1] for p in r.problems}
    assert why["entry 'Story img'"].startswith("page is not a web page (image/png)")
    assert why["entry 'Story bin'"].startswith("page binary file, not text")
    assert why["entry 'Story loop'"].startswith("page more than 5 redirects (a redirect loop?)")
    assert why["entry 'Story hang'"].startswith("page no answer within 0.5 s (after 2 tries)")
    assert [d.title for d in index.documents()] == ["Story ok"]


def test_a_feed_that_404s_or_500s_is_retried_reported_and_kept(site: Site, index: Index) -> None:
    r = one_round(index, site.url("/feed.xml"))
    assert r.line() == f"127.0.0.1:{site.port}: failed: feed: HTTP 404 Not Found"
    assert len(site.hits("/feed.xml")) == 1  # a 404 is an answer: not asked again
    site.put("/a.html", page("A"))
    site.put("/feed.xml", rss([item(site, "a", "Back again")]), fail_first=2)
    r = one_round(index, site.url("/feed.xml"))
    assert r.error == "feed: HTTP 500 Internal Server Error (after 2 tries)"
    r = one_round(index, site.url("/feed.xml"))  # the source stays; the server is back
    assert (r.error, r.new) == (None, 1)


def test_a_folder_with_unreadable_files(tmp_path: Path, index: Index) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "good.txt").write_text("The Elm Street library will open until 10 pm.")
    (folder / "binary.txt").write_bytes(b"\x00\x01\xff" * 50)
    (folder / "empty.md").write_text("   ")
    (folder / "gone.txt").symlink_to(folder / "nowhere.txt")
    locked = folder / "locked.txt"
    locked.write_text("Secret council minutes.")
    locked.chmod(0)
    r = one_round(index, str(folder))
    expected = {
        "binary.txt: not UTF-8 text (bad byte at offset 2)",
        "empty.md: no text",
        "gone.txt: cannot read: No such file or directory",
    }
    if os.geteuid() != 0:  # root reads any file
        expected.add("locked.txt: cannot read: Permission denied")
    assert expected <= set(r.problems) and r.failed == len(expected)
    assert "good.txt" not in " ".join(r.problems) and r.new >= 1


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            "ftp://example.org/feed",
            "cannot watch 'ftp://example.org/feed': give an http(s) feed URL or a folder",
        ),
        ("http:///feed", "'http:///feed' is not a feed URL: it names no host"),
        ("/no/such/folder", "no such folder: /no/such/folder"),
    ],
)
def test_bad_sources_are_refused_before_anything_loads(given: str, message: str) -> None:
    from embeddings.errors import IngestError

    with pytest.raises(IngestError) as e:
        parse_sources([given])
    assert str(e.value) == message


def test_every_takes_durations() -> None:
    from embeddings.errors import IngestError

    assert [parse_every(v) for v in ("90", "30s", "10m", "2h")] == [90, 30, 600, 7200]
    with pytest.raises(IngestError, match="--every must be a duration such as 30s"):
        parse_every("soon")
