"""One round of an RSS/Atom feed: new and changed entries become articles.

Each entry's page is fetched (conditionally when seen before) and read by the HTML loader;
when the page cannot be used, the entry's own summary or content stands in if it is long
enough. The feed's title, link, date and name become the article's metadata.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from xml.sax import SAXParseException

import feedparser
from feedparser.exceptions import ThingsNobodyCaresAboutButMe

from embeddings.index import content_hash
from embeddings.loaders import LoadError, derive_title, normalize_date, parse_html
from embeddings.sources.fetch import Fetcher, FetchError, Response
from embeddings.sources.report import Sink, SourceReport, now_iso
from embeddings.types import Document

__all__ = ["FEED_MAX_BYTES", "MIN_FALLBACK_CHARS", "poll_feed"]

FEED_MAX_BYTES = 10 * 1024 * 1024
# A summary shorter than about two sentences is a teaser: indexing it would answer nothing
# and hide that the article itself was never read.
MIN_FALLBACK_CHARS = 200
MAX_REMEMBERED = 5000  # entries per feed (about 2 MB of state); the oldest unlisted go first
BATCH = 16  # entries per index commit: a kill costs at most this many re-fetches
_BREAKS_RE = re.compile(r"(?i)<\s*(?:br\s*/?|/p|/div|/li|/h[1-6])\s*>")


@dataclass(frozen=True)
class _Entry:
    key: str  # GUID, else link, else a hash of title and summary
    doc_id: str
    title: str | None
    url: str | None
    date: str | None
    summary: str  # plain text of the entry's content or summary
    fingerprint: str  # changes when the feed changes what it says about the entry


def poll_feed(url: str, state: dict[str, Any], fetcher: Fetcher, sink: Sink) -> SourceReport:
    """One round over the feed at `url`; `state` is this source's part of the seen-state."""
    state["kind"] = "feed"
    name = str(state.get("name") or urlsplit(url).netloc or url)
    entries_state: dict[str, Any] = state.setdefault("entries", {})
    try:
        resp = fetcher.get(
            url,
            etag=state.get("etag"),
            last_modified=state.get("last_modified"),
            max_bytes=FEED_MAX_BYTES,
        )
    except FetchError as exc:
        return SourceReport(url, "feed", name, error=f"feed: {exc}", finished_at=now_iso())
    if resp.not_modified:
        return SourceReport(url, "feed", name, unchanged=len(entries_state), finished_at=now_iso())
    headers = {"content-location": resp.url, "content-type": resp.content_type or "text/xml"}
    parsed = feedparser.parse(resp.body, response_headers=headers)
    if not parsed.entries and not parsed.get("version"):
        why = _bozo(parsed) or "no <rss>, <feed> or <rdf> element"
        return SourceReport(
            url, "feed", name, error=f"not an RSS or Atom feed: {why}", finished_at=now_iso()
        )
    name = _text(parsed.feed.get("title")) or urlsplit(url).netloc or url
    state["name"] = name
    problems: list[str] = []
    if _bozo(parsed):
        problems.append(f"feed XML is malformed ({_bozo(parsed)}); read what could be read")
    entries = _entries(url, parsed.entries, problems)
    counts = {"new": 0, "updated": 0, "unchanged": 0, "failed": 0}
    todo: list[tuple[_Entry, Document, Response | None]] = []
    stopped = False
    for entry in entries:
        if sink.stop_requested():
            stopped = True
            break
        known = entries_state.get(entry.key)
        if known and known.get("fingerprint") == entry.fingerprint:
            counts["unchanged"] += 1
            continue
        got = _article(entry, name, known, fetcher, sink, problems)
        if got is None:
            counts["failed"] += 1
            continue
        todo.append((entry, *got))
        if len(todo) >= BATCH:
            _commit(todo, entries_state, sink, counts)
            todo = []
    _commit(todo, entries_state, sink, counts)
    _forget_oldest(entries_state, {e.key for e in entries})
    if not stopped and not counts["failed"]:
        # Remembered only when every entry is in: a 304 next round must not hide an entry
        # that failed this round.
        state["etag"], state["last_modified"] = resp.etag, resp.last_modified
        sink.save()
    return SourceReport.counted(url, "feed", name, counts, problems)


def _forget_oldest(entries_state: dict[str, Any], current: set[str]) -> None:
    """Keeps the state file bounded. An entry forgotten here and listed again later is
    fetched once more and found unchanged in the index: a request, not a duplicate."""
    gone = [k for k in entries_state if k not in current]
    extra = len(entries_state) - MAX_REMEMBERED
    if extra > 0:
        gone.sort(key=lambda k: str(entries_state[k].get("seen_at") or ""))
        for key in gone[:extra]:
            del entries_state[key]


def _commit(
    todo: list[tuple[_Entry, Document, Response | None]],
    entries_state: dict[str, Any],
    sink: Sink,
    counts: dict[str, int],
) -> None:
    """Index first, then remember: the seen-state never claims an uncommitted article."""
    if not todo:
        return
    report = sink.commit([doc for _, doc, _ in todo])
    added, updated = set(report.added), set(report.updated)
    seen_at = now_iso()
    for entry, doc, page in todo:
        kind = "new" if doc.doc_id in added else "updated" if doc.doc_id in updated else "unchanged"
        counts[kind] += 1
        old = entries_state.get(entry.key, {})
        entries_state[entry.key] = {
            "doc_id": doc.doc_id,
            "hash": content_hash(doc),
            "fingerprint": entry.fingerprint,
            "etag": page.etag if page else old.get("etag"),
            "last_modified": page.last_modified if page else old.get("last_modified"),
            "title": doc.title,
            "url": doc.url,
            "date": doc.date,
            "seen_at": old.get("seen_at") if kind == "unchanged" and old else seen_at,
        }
    sink.save()


