"""Fuzzing the loaders: whatever bytes a file holds, loading it ends quickly, in bounded
memory, with documents that can be stored or with one `Skipped` reason a person can read.

Each property runs a fixed number of derandomized examples (the CI budget is the sum of the
`max_examples` below: ~6 s of CPU, 17–52 s of wall time measured on a shared, busy machine).
`HYPOTHESIS_PROFILE=deep` runs 20 times more, with fresh randomness, for hunting.
"""

from __future__ import annotations

import codecs
import encodings.aliases
import json
import os
import signal
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from embeddings.loaders import SUPPORTED_SUFFIXES, LoadResult, load_paths

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=timedelta(seconds=10),  # a hang detector, not a speed test: a case takes ~10 ms
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
settings.register_profile("deep", parent=settings.get_profile("ci"), derandomize=False)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
SCALE = 20 if PROFILE == "deep" else 1  # the per-test max_examples below are the CI budget

HARD_CAP_S = 30  # SIGALRM ends a case that hangs where `deadline` cannot see (inside C code)
# Peak Python allocation while loading: the decoded text and a handful of copies of it. A
# quadratic or per-sentence structure over a megabyte input breaks this by far.
MEMORY_BASE = 16 * 2**20
MEMORY_PER_BYTE = 12
SUFFIXES = sorted(SUPPORTED_SUFFIXES)


