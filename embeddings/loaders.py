"""Turn article files (text, markdown, HTML, JSON, JSONL) into `Document`s.

A bad file or record must not stop an ingest of thousands of articles, so problems become
`Skipped` entries plus one warning per file, and everything else still loads.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embeddings.chunking import split_sentences
from embeddings.types import Document

__all__ = [
    "DOC_ID_PATTERN",
    "MAX_HTML_CHARS",
    "SUPPORTED_SUFFIXES",
    "LoadError",
    "LoadResult",
    "Skipped",
    "check_doc_id",
    "dateline_date",
    "derive_title",
    "doc_id_problem",
    "load_file",
    "load_paths",
    "make_doc_id",
    "normalize_date",
    "parse_html",
    "parse_text",
]

SUPPORTED_SUFFIXES: frozenset[str] = frozenset({".txt", ".md", ".html", ".htm", ".json", ".jsonl"})
TITLE_MAX_CHARS = 80
# Every doc_id, given or derived: it must survive a URL path (GET /v1/documents/{doc_id}),
# a file name and a shell without quoting. Derived ids are 16 hex digits.
DOC_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}"
_DOC_ID_RE = re.compile(DOC_ID_PATTERN)
TITLE_SCAN_CHARS = 2000
# trafilatura's time grows with the markup it parses (about 10 us per character of
# element-dense HTML measured here under load; 35 us reported in issue 19): pages with more
# markup than this, once scripts and styles are left out, are skipped with a reason.
MAX_HTML_CHARS = 500_000  # the first sentence is in here; splitting all of a 1 MB text cost 30 MB

log = logging.getLogger("embeddings")

_DATE_TOKEN_RE = re.compile(r"\s*date\s+(\d{4}-\d{2}-\d{2})(?=\s|$)\s*")
# The title's closing "#"s are stripped in code: a lazy group before `[ \t#]*` backtracked
# quadratically on a long run of "#" (200 kB line: minutes; found by tests/test_fuzz_loaders).
_MD_TITLE_RE = re.compile(r"\s*#[ \t]+([^\n]*)(?:\n|$)")
# An empty block ("---\n---") is front matter too, not the article.
_FRONT_MATTER_RE = re.compile(r"\s*---[ \t]*\n(?:(.*?)\n)?---[ \t]*(?:\n|$)", re.DOTALL)
_ISO_DATE_RE = re.compile(r"\s*(\d{4})-(\d{2})-(\d{2})(?:$|[T ]\d)")
_CHARSET_RE = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.IGNORECASE)
_CHROME_TAGS = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form")
# Page chrome that trafilatura's fallback for short pages would otherwise keep. Headers and footers
# inside <article> hold headlines and bylines, so those stay.
_PRUNE_XPATH = [
    "//nav",
    "//aside",
    "//header[not(ancestor::article)]",
    "//footer[not(ancestor::article)]",
]


class LoadError(ValueError):
    """A file or record cannot be turned into a document; the message is one line for a person."""


@dataclass(frozen=True)
class Skipped:
    """Something that was not ingested, and why."""

    path: str
    reason: str


@dataclass
class LoadResult:
    """What an ingest produced; `skipped` lets the caller report problems without aborting."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def load_paths(paths: Iterable[str | Path]) -> LoadResult:
    """Load files and folders (recursively, in sorted order), skipping what cannot be loaded.

    Documents with a `doc_id` already seen in this call are dropped silently, so the same article
    stored twice is indexed once.
    """
    result = LoadResult()
    seen: set[str] = set()
    for given in paths:
        for path, problem in _expand(Path(given)):
            if problem:
                _skip(result, path, problem)
                continue
            try:
                docs, bad_records = _read_file(path)
            except LoadError as exc:
                _skip(result, path, str(exc))
                continue
            if bad_records:
                result.skipped.extend(bad_records)
                _warn_bad_records(path, bad_records)
            for doc in docs:
                if doc.doc_id not in seen:
                    seen.add(doc.doc_id)
                    result.documents.append(doc)
    return result


def load_file(path: Path) -> list[Document]:
    """Load one supported file; bad records inside it are dropped with one warning.

    Raises `LoadError` when the file as a whole cannot be used.
    """
    docs, bad_records = _read_file(Path(path))
    if bad_records:
        _warn_bad_records(Path(path), bad_records)
    return docs


