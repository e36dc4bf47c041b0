"""The web UI, driven in a real browser (Debian's Chromium through Playwright) and through
`gradio_client`, against the real pipeline on a copy of the seed index."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_run import free_port

from rag.pipeline import Pipeline
from rag.ui import build_app, configure_parser, parse_auth, run, safe_filename, serve

CHROMIUM = Path(os.environ.get("RAG_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
VACCINE_Q = "How many vaccine doses has the US delivered abroad?"
FINAL = "#rag-chat .rag-answer:not(.rag-streaming)"

BRIDGE_ARTICLE = """date 2022-03-03 The new Orvana bridge across Lake Orvana opened to traffic on \
Wednesday after four years of construction. The regional transport office said the bridge cost \
48 million euros, about 6 million more than planned. The 1.2-kilometre crossing cuts the drive \
between Telmi and Ostrava Nova from fifty minutes to twelve.

Local businesses welcomed the opening. "Our deliveries used to take the whole morning," said \
baker Ilsa Maren, whose shop sits beside the old ferry pier.
"""

PAYLOAD_ARTICLE = """---
title: Harbour festival <script>window.__pwned = 1</script> report
date: 2022-02-14
---
The Marlow harbour festival drew 48,000 visitors this year, organisers said on Monday. \
<img src=x onerror="window.__pwned = 1; alert('pwned')"> The festival committee said the \
<script>window.__pwned = 1</script> fireworks budget was 90,000 pounds.

Fishermen opened the harbour to visitors for the first time since 2019.
"""


@pytest.fixture(scope="module")
def ui_pipeline(
    tmp_path_factory: pytest.TempPathFactory, seed_index_dir: Path, embedder: Any, generator: Any
) -> Pipeline:
    """Uploads change the index, so the UI gets its own copy of the seed index."""
    index = tmp_path_factory.mktemp("ui") / "index"
    shutil.copytree(seed_index_dir, index)
    return Pipeline(index, embedder=embedder, generator=generator)


@pytest.fixture(scope="module")
def app_url(ui_pipeline: Pipeline) -> Iterator[str]:
    index = Path(ui_pipeline.stats().path)
    demo = build_app(ui_pipeline, upload_dir=index / "uploads", max_upload_mb=1)
    url = serve(demo, port=free_port())
    yield url
    demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Tab:
    """A page plus what it saw: dialogs, page errors and requests that left the machine."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.external: list[str] = []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("request", self._request)

    def _request(self, request: Any) -> None:
        if not re.match(r"^(https?|wss?)://(127\.0\.0\.1|localhost)[:/]", request.url) and not (
            request.url.startswith(("data:", "blob:", "about:"))
        ):
            self.external.append(request.url)

    def ask(self, question: str, *, timeout: float = 60_000) -> Any:
        n = self.page.locator(FINAL).count()
        self.page.locator("#rag-question textarea").fill(question)
        self.page.locator("#rag-ask").click()
        self.page.wait_for_function(
            f"() => document.querySelectorAll({FINAL!r}).length > {n}", timeout=timeout
        )
        return self.page.locator(FINAL).last

    def upload(self, paths: list[Path]) -> str:
        """Choose `paths` (none: keep what is chosen), click "Add", return the summary."""
        if paths:
            files = [str(p) for p in paths]
            self.page.locator("#rag-files input[type=file]").set_input_files(files)
        # Each file gets a download link once Gradio has received it.
        self.page.wait_for_function(
            "n => document.querySelectorAll('#rag-files tr.file a.download-link').length >= n",
            arg=len(paths),
            timeout=30_000,
        )
        # An earlier summary is marked, so the wait is for this upload's own.
        self.page.evaluate(
            "() => document.querySelectorAll('#rag-summary .rag-summary')"
            ".forEach((e) => e.setAttribute('data-old', ''))"
        )
        self.page.locator("#rag-add").click()
        summary = self.page.locator("#rag-summary .rag-summary:not([data-old])")
        summary.wait_for(timeout=60_000)
        return str(summary.inner_text())


@pytest.fixture
def tab(browser: Any, app_url: str) -> Iterator[Tab]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    t = Tab(context.new_page())
    t.page.goto(app_url)
    t.page.locator("#rag-question textarea").wait_for(timeout=30_000)
    yield t
    assert t.external == [], f"the page reached outside the machine: {t.external}"
    context.close()