@contextmanager
def hard_cap(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"loading did not finish within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def load_bytes(folder: Path, name: str, data: bytes) -> LoadResult:
    """Writes `data` as `name` and loads it, checking every property the user relies on."""
    path = folder / name
    path.write_bytes(data)
    tracemalloc.start()
    try:
        with hard_cap(HARD_CAP_S):
            result = load_paths([path])  # must not raise: a bad file is a Skipped entry
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        path.unlink()
    limit = MEMORY_BASE + MEMORY_PER_BYTE * len(data)
    assert peak <= limit, f"peak {peak / 2**20:.1f} MB loading {len(data)} bytes"
    if not result.documents:
        assert result.skipped, "a file that gave no document must say why"
    for skipped in result.skipped:
        assert skipped.path == str(path)
        reason = skipped.reason
        assert reason.strip() and "\n" not in reason and len(reason) <= 200, reason
        assert "Traceback" not in reason and "Error" not in reason, reason
    for doc in result.documents:
        assert doc.text.strip() and doc.doc_id and doc.title.strip()
        assert "\n" not in doc.title
        for value in (doc.doc_id, doc.title, doc.text, doc.date, doc.source, doc.url):
            if value is not None:
                value.encode("utf-8")  # SQLite stores it (a lone surrogate would fail there)
        assert doc.date is None or (len(doc.date) == 10 and doc.date[4] == "-")
    return result


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    warm = path / "warm.html"  # the first HTML page imports trafilatura: ~28 MB, once
    warm.write_text("<html><body><p>Rain fell on the city on Monday.</p></body></html>")
    load_paths([warm])
    warm.unlink()
    return path


# ---- arbitrary and truncated bytes ----------------------------------------------------------


@settings(max_examples=150 * SCALE)
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_arbitrary_bytes(folder: Path, data: bytes, suffix: str) -> None:
    load_bytes(folder, "any" + suffix, data)


@settings(max_examples=100 * SCALE)
@given(
    text=st.text(min_size=1, max_size=400), cut=st.integers(1, 3), suffix=st.sampled_from(SUFFIXES)
)
def test_truncated_utf8(folder: Path, text: str, cut: int, suffix: str) -> None:
    """Text whose last character lost some of its bytes (a download cut short)."""
    raw = (text + "é€😀"[cut - 1]).encode("utf-8")
    load_bytes(folder, "cut" + suffix, raw[:-1])


# ---- sizes -------------------------------------------------------------------------------------

LINE_PIECES = ["a", "Ab. ", " ", "#", "# ", "-", "---\n", ":", "&amp;", "<p>", "[", "{", '"', "."]


# No shrinking: each case holds a megabyte, and the failing piece is already readable.
@settings(
    max_examples=12 * SCALE, phases=[Phase.explicit, Phase.generate], deadline=timedelta(seconds=30)
)
@given(
    piece=st.lists(st.sampled_from(LINE_PIECES), min_size=1, max_size=3).map("".join),
    prefix=st.sampled_from(["", "# ", "---\n", "date 2021-01-01 ", "<p>", '{"text": "']),
    size=st.sampled_from([10_000, 100_000, 1_000_000]),
    suffix=st.sampled_from(SUFFIXES),
)
@example(piece="#", prefix="# ", size=200_000, suffix=".md")  # title regex backtracked: O(n²)
@example(piece="Ab. ", prefix="", size=1_000_000, suffix=".txt")  # 250,000 sentences
def test_huge_lines(folder: Path, piece: str, prefix: str, size: int, suffix: str) -> None:
    """One line of up to a megabyte made of a repeated piece: catches regexes that backtrack
    quadratically and structures built per sentence."""
    if suffix in (".html", ".htm"):
        # trafilatura is linear but slow on element-dense markup: ~35 µs a byte for 20,000
        # nested <p> (measured on a shared, busy machine), so a megabyte would take ~35 s.
        size = min(size, 100_000)
    line = prefix + piece * (size // len(piece)) + "."  # "." : the line does not end in `piece`
    load_bytes(folder, "huge" + suffix, line.encode("utf-8"))


# ---- JSON --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
FIELDS = ["text", "title", "date", "source", "url", "doc_id"]
records = st.dictionaries(st.sampled_from(FIELDS), json_values | st.text(max_size=200))


@settings(max_examples=80 * SCALE)
@given(
    data=st.one_of(records, st.lists(records, max_size=5), json_values),
    suffix=st.sampled_from([".json", ".jsonl"]),
)
def test_json_of_any_shape(folder: Path, data: object, suffix: str) -> None:
    text = json.dumps(data, ensure_ascii=True)
    if suffix == ".jsonl" and isinstance(data, list):
        text = "\n".join(json.dumps(r) for r in data)
    load_bytes(folder, "any" + suffix, text.encode("utf-8"))


@settings(max_examples=20 * SCALE)
@given(
    depth=st.integers(1, 200_000),
    opener=st.sampled_from(["[", '{"text": ']),
    suffix=st.sampled_from([".json", ".jsonl"]),
)
def test_deeply_nested_json(folder: Path, depth: int, opener: str, suffix: str) -> None:
    closer = "]" if opener == "[" else "}"
    load_bytes(folder, "deep" + suffix, (opener * depth + "1" + closer * depth).encode())


JSON_ODDITIES = [
    '{"text": "x' + "\\ud800" + ' y"}',  # a lone surrogate escape: valid JSON, invalid Unicode
    '{"text": "Body.", "title": "\\udfff"}',
    '{"text": "Body.", "doc_id": ' + "9" * 5000 + "}",  # past Python's int digit limit
    "1" * 5000,
    '{"text": NaN}',
    '{"text": "Body.", "date": "2021-02-30"}',
    '{"text": "Body.", "date": "٢٠٢١-٠١-٠١"}',  # digits that are not ASCII
    "\ufeff" + '{"text": "Body with a byte-order mark."}',
    '[{"text": "ok"}, 1, [], {"text": ""}, {"text": "   "}]',
]


@pytest.mark.parametrize("text", JSON_ODDITIES)
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_oddities(folder: Path, text: str, suffix: str) -> None:
    load_bytes(folder, "odd" + suffix, text.encode("utf-8"))


def test_a_lone_surrogate_keeps_the_article(folder: Path) -> None:
    result = load_bytes(folder, "s.json", b'{"text": "Rain fell \\ud800 on Monday."}')
    assert [d.text for d in result.documents] == ["Rain fell \ufffd on Monday."]


# ---- HTML --------------------------------------------------------------------------------------

html_pieces = st.sampled_from(
    [
        "<p>",
        "</p>",
        "<script>",
        "</script>",
        "<style>",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "&amp;",
        "&#0;",
        "&#xD800;",
        "&#x110000;",
        "&bogus;",
        "&#99999999999;",
        "<title>",
        "<h1>",
        '<meta property="og:title" content="',
        '<meta charset="',
        '">',
        "<article>",
        "<nav>",
        '<?xml version="1.0" encoding="utf-8"?>',
        "<html>",
        "</html>",
        "\x01",
        "\x0c",
        "Rain fell on the city. ",
    ]
)
html_docs = st.lists(html_pieces | st.text(max_size=20), max_size=40).map("".join)
CHARSETS = sorted(set(encodings.aliases.aliases.values()) | {"idna", "punycode", "rot13", "nope"})


@settings(max_examples=100 * SCALE)
@given(html=html_docs, suffix=st.sampled_from([".html", ".htm"]))
def test_html_with_scripts_entities_and_broken_markup(folder: Path, html: str, suffix: str) -> None:
    load_bytes(folder, "page" + suffix, html.encode("utf-8", "surrogatepass"))


@settings(max_examples=60 * SCALE)
@given(charset=st.sampled_from(CHARSETS), body=st.binary(min_size=1, max_size=200))
def test_html_declaring_any_charset(folder: Path, charset: str, body: bytes) -> None:
    """Not UTF-8, so the declared charset is used, whatever Python codec that names."""
    page = f'<html><head><meta charset="{charset}"></head><body><p>'.encode() + b"\xe9" + body
    load_bytes(folder, "page.html", page)


def test_every_python_codec_as_a_charset(folder: Path) -> None:
    for name in sorted({codecs.lookup(c).name for c in CHARSETS if _known(c)} | {"idna"}):
        page = f'<meta charset="{name}"><p>caf\xe9 au lait</p>'.encode("latin-1")
        load_bytes(folder, "codec.html", page)


def _known(name: str) -> bool:
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


# ---- front matter ------------------------------------------------------------------------------

fm_lines = st.lists(
    st.sampled_from(
        [
            "title: A title",
            "title:",
            "title: '",
            'title: ""',
            "date: 2021-02-30",
            "date: 2021-12-22T10:00:00Z",
            "date: yesterday",
            "doc_id:",
            "doc_id: same",
            "url: http://x",
            "source:   ",
            ": no key",
            "no colon",
            "---",
            "",
            "# Heading",
            "date 2021-01-01",
        ]
    )
    | st.text(max_size=30),
    max_size=8,
)


@settings(max_examples=100 * SCALE)
@given(
    lines=fm_lines,
    body=st.sampled_from(["", "Body text.", "# Title\nBody.", "---", "\n\n"]),
    bom=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    suffix=st.sampled_from([".md", ".txt"]),
)
def test_front_matter_edge_cases(
    folder: Path, lines: list[str], body: str, bom: bool, newline: str, suffix: str
) -> None:
    text = newline.join(["---", *lines, "---", body])
    load_bytes(
        folder, "fm" + suffix, (("\ufeff" if bom else "") + text).encode("utf-8", "surrogatepass")
    )


def test_an_empty_front_matter_block_is_not_the_article(folder: Path) -> None:
    result = load_bytes(folder, "empty.md", b"---\n---\n")
    assert result.documents == [] and [s.reason for s in result.skipped] == ["no text"]