def parse_text(raw: str, *, name: str) -> Document:
    """Parse plain-text or markdown article content; `name` is recorded as the document's path.

    Metadata may come from a front-matter block, a leading `date YYYY-MM-DD` token (the seed
    format) and/or a leading `# Title` line; all of it is removed from the indexed text.
    """
    body = raw.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    meta: dict[str, str] = {}
    fm = _FRONT_MATTER_RE.match(body)
    if fm:
        meta = _parse_front_matter(fm.group(1) or "")
        body = body[fm.end() :]
    date = normalize_date(meta.get("date"))
    m = _DATE_TOKEN_RE.match(body)
    if m:
        date, body = date or normalize_date(m.group(1)), body[m.end() :]
    m = _MD_TITLE_RE.match(body)
    if m:
        meta.setdefault("title", m.group(1).rstrip(" \t#").strip())
        body = body[m.end() :]
        m = _DATE_TOKEN_RE.match(body)
        if m:
            date, body = date or normalize_date(m.group(1)), body[m.end() :]
    text = body.strip()
    if not text:
        raise LoadError("no text")
    return Document(
        doc_id=_given_doc_id(meta.get("doc_id"), text),
        title=meta.get("title") or derive_title(text),
        text=text,
        date=date or dateline_date(text),
        source=meta.get("source") or None,
        url=meta.get("url") or None,
        path=name,
    )


def doc_id_problem(value: object) -> str | None:
    """Why `value` cannot be a doc_id (one line), or None when it can."""
    if isinstance(value, str) and _DOC_ID_RE.fullmatch(value):
        return None
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "…"
    return (
        f"doc_id {shown} is not valid: use 1-128 letters, digits, '.', '_', ':' or '-', "
        "starting with a letter or digit"
    )


def check_doc_id(value: object) -> str:
    """`value` as a doc_id, or `LoadError` saying why it cannot be one."""
    problem = doc_id_problem(value)
    if problem:
        raise LoadError(problem)
    assert isinstance(value, str)
    return value


def _given_doc_id(value: object, text: str) -> str:
    """A doc_id from front matter or a record: absent or "" -> derived from the text."""
    if value is None or value == "":
        return make_doc_id(text)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # {"doc_id": 42}
    return check_doc_id(value)


def make_doc_id(text: str) -> str:
    """Content-derived id, so one article gets the same id whichever file or folder holds it."""
    normalised = " ".join(unicodedata.normalize("NFKC", text).split())
    return hashlib.sha1(normalised.encode("utf-8")).hexdigest()[:16]


def derive_title(text: str) -> str:
    """A readable stand-in title: the first sentence, cut at a word boundary, without a
    leading dateline ("March 4, 2024 — The council…" -> "The council…")."""
    m = _DATELINE_RE.match(text)
    if m and text[m.end() :].strip() and dateline_date(text):
        text = text[m.end() :].lstrip()
    spans = split_sentences(text[:TITLE_SCAN_CHARS])
    first = " ".join(text[spans[0][0] : spans[0][1]].split()) if spans else ""
    if len(first) <= TITLE_MAX_CHARS:
        return first
    cut = first[: TITLE_MAX_CHARS - 1]
    if " " in cut and not first[TITLE_MAX_CHARS - 1].isspace():
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:-–—") + "…"


def normalize_date(value: object) -> str | None:
    """`YYYY-MM-DD` from an ISO date or datetime; anything else is None, since a missing date is
    better than a wrong one."""
    if not isinstance(value, str):
        return None
    m = _ISO_DATE_RE.match(value)
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return None


# A news dateline: up to 60 characters, then a dash ("March 4, 2024 — …",
# "WASHINGTON, March 4, 2024 (Reuters) - …"). A hyphen counts only with a space before it, so
# "2024-03-04" is not cut in the middle.
_DATELINE_RE = re.compile(r"\s*([^\n]{4,60}?)(?:\s*[—–]|\s+--?)\s")


def dateline_date(text: str) -> str | None:
    """`YYYY-MM-DD` from a leading dateline, parsed by dateutil; None unless the dateline gives
    a year, a month and a day (a year-less "March 4 (Reuters)" would be a guess)."""
    from dateutil import parser

    m = _DATELINE_RE.match(text)
    if not m or not any(ch.isdigit() for ch in m.group(1)):
        return None
    parsed = []
    for default in (dt.datetime(1, 1, 1), dt.datetime(2, 2, 2)):  # what differs was not given
        try:
            parsed.append(parser.parse(m.group(1), fuzzy=True, default=default).date())
        except (ValueError, OverflowError):
            return None
    return parsed[0].isoformat() if parsed[0] == parsed[1] else None


# --- files -------------------------------------------------------------------------------------