def test_first_load_examples_empty_question_bad_date_and_refusal(tab: Tab) -> None:
    page = tab.page
    page.get_by_text(VACCINE_Q).first.wait_for(timeout=10_000)
    page.locator("#rag-stats").get_by_text("article").wait_for()
    page.locator("#rag-ask").click()
    notice = page.locator("#rag-notice .rag-notice")
    notice.wait_for(timeout=10_000)
    assert "type a question" in notice.inner_text()
    assert page.locator("#rag-chat .rag-q").count() == 0
    assert page.locator(".toast-body.error, .toast-wrap .error").count() == 0

    page.locator("#rag-from textarea, #rag-from input").first.fill("last week")
    page.locator("#rag-question textarea").fill(VACCINE_Q)
    page.locator("#rag-ask").click()
    page.locator("#rag-notice").get_by_text("From date must be a real date").wait_for(
        timeout=10_000
    )
    page.locator("#rag-from textarea, #rag-from input").first.fill("")

    page.locator("#rag-status").get_by_text("Models ready").wait_for(timeout=60_000)
    refusal = tab.ask("What is the capital of Peru?")
    assert "Not answered" in refusal.inner_text()
    assert "not enough to answer" in refusal.inner_text()
    # the closest passages are shown, but nothing in them reads as support
    assert refusal.locator(".rag-card.rag-near").count() >= 1
    assert refusal.locator(".rag-card mark, .rag-n").count() == 0

    page.locator("#rag-asof textarea, #rag-asof input").first.fill("2021-12-01")
    before = tab.ask(VACCINE_Q)
    assert "No article in the chosen dates" in before.inner_text()
    page.locator("#rag-asof textarea, #rag-asof input").first.fill("")


def test_vaccine_answer_streams_and_cites_then_follow_up(tab: Tab) -> None:
    page = tab.page
    page.evaluate(
        """() => {
        window.__partials = [];
        new MutationObserver(() => {
            const e = [...document.querySelectorAll('#rag-chat .rag-streaming .rag-text')].pop();
            const t = e ? e.textContent.replace('▍', '').trim() : '';
            const seen = window.__partials;
            if (t && seen[seen.length - 1] !== t) seen.push(t);
        }).observe(document.body, {subtree: true, childList: true, characterData: true});
    }"""
    )
    page.get_by_text(VACCINE_Q).first.click()  # the example offered on first load
    page.wait_for_function(f"() => document.querySelectorAll({FINAL!r}).length > 0")
    answer = page.locator(FINAL).last
    partials = page.evaluate("window.__partials")
    # the reader's answer arrives whole (a span chosen among candidates), shown as it comes
    # before the final answer with its cards; free-form answers stream token by token
    assert len(partials) >= 1, f"nothing was shown while answering: {partials}"
    assert all(b.startswith(a[:3]) for a, b in itertools.pairwise(partials))

    text = answer.locator(".rag-text").inner_text()
    assert "330 million" in text or "330" in text, text
    card = answer.locator(".rag-card").first
    assert "2021-12-22" in card.locator(".rag-date").inner_text()
    assert "Blinken" in card.locator(".rag-title").inner_text()
    highlighted = card.locator(".rag-passage mark").inner_text()
    assert "330 million vaccine doses" in highlighted
    card.locator("summary").click()  # "open the whole article"
    article = card.locator(".rag-article")
    article.wait_for()
    assert "Antony Blinken" in article.inner_text() and "COVAX" in article.inner_text()

    follow = tab.ask("And to how many countries?")
    rewritten = follow.locator(".rag-rewritten").inner_text()
    assert "countries" in rewritten and "vaccine doses" in rewritten, rewritten
    assert "110" in follow.locator(".rag-text").inner_text()
    assert "110 countries" in follow.locator(".rag-card mark").first.inner_text()

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("#rag-chat").screenshot(path=str(ARTIFACTS / "answered_chat.png"))