def _article(
    entry: _Entry,
    source: str,
    known: dict[str, Any] | None,
    fetcher: Fetcher,
    sink: Sink,
    problems: list[str],
) -> tuple[Document, Response | None] | None:
    """The entry as an article, or None (with a problem line) when nothing usable came."""
    label = f"entry {_short(entry.title or entry.key)!r}"
    reason = "no link"
    if entry.url:
        try:
            same_url = known is not None and known.get("url") == entry.url
            page = fetcher.get(
                entry.url,
                etag=known.get("etag") if known and same_url else None,
                last_modified=known.get("last_modified") if known and same_url else None,
            )
            if page.not_modified and known:
                old = sink.existing(known["doc_id"])
                if old is not None:
                    return _with_meta(old, entry, source), page
                page = fetcher.get(entry.url)  # the index lost it: fetch it whole
            return _with_meta(_read_page(page), entry, source), page
        except (FetchError, LoadError) as exc:
            reason = f"page {exc}"
    if len(entry.summary) >= MIN_FALLBACK_CHARS:
        problems.append(f"{label}: {reason}; indexed the feed's summary instead")
        doc = Document(entry.doc_id, entry.title or derive_title(entry.summary), entry.summary)
        return _with_meta(doc, entry, source), None
    problems.append(f"{label}: {reason}, and the feed's summary is too short to index")
    return None


def _read_page(page: Response) -> Document:
    """The HTML loader's article text; a page that is not HTML is refused with its type."""
    ctype = page.content_type
    if ctype and "html" not in ctype and "xml" not in ctype and not ctype.startswith("text/"):
        raise LoadError(f"is not a web page ({ctype})")
    return parse_html(page.body, name=page.url)


def _with_meta(doc: Document, entry: _Entry, source: str) -> Document:
    """The feed's metadata wins over the page's: it is what the publisher declared."""
    return dataclasses.replace(
        doc,
        doc_id=entry.doc_id,
        title=entry.title or doc.title,
        date=entry.date or doc.date,
        source=source,
        url=entry.url or doc.url,
        path=entry.url or doc.path,
    )


def _entries(feed_url: str, raw: list[Any], problems: list[str]) -> list[_Entry]:
    """The feed's entries, each key once (the first wins: feeds list newest first)."""
    out: dict[str, _Entry] = {}
    duplicates = 0
    for e in raw:
        summary = _plain(_content(e))
        title = _text(e.get("title"))
        url = _text(e.get("link"))
        key = _text(e.get("id")) or url or _sha1(f"{title}\n{summary}")
        if key in out:
            duplicates += 1
            continue
        # dict.get: feedparser's own get maps a missing "updated" onto "published", warning
        date = _date(dict.get(e, "published_parsed") or dict.get(e, "updated_parsed"))
        # Articles are keyed by link where there is one, so the same story in two feeds is
        # one article; otherwise by feed and entry id.
        doc_id = "w-" + _sha1(url if url else f"{feed_url}\n{key}")[:16]
        stamp = json.dumps([title, url, date, _text(dict.get(e, "updated")), summary])
        out[key] = _Entry(key, doc_id, title, url, date, summary, _sha1(stamp))
    if duplicates:
        problems.append(f"{duplicates} entries repeat an id already in the feed; kept the first")
    return list(out.values())


def _content(e: Any) -> str:
    for part in e.get("content") or ():
        if isinstance(part, dict) and part.get("value"):
            return str(part["value"])
    return str(e.get("summary") or "")


def _plain(html: str) -> str:
    """Text of an entry's (sanitised) HTML, paragraphs kept apart."""
    if "<" not in html:
        return html.strip()
    import lxml.html

    try:
        tree = lxml.html.fragment_fromstring(_BREAKS_RE.sub("\n\n", html), create_parent="div")
    except (ValueError, lxml.etree.ParserError):
        return ""
    paragraphs = (" ".join(p.split()) for p in tree.text_content().split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)


def _date(parsed: time.struct_time | None) -> str | None:
    if not parsed:
        return None
    try:
        return normalize_date(time.strftime("%Y-%m-%d", time.gmtime(calendar.timegm(parsed))))
    except (ValueError, OverflowError, TypeError):
        return None


def _text(value: object) -> str | None:
    return " ".join(value.split()) or None if isinstance(value, str) else None


def _bozo(parsed: Any) -> str:
    """What made the feed malformed; "" for the notes feedparser keeps about harmless things
    (a text/plain content type, an encoding override)."""
    exc = parsed.get("bozo_exception")
    if not exc or isinstance(exc, ThingsNobodyCaresAboutButMe):
        return ""
    if isinstance(exc, SAXParseException):
        # Its str() starts "<unknown>:2:0:", a line number into feedparser's rewritten text
        return str(exc.getMessage())
    return " ".join(str(exc).split())[:160]


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