def _expand(path: Path) -> Iterator[tuple[Path, str | None]]:
    """Files to load for one given path, each with a skip reason when it cannot be loaded."""
    if path.is_dir():
        for root, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                if not name.startswith(".") and _suffix(Path(name)) in SUPPORTED_SUFFIXES:
                    yield Path(root) / name, None
    elif not path.exists():
        yield path, "not found"
    elif _suffix(path) not in SUPPORTED_SUFFIXES:
        yield path, f"unsupported file type {path.suffix or '(no suffix)'!r}"
    else:
        yield path, None


def _read_file(path: Path) -> tuple[list[Document], list[Skipped]]:
    suffix = _suffix(path)
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(f"unsupported file type {path.suffix or '(no suffix)'!r}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read: {exc.strerror or exc}") from None
    if suffix in (".html", ".htm"):
        return [parse_html(raw, name=str(path))], []
    text = _decode(raw)
    if suffix == ".json":
        return _parse_json(text, path)
    if suffix == ".jsonl":
        return _parse_jsonl(text, path)
    return [parse_text(text, name=str(path))], []


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def _decode(raw: bytes) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not UTF-8 text (bad byte at offset {exc.start})") from None
    if "\x00" in text:
        raise LoadError("binary file, not text")
    return text


def _decode_html(raw: bytes) -> str:
    """UTF-8, else the charset the page declares (old pages are often windows-1252)."""
    try:
        return _decode(raw)
    except LoadError:
        m = _CHARSET_RE.search(raw[:4096])
        if not m:
            raise
        charset = m.group(1).decode("ascii")
        try:
            return raw.decode(charset, errors="replace")
        except LookupError:
            raise LoadError(f"unknown charset {charset!r}") from None
        except UnicodeError:  # codecs without "replace" handling, e.g. idna, punycode
            raise LoadError(f"cannot decode as the declared charset {charset!r}") from None


def _skip(result: LoadResult, path: Path, reason: str) -> None:
    result.skipped.append(Skipped(str(path), reason))
    log.warning("skipped %s: %s", path, reason)


def _warn_bad_records(path: Path, bad: list[Skipped]) -> None:
    shown = "; ".join(s.reason for s in bad[:3]) + ("; …" if len(bad) > 3 else "")
    log.warning("skipped %d bad record(s) in %s: %s", len(bad), path, shown)


def _parse_front_matter(block: str) -> dict[str, str]:
    """`key: value` lines; quotes around values are dropped. Deliberately not full YAML."""
    meta: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in ("title", "date", "source", "url", "doc_id"):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            meta[key] = value.strip()
    return meta


# --- JSON --------------------------------------------------------------------------------------


def _loads(text: str, *, where: bool = True) -> Any:
    """`json.loads`, with every way it can fail as one `LoadError`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # json's messages end with where the problem is ("Unterminated string starting at")
        msg = f"{exc.msg} column {exc.colno}" if exc.msg.endswith(" at") else exc.msg
        at = f" at line {exc.lineno}: {msg}" if where else ""
        raise LoadError(f"invalid JSON{at}") from None
    except RecursionError:
        raise LoadError("invalid JSON: nested too deeply") from None
    except ValueError:  # an integer past Python's digit limit (4300)
        raise LoadError("invalid JSON: a number too long to read") from None


def _parse_json(text: str, path: Path) -> tuple[list[Document], list[Skipped]]:
    data = _loads(text)
    if isinstance(data, dict):
        return [_record_to_document(data, path)], []
    if not isinstance(data, list):
        raise LoadError("JSON must be a record object or a list of records")
    if not data:
        raise LoadError("no records")
    docs: list[Document] = []
    bad: list[Skipped] = []
    for i, record in enumerate(data, 1):
        try:
            docs.append(_record_to_document(record, path))
        except LoadError as exc:
            bad.append(Skipped(str(path), f"record {i}: {exc}"))
    return docs, bad


def _parse_jsonl(text: str, path: Path) -> tuple[list[Document], list[Skipped]]:
    docs: list[Document] = []
    bad: list[Skipped] = []
    # Split on "\n" only: str.splitlines() would also break on U+2028 inside JSON strings.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = _loads(line, where=False)
        except LoadError as exc:
            bad.append(Skipped(str(path), f"line {lineno}: {exc}"))
            continue
        try:
            docs.append(_record_to_document(record, path))
        except LoadError as exc:
            bad.append(Skipped(str(path), f"line {lineno}: {exc}"))
    if not docs and not bad:
        raise LoadError("no records")
    return docs, bad


def _record_to_document(record: Any, path: Path) -> Document:
    if not isinstance(record, dict):
        raise LoadError("not a JSON object")
    record = {k: _unicode(v) if isinstance(v, str) else v for k, v in record.items()}
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise LoadError("no text")
    text = text.strip()
    doc_id = record.get("doc_id")
    title = record.get("title")
    return Document(
        doc_id=_given_doc_id(doc_id, text),
        title=title.strip() if isinstance(title, str) and title.strip() else derive_title(text),
        text=text,
        date=normalize_date(record.get("date")) or dateline_date(text),
        source=_optional_str(record.get("source")),
        url=_optional_str(record.get("url")),
        path=str(path),
    )


def _unicode(value: str) -> str:
    """Lone surrogates (a JSON escape like "\\ud800") become U+FFFD: such a string cannot be
    hashed or stored in SQLite, and one bad escape should not cost the whole article."""
    return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _optional_str(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


# --- HTML --------------------------------------------------------------------------------------


def parse_html(raw: bytes, *, name: str) -> Document:
    """One web page's article, as `rag ingest` reads a saved .html file and `rag watch` a
    fetched page; `name` becomes the document's path. LoadError when there is none."""
    return _parse_html(_markup(_decode_html(raw)), name=name)