def test_upload_articles_then_ask_about_them_and_delete(tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    files = [tmp_path / "orvana bridge.txt"]
    files[0].write_text(BRIDGE_ARTICLE, encoding="utf-8")
    hidden = tmp_path / ".notes.txt"  # a dot-named file must not sink the batch
    hidden.write_bytes(b"\xff\xfe not UTF-8 \x00")
    # Nine more seed-sized articles: the "ten uploads" the UI must handle quickly.
    seed = next((Path(__file__).resolve().parent.parent / "seeds").glob("*.txt")).read_text()
    for i in range(9):
        f = tmp_path / f"variant-{i}.txt"
        # Same size, other topic, so later vaccine questions still find the seed article.
        text = seed.replace("vaccine", "grain").replace("doses", "tonnes")
        f.write_text(text.replace("330 million", f"{400 + i} million"), encoding="utf-8")
        files.append(f)
    started = time.perf_counter()
    summary = tab.upload([hidden, *files])
    elapsed = time.perf_counter() - started
    assert "Added 10" in summary, summary
    assert "notes.txt: " in summary and "skipped 1" in summary, summary
    assert "Orvana" in summary
    assert elapsed < 30, f"uploading ten articles took {elapsed:.1f}s"
    page.locator("#rag-stats").get_by_text(re.compile(r"\b11\b")).wait_for(timeout=10_000)

    answer = tab.ask("How much did the Orvana bridge cost?")
    assert "48 million euros" in answer.inner_text()
    assert "Orvana" in answer.locator(".rag-card .rag-title").first.inner_text()

    page.get_by_text("Delete an article").click()
    page.locator("#rag-docs input").click()
    page.locator("#rag-docs input").fill("Orvana")
    page.get_by_role("option", name=re.compile("Orvana")).first.click()
    page.locator("#rag-delete").click()
    page.locator("#rag-deleted").get_by_text("cannot be undone").wait_for(timeout=10_000)
    assert page.locator("#rag-stats").get_by_text(re.compile(r"\b11\b")).count() == 1
    page.locator("#rag-confirm-yes").click()
    page.locator("#rag-deleted").get_by_text("Deleted").wait_for(timeout=30_000)
    assert page.locator("#rag-summary .rag-summary").count() == 0  # the old "Added" is gone
    page.locator("#rag-stats").get_by_text(re.compile(r"\b10\b")).wait_for(timeout=10_000)
    again = tab.ask("How much did the Orvana bridge cost?")
    assert "48 million euros" not in again.inner_text()


def test_script_payloads_in_an_article_and_a_question_do_not_run(
    tab: Tab, tmp_path: Path, ui_pipeline: Pipeline
) -> None:
    page = tab.page
    payload = tmp_path / "harbour.md"
    payload.write_text(PAYLOAD_ARTICLE, encoding="utf-8")
    summary = tab.upload([payload])
    assert "Added 1" in summary, summary

    question = (
        '<img src=x onerror="window.__pwned=2">How many visitors did the Marlow festival draw?'
    )
    answer = tab.ask(question)
    card = answer.locator(".rag-card").first
    card.locator("summary").click()
    card.locator(".rag-article").wait_for()
    page.wait_for_timeout(500)  # give any injected handler time to fire

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert tab.dialogs == []
    assert page.locator("#rag-chat img[src='x'], #rag-chat script").count() == 0
    # The question is shown as the text the user typed.
    assert "onerror" in page.locator("#rag-chat .rag-q").last.inner_text()
    assert "48,000 visitors" in card.inner_text()
    doc = next(d for d in ui_pipeline.documents() if "Marlow" in d.text)
    if "<img" in doc.text:  # kept by the loader: then it must show as text
        assert "onerror" in card.locator(".rag-article").inner_text()
    if "<script>" in doc.title:
        assert "<script>" in card.locator(".rag-title").inner_text()


def test_gradio_client_api_answers_concurrent_users(app_url: str) -> None:
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    jobs = {
        "vaccine": client.submit(VACCINE_Q, api_name="/ask"),
        "countries": client.submit(
            "And to how many countries?",
            history=[[VACCINE_Q, "More than 330 million doses [1]"]],
            api_name="/ask",
        ),
        "refusal": client.submit("What is the capital of Peru?", api_name="/ask"),
    }
    out = {name: job.result(timeout=120) for name, job in jobs.items()}

    assert "330" in out["vaccine"]["text"] and not out["vaccine"]["refused"]
    assert "330 million" in out["vaccine"]["citations"][0]["text"]
    assert out["countries"]["standalone_question"].startswith("To how many countries")
    assert "110" in out["countries"]["text"]
    assert out["refusal"]["refused"] is True
    json.dumps(out)  # plain JSON all the way down
    with pytest.raises(Exception, match="type a question"):
        client.predict("   ", api_name="/ask")


def test_auth_is_required_when_configured(ui_pipeline: Pipeline, tmp_path: Path) -> None:
    from rag.ui import Access

    uploads = Path(ui_pipeline.stats().path) / "uploads"
    demo = build_app(ui_pipeline, upload_dir=uploads, access=Access(login=True))
    url = serve(demo, port=free_port(), auth=("reader", "s3cret"))
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + "config", timeout=10)
        assert err.value.code in (401, 403)
        # The upload and delete handlers are hidden from the API page but reachable through
        # the queue: without a login they must refuse too.
        for fn_index in range(12):
            body = json.dumps({"data": [[]], "fn_index": fn_index, "session_hash": "x"})
            join = urllib.request.Request(
                url + "gradio_api/queue/join",
                data=body.encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(join, timeout=10)
            assert err.value.code in (401, 403)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(
                urllib.request.Request(url + "gradio_api/upload", data=b"x", method="POST"),
                timeout=10,
            )
        assert err.value.code in (401, 403)

        def login(password: str) -> Any:
            return urllib.request.urlopen(
                urllib.request.Request(
                    url + "login",
                    data=f"username=reader&password={password}".encode(),
                    method="POST",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                ),
                timeout=10,
            )

        with pytest.raises(urllib.error.HTTPError):
            login("wrong")
        with login("s3cret") as resp:
            assert resp.status == 200
    finally:
        demo.close()


def test_server_does_not_hand_out_the_index_or_other_files(
    app_url: str, ui_pipeline: Pipeline
) -> None:
    uploads = Path(ui_pipeline.stats().path) / "uploads"
    uploads.mkdir(exist_ok=True)
    stored = uploads / "private-note.txt"
    stored.write_text("stored article", encoding="utf-8")
    for target in (stored, Path(ui_pipeline.stats().path), Path("/etc/passwd")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{app_url}gradio_api/file={target}", timeout=10)
        assert err.value.code in (403, 404)


# ---------------------------------------------------------------- no browser needed


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\evil.txt", "evil.txt"),
        ("/abs/path/news.md", "news.md"),
        ("..", "article"),
        (".bashrc", "article.bashrc"),
        ("a b<script>.html", "a_b_script.html"),
        ("naïve café.JSON", "na_ve_caf.json"),
        ("", "article"),
    ],
)
def test_safe_filename_cannot_leave_the_folder(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_uploads_are_filtered_and_stored_inside_the_upload_dir(tmp_path: Path) -> None:
    from rag.ui import UploadStore

    store = UploadStore(tmp_path / "index" / "uploads", max_bytes=1024)

    def upload(name: str, orig: str, data: bytes) -> dict[str, str]:
        # what Gradio hands over: a temp path under .incoming plus the browser-supplied name
        (store.incoming / name).mkdir()
        path = store.incoming / name / "f"
        path.write_bytes(data)
        return {"path": str(path), "orig_name": orig}

    payload = [
        upload("1", "../../outside.txt", b"text one"),
        upload("2", "outside.txt", b"text two"),  # same cleaned name, other content
        upload("3", "virus.exe", b"MZ"),
        upload("4", "big.txt", b"x" * 2048),
        upload("5", "empty.md", b""),
    ]
    uploads, refused = store.uploads(payload)
    saved, skipped = store.store(uploads)

    assert refused == []
    assert saved[0][0].name == "outside.txt"
    assert len(saved) == 2 and len({p.name for p, _ in saved}) == 2
    assert all(p.parent == store.root for p, _ in saved)
    assert not (tmp_path / "outside.txt").exists()
    reasons = dict(skipped)
    assert "not accepted" in reasons["virus.exe"]
    assert "larger than" in reasons["big.txt"]
    assert "empty" in reasons["empty.md"]


def test_parse_auth() -> None:
    assert parse_auth("ann:pw:with:colons") == ("ann", "pw:with:colons")
    assert parse_auth(None) is None
    for bad in ("nocolon", ":pw", "user:"):
        with pytest.raises(ValueError, match="USER:PASS"):
            parse_auth(bad)


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    configure_parser(p)
    return p.parse_args(list(argv))


def test_cli_defaults_are_local_only() -> None:
    args = _args()
    assert (args.host, args.port, args.auth) == ("127.0.0.1", 7860, None)


def test_run_fails_with_one_line_on_bad_auth_and_busy_port(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("RAG_UI_AUTH", raising=False)
    assert run(_args("--index", str(tmp_path), "--auth", "nopassword")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "USER:PASS" in err and "Traceback" not in err

    monkeypatch.setenv("RAG_UI_AUTH", "broken")
    assert run(_args("--index", str(tmp_path))) == 2
    assert "USER:PASS" in capsys.readouterr().err

    monkeypatch.delenv("RAG_UI_AUTH")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run(_args("--index", str(tmp_path), "--port", str(port))) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "busy" in err and "Traceback" not in err


def test_rendered_cards_escape_article_text(ui_pipeline: Pipeline) -> None:
    from rag.types import Answer, Citation
    from rag.ui import render_answer

    evil = 'Stocks <img src=x onerror="alert(1)"> rose <script>alert(2)</script> sharply.'
    cite = Citation(
        n=1,
        doc_id="nope",
        title="<b>T</b>",
        date="2022-01-01",
        text=evil,
        start=0,
        end=len(evil),
        score=1.0,
        passage=evil,
        passage_start=0,
        url="javascript:alert(3)",
    )
    html_out = render_answer(
        Answer(question="q", text="<script>x</script> [1]", refused=False, citations=[cite]),
        lambda doc_id: None,
    )
    assert "<script>" not in html_out and "<img" not in html_out and "<b>T" not in html_out
    assert "javascript:" not in html_out
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html_out
    assert "<mark>" in html_out and "\n" not in html_out


# ---------------------------------------------------------------- issue 19


@pytest.fixture
def cwd_app(
    tmp_path: Path, seed_index_dir: Path, embedder: Any, generator: Any, monkeypatch: Any
) -> Iterator[tuple[str, Pipeline]]:
    """`cd ~ && rag ui`: the index folder (and so the upload folder) lies inside the
    working directory, which is where Gradio refuses dot-named files."""
    home = tmp_path / "home"
    index = home / ".local" / "share" / "rag" / "index"
    shutil.copytree(seed_index_dir, index)
    monkeypatch.chdir(home)
    monkeypatch.setenv("GRADIO_TEMP_DIR", os.environ.get("GRADIO_TEMP_DIR", ""))  # restored
    pipeline = Pipeline(index, embedder=embedder, generator=generator)
    demo = build_app(pipeline, upload_dir=index / "uploads", max_upload_mb=1)
    url = serve(demo, port=free_port())
    yield url, pipeline
    demo.close()


def test_dot_named_files_do_not_break_an_upload_batch_inside_the_cwd(
    browser: Any, cwd_app: tuple[str, Pipeline], tmp_path: Path
) -> None:
    url, pipeline = cwd_app
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = Tab(context.new_page())
    page = tab.page
    page.goto(url)
    page.locator("#rag-question textarea").wait_for(timeout=30_000)
    picked = tmp_path / "picked"
    picked.mkdir()
    good = picked / "good.txt"
    good.write_text(BRIDGE_ARTICLE, encoding="utf-8")
    hidden = picked / ".hidden-notes.txt"
    hidden.write_text("date 2022-03-05 The Telmi ferry made its last crossing.", encoding="utf-8")
    evil = picked / "..\\..\\evil.txt"
    evil.write_text("date 2022-03-06 Ostrava Nova opened a ferry museum.", encoding="utf-8")

    summary = tab.upload([good, hidden, evil])
    assert "Added 3" in summary and "skipped 0" in summary, summary
    assert page.locator(".toast-body.error, .toast-wrap .error").count() == 0
    assert "Error" not in page.locator("#rag-stats").inner_text()
    # the file box is cleared, and the next batch goes through too
    page.wait_for_function(
        "() => document.querySelectorAll('#rag-files tr.file').length === 0", timeout=10_000
    )
    later = picked / "later.md"
    later.write_text("# Pier reopens\n\nThe Quenby pier reopened on 2 May 2022.", "utf-8")
    assert "Added 1" in tab.upload([later])
    titles = {d.title for d in pipeline.documents()}
    assert {"The Telmi ferry made its last crossing.", "Pier reopens"} <= titles
    incoming = Path(pipeline.stats().path) / "uploads" / ".incoming"
    assert [p for p in incoming.rglob("*") if p.is_file() and p.stat().st_size] == []
    context.close()


MARLOW = """---
title: Marlow harbour festival
date: 2022-02-14
source: Harbour Times
---
The Marlow harbour festival drew {visitors} visitors this year, organisers said on Monday.
"""


def test_uploading_a_file_again_updates_it(tab: Tab, tmp_path: Path, ui_pipeline: Pipeline) -> None:
    page = tab.page
    first, second = tmp_path / "1", tmp_path / "2"
    first.mkdir()
    second.mkdir()
    (first / "marlow_harbour.md").write_text(MARLOW.format(visitors="48,000"), "utf-8")
    (second / "marlow_harbour.md").write_text(MARLOW.format(visitors="52,500"), "utf-8")
    assert "Added 1" in tab.upload([first / "marlow_harbour.md"])
    summary = tab.upload([second / "marlow_harbour.md"])
    assert "Added 0" in summary and "updated 1" in summary, summary
    assert "Marlow harbour festival" in summary

    marlow = [d for d in ui_pipeline.documents() if d.title == "Marlow harbour festival"]
    assert len(marlow) == 1 and "52,500" in marlow[0].text
    uploads = Path(ui_pipeline.stats().path) / "uploads"
    assert [p.name for p in uploads.glob("marlow_harbour*")] == ["marlow_harbour.md"]
    answer = tab.ask("How many visitors did the Marlow harbour festival draw?")
    assert "52,500" in answer.inner_text() and "48,000" not in answer.inner_text()
    page.get_by_text("Delete an article").click()
    page.locator("#rag-docs input").click()
    page.locator("#rag-docs input").fill("Marlow harbour")
    assert page.get_by_role("option", name=re.compile("Marlow harbour festival")).count() == 1


def test_a_long_question_is_not_cut_silently(tab: Tab) -> None:
    page = tab.page
    question = "How many vaccine doses has the US delivered abroad? " + "x" * 1200
    page.locator("#rag-question textarea").fill(question)
    page.locator("#rag-ask").click()
    notice = page.locator("#rag-notice .rag-notice")
    notice.wait_for(timeout=10_000)
    assert f"{len(question):,} characters long; the limit is 1,000" in notice.inner_text()
    # the whole question stays in the box to be shortened, and nothing was asked
    assert page.locator("#rag-question textarea").input_value() == question
    assert page.locator("#rag-chat .rag-q").count() == 0


def test_filter_by_source_and_see_it_on_the_card(tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    (tmp_path / "pier.md").write_text(
        "---\ntitle: Quenby pier reopens\nsource: Quenby Gazette\ndate: 2022-05-02\n---\n"
        "The Quenby pier reopened on Monday after a repair that cost 3.4 million pounds.\n",
        "utf-8",
    )
    assert "Added 1" in tab.upload([tmp_path / "pier.md"])
    sources = page.locator("#rag-sources input")
    sources.click()
    sources.fill("quenby")
    page.get_by_role("option", name="Quenby Gazette").click()
    page.keyboard.press("Escape")
    answer = tab.ask("How much did the Quenby pier repair cost?")
    assert "3.4 million pounds" in answer.inner_text()
    assert answer.locator(".rag-card .rag-source").first.inner_text() == "Quenby Gazette"
    # the seed article has no source: with the filter on, it is not used
    other = tab.ask(VACCINE_Q)
    assert "Not answered" in other.inner_text() and "330 million" not in other.inner_text()
    assert "Blinken" not in other.inner_text()


@pytest.fixture
def served_ui(ui_pipeline: Pipeline) -> Iterator[tuple[str, threading.Event]]:
    """`rag serve` in this process, its warm-up held until the test releases it."""
    import uvicorn

    from rag.serve import ServeConfig, create_app

    app = create_app(ui_pipeline, ServeConfig(port=free_port()))
    state = app.state.rag
    release = threading.Event()

    def held_warm_up() -> None:
        release.wait(120)
        type(state).warm_up(state)

    state.warm_up = held_warm_up
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(300):
        if server.started:
            break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}", release
    release.set()
    server.should_exit = True
    thread.join(30)


def test_the_ui_under_rag_serve_is_styled_and_honest_about_loading(
    browser: Any, served_ui: tuple[str, threading.Event]
) -> None:
    url, release = served_ui
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = Tab(context.new_page())
    page = tab.page
    page.goto(url + "/ui/")
    page.locator("#rag-question textarea").wait_for(timeout=30_000)
    # not "Models ready" while /readyz says the models are loading
    assert urllib.request.urlopen(url + "/healthz", timeout=10).status == 200
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url + "/readyz", timeout=10)
    assert err.value.code == 503
    status = page.locator("#rag-status")
    assert "Loading the models" in status.inner_text()
    # a spinner drawn in CSS: Debian's Chromium has no emoji font for "⏳"
    before = status.locator(".rag-status").evaluate("e => getComputedStyle(e, '::before')")
    assert before["content"] == '""' and before["animationName"] == "rag-spin", before
    release.set()
    status.get_by_text("Models ready").wait_for(timeout=60_000)
    assert urllib.request.urlopen(url + "/readyz", timeout=10).status == 200

    # the same styles as `rag ui`: a short answer set apart from its quote, bordered cards,
    # and a refusal's passages dashed, not looking like evidence
    answer = tab.ask(VACCINE_Q)
    short = answer.locator(".rag-short")
    assert short.evaluate("e => getComputedStyle(e).display") == "block"
    card = answer.locator(".rag-card").first
    assert card.evaluate("e => getComputedStyle(e).borderTopStyle") == "solid"
    refusal = tab.ask("What is the capital of Peru?")
    near = refusal.locator(".rag-card.rag-near").first
    assert near.evaluate("e => getComputedStyle(e).borderTopStyle") == "dashed"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "serve_ui_chat.png"), full_page=True)
    context.close()