def _markup(html: str) -> str:
    """The page without `<script>` and `<style>` blocks (JSON-LD, which carries dates and
    site names, stays), or LoadError when even that is more than MAX_HTML_CHARS. One linear
    pass: a regex over unclosed tags could backtrack."""
    lower = html.lower()
    parts: list[str] = []
    pos = 0
    while True:
        starts = [i for i in (lower.find("<script", pos), lower.find("<style", pos)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        tag = "script" if lower.startswith("<script", start) else "style"
        head_end = lower.find(">", start)
        end = lower.find(f"</{tag}", head_end) if head_end >= 0 else -1
        close = lower.find(">", end) if end >= 0 else -1
        if head_end < 0 or end < 0 or close < 0:
            break  # unclosed: left for the parser
        parts.append(html[pos:start])
        if "ld+json" in lower[start:head_end]:
            parts.append(html[start : close + 1])
        pos = close + 1
    parts.append(html[pos:])
    out = "".join(parts)
    if len(out) > MAX_HTML_CHARS:
        raise LoadError(
            f"too much HTML to read: {len(out):,} characters of markup without scripts and "
            f"styles; the limit is {MAX_HTML_CHARS:,} (save the article as .txt)"
        )
    return out


def _parse_html(html: str, *, name: str) -> Document:
    """Article text via trafilatura (drops navigation, ads and other page chrome); plain `<p>`
    text when the page is too small for trafilatura to recognise an article."""
    import trafilatura  # imported lazily: it is slow to import and only HTML needs it

    text = (
        trafilatura.extract(
            html,
            include_comments=False,
            include_tables=False,
            output_format="txt",
            with_metadata=False,
            prune_xpath=_PRUNE_XPATH,
        )
        or ""
    ).strip()
    meta = trafilatura.extract_metadata(html)
    if not text:
        text = _paragraph_text(html)
    if not text:
        raise LoadError("no article text found")
    title = (meta.title if meta else None) or _html_title(html) or derive_title(text)
    return Document(
        doc_id=make_doc_id(text),
        title=" ".join(title.split()),
        text=text,
        date=normalize_date(meta.date if meta else None) or dateline_date(text),
        source=_optional_str(meta.sitename if meta else None),
        url=_optional_str(meta.url if meta else None),
        path=name,
    )


def _parse_tree(html: str) -> Any:
    import lxml.html

    try:
        return lxml.html.fromstring(html)
    except (ValueError, lxml.etree.ParserError):
        return None


def _paragraph_text(html: str) -> str:
    tree = _parse_tree(html)
    if tree is None:
        return ""
    for bad in tree.xpath("|".join(f"//{tag}" for tag in _CHROME_TAGS)):
        if bad.getparent() is not None:
            bad.drop_tree()
        else:
            return ""  # the whole fragment is page chrome
    paragraphs = (" ".join(p.text_content().split()) for p in tree.xpath("//p"))
    return "\n\n".join(p for p in paragraphs if p)


def _html_title(html: str) -> str | None:
    tree = _parse_tree(html)
    if tree is None:
        return None
    for query in ("//meta[@property='og:title']/@content", "//title//text()", "//h1//text()"):
        found = " ".join(" ".join(str(s) for s in tree.xpath(query)).split())
        if found:
            return found
    return None