def test_looks_placeholder_file_list_times_titles_and_reasons(tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    chat = page.locator("#rag-chat").bounding_box()
    assert chat and chat["height"] < 600, chat  # not a mostly empty 680 px box at first
    fits = page.evaluate(
        """() => {
        const box = document.querySelector('#rag-question textarea');
        const style = getComputedStyle(box);
        const ctx = document.createElement('canvas').getContext('2d');
        ctx.font = `${style.fontSize} ${style.fontFamily}`;
        const room = box.clientWidth - parseFloat(style.paddingLeft)
            - parseFloat(style.paddingRight);
        return ctx.measureText(box.placeholder).width <= room;
    }"""
    )
    assert fits, "the question placeholder is cut off"
    assert re.search(
        r"last update \d{4}-\d\d-\d\d \d\d:\d\d UTC", page.locator("#rag-stats").inner_text()
    )

    files = []
    for name, text in [
        ("quenby council.txt", "March 4, 2024 — The Quenby city council approved a budget."),
        ("broken.json", '{"text": "unterminated'),
        ("ferry.md", "# Ferry timetable\n\nThe ferry now sails hourly."),
        ("tide.md", "# Tide tables\n\nHigh tide is at noon."),
    ]:
        (tmp_path / name).write_text(text, encoding="utf-8")
        files.append(tmp_path / name)
    page.locator("#rag-files input[type=file]").set_input_files([str(p) for p in files])
    page.wait_for_function(
        "() => document.querySelectorAll('#rag-files tr.file a.download-link').length >= 4",
        timeout=30_000,
    )
    box = page.locator("#rag-files").bounding_box()
    last = page.locator("#rag-files tr.file").last.bounding_box()
    assert box and last and last["y"] + last["height"] <= box["y"] + box["height"] + 1
    summary = tab.upload([])
    assert "The Quenby city council approved a budget." in summary, summary
    assert "March 4, 2024 —" not in summary
    # the whole reason, not json's "... starting at" with its position cut off
    assert "broken.json: invalid JSON at line 1: Unterminated string starting at column 10" in (
        summary
    )
