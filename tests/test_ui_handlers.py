"""The UI's handlers and rendering, called directly (no browser): uploads judged file by
file, API input validation, as-of, refusal cards, delete confirmation, access and the
loading state. Rendering and upload tests run in milliseconds with plain objects; the rest
use the real pipeline on a copy of the seed index."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from rag.pipeline import Pipeline
from rag.types import Answer, Citation
from rag.ui import Access, Handlers, UploadStore, WarmUp, render_answer
from rag.ui.inputs import ask_kwargs
from rag.ui.render import render_loading

VACCINE_Q = "How many vaccine doses has the US delivered abroad?"
GOOD = (
    "date 2022-01-02 Beavers of Lake Orvana\n\nThe beavers of Lake Orvana built 3 new dams in 2021."
)
NOTE = "date 2022-01-01 Otters of Lake Orvana\n\nThe otters of Lake Orvana numbered 12 last spring."


def _cite(n: int = 1) -> Citation:
    text = "The town has 12,500 residents."
    return Citation(n, "d1", "Willowmere", "2022-01-01", text, 0, len(text), 0.5, passage=text)


def test_refusal_cards_do_not_look_like_evidence() -> None:
    refused = Answer("q", "The indexed articles don't contain an answer.", True, context=[_cite()])
    out = render_answer(refused, lambda _id: None)
    assert "rag-near" in out and "not enough to answer" in out
    assert "<mark>" not in out and "[1]" not in out

    answered = Answer("q", "12,500", False, citations=[_cite()], mode="extracted", evidence="x [1]")
    out = render_answer(answered, lambda _id: None)
    assert "rag-near" not in out and "<mark>" in out and "[1]" in out


@pytest.mark.parametrize(
    ("k", "message"), [(0, "from 1 to"), (1000, "from 1 to"), ("5", "whole number"), (2.5, "whole")]
)
def test_bad_k_is_rejected_not_replaced(k: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ask_kwargs(k, "", "", "")


def test_dates_are_checked() -> None:
    assert ask_kwargs(3, "2021-01-01", "", "2021-12-01") == {
        "k": 3,
        "filters": {"date_from": "2021-01-01", "date_to": None},
        "as_of": "2021-12-01",
    }
    for bad in ("last week", "2021-02-30", "2021-1-1"):
        with pytest.raises(ValueError, match="real date"):
            ask_kwargs(5, bad, "", "")
    with pytest.raises(ValueError, match="after the To date"):
        ask_kwargs(5, "2022-01-02", "2022-01-01", "")


# ---------------------------------------------------------------- with the real pipeline


@pytest.fixture
def ui(tmp_path: Path, fresh_index_dir: Path, make_pipeline: Any) -> Handlers:
    pipeline = make_pipeline(fresh_index_dir)
    return Handlers(pipeline, UploadStore(fresh_index_dir / "uploads", max_bytes=64 * 1024))


def _incoming(h: Handlers, name: str, data: bytes) -> dict[str, Any]:
    """An upload as Gradio hands it over: a file in a hash folder under `.incoming`."""
    folder = h.uploads.incoming / os.urandom(8).hex()
    folder.mkdir()
    path = folder / name
    path.write_bytes(data)
    return {"path": str(path), "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def _request(user: str | None = None) -> gr.Request:
    return gr.Request(username=user)


def test_each_upload_is_judged_on_its_own_and_rejects_leave_nothing(ui: Handlers) -> None:
    # Gradio's upload route leaves empty temporary files behind; one from a while ago:
    leftover = ui.uploads.incoming / "tmpabc123"
    leftover.touch()
    os.utime(leftover, (time.time() - 60, time.time() - 60))
    payload = [
        _incoming(ui, ".notes.txt", NOTE.encode()),
        _incoming(ui, "..\\..\\x.txt", b"\xff\xfe\x00 not text \x00\xc3"),
        _incoming(ui, "good.txt", GOOD.encode()),
        _incoming(ui, "virus.exe", b"MZ"),
        {"path": "/etc/hostname", "orig_name": "hostname.txt"},  # not an upload
        {"path": None, "orig_name": "broken.txt"},
    ]
    summary, *_ = ui.add_articles(payload, _request())

    titles = {d.title for d in ui.pipeline.documents()}
    assert {"Otters of Lake Orvana", "Beavers of Lake Orvana"} <= titles
    assert "Added 2" in summary and "skipped 4" in summary
    for name, reason in [
        ("x.txt", "UTF-8"),
        ("virus.exe", "not accepted"),
        ("hostname.txt", "not an upload received by this server"),
        ("broken.txt", "not a file upload"),
    ]:
        assert f"{name}: " in summary and reason in summary, (name, summary)
    stored = sorted(p.name for p in ui.uploads.root.iterdir() if p.is_file())
    assert stored == ["good.txt", "notes.txt"]  # the rejected file was removed again
    # hash folders and leftovers gone (Gradio may keep its own empty history folder there)
    assert [p for p in ui.uploads.incoming.rglob("*") if p.is_file()] == []
    assert not any(len(p.name) == 16 for p in ui.uploads.incoming.iterdir())


def test_uploads_need_a_login_when_one_is_configured(ui: Handlers) -> None:
    ui.access = Access(login=True)
    before = ui.pipeline.stats().documents
    summary, *_ = ui.add_articles([_incoming(ui, "good.txt", GOOD.encode())], _request())
    assert "log in" in summary and ui.pipeline.stats().documents == before
    summary, *_ = ui.add_articles([_incoming(ui, "good.txt", GOOD.encode())], _request("ann"))
    assert "Added 1" in summary

    ui.access = Access(changes=False)
    doc_id = ui.pipeline.documents()[0].doc_id
    message, *_ = ui.delete_article(doc_id, _request("ann"))
    assert "turned off" in message and ui.pipeline.document(doc_id) is not None


def test_delete_asks_first_and_clears_the_upload_summary(ui: Handlers) -> None:
    ui.add_articles([_incoming(ui, "good.txt", GOOD.encode())], _request())
    doc = next(d for d in ui.pipeline.documents() if "Beavers" in d.title)
    message, row = ui.confirm_delete(doc.doc_id)
    assert "Beavers of Lake Orvana" in message and row["visible"] is True
    assert ui.pipeline.document(doc.doc_id) is not None  # nothing deleted yet

    message, row, summary, *_ = ui.delete_article(doc.doc_id, _request())
    assert "Deleted" in message and row["visible"] is False and summary == ""
    assert ui.pipeline.document(doc.doc_id) is None
    assert not (ui.uploads.root / "good.txt").exists()


def test_api_rejects_bad_input_with_one_line(
    seed_pipeline: Pipeline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = Handlers(seed_pipeline, UploadStore(tmp_path / "uploads", 1024))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"history": [["a"]]}, "history must be a list of [question, answer] pairs"),
        ({"history": "notalist"}, "history must be a list"),
        ({"k": 0}, "from 1 to"),
        ({"k": 1000}, "from 1 to"),
        ({"as_of": "yesterday"}, "real date"),
    ]
    for kwargs, message in cases:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rag.ui"), pytest.raises(gr.Error) as err:
            h.ask_api(VACCINE_Q, **kwargs)
        assert message in str(err.value.message)
        assert err.value.print_exception is False  # no server-side traceback
        assert [r.getMessage().count("\n") for r in caplog.records] == [0]


def test_as_of_excludes_later_articles_and_says_so(seed_pipeline: Pipeline) -> None:
    # The seed article is dated 2021-12-22; on 2021-12-01 nobody knew it.
    before = seed_pipeline.ask(VACCINE_Q, as_of="2021-12-01")
    assert before.refused and before.text.startswith("No article in the chosen dates")
    assert before.context == []
    later = seed_pipeline.ask(VACCINE_Q, as_of="2022-01-15")
    assert not later.refused and "330" in later.text
    narrowed = seed_pipeline.ask(VACCINE_Q, filters={"date_from": "2023-01-01"})
    assert narrowed.refused and narrowed.text.startswith("No article in the chosen dates")
    off_topic = seed_pipeline.ask("What is the capital of Peru?")
    assert off_topic.refused and not off_topic.text.startswith("No article")


def test_first_question_while_models_load_says_so(seed_pipeline: Pipeline, tmp_path: Path) -> None:
    warm = WarmUp(seed_pipeline)
    h = Handlers(seed_pipeline, UploadStore(tmp_path / "uploads", 1024), warm_up=warm)
    status, timer = h.status()
    assert 'data-ready="false"' in status and timer.active is True
    shown = [chat[-1]["content"] for chat, *_ in h.respond(VACCINE_Q, [], [], 5, "", "", "")]
    assert shown[0] == render_loading(None)
    assert "330" in shown[-1]
    assert warm.ready.wait(120)
    status, timer = h.status()
    assert "Models ready" in status and timer.active is False


def test_copied_index_keeps_uploads_separate(fresh_index_dir: Path) -> None:
    # UploadStore never writes outside its folder, even for a path-like name.
    store = UploadStore(fresh_index_dir / "uploads", 1024)
    folder = store.incoming / "h"
    folder.mkdir()
    (folder / "a.txt").write_text("date 2022-01-01 A\n\nText.")
    saved, skipped = store.store(
        store.uploads([{"path": str(folder / "a.txt"), "orig_name": "../../a.txt"}])[0]
    )
    assert [p.parent for p, _ in saved] == [store.root] and skipped == []
    shutil.rmtree(store.root)


def test_api_filters_by_source_and_rejects_long_questions(
    seed_pipeline: Pipeline, tmp_path: Path
) -> None:
    h = Handlers(seed_pipeline, UploadStore(tmp_path / "uploads", 1024))
    out = h.ask_api(VACCINE_Q, sources=["No Such Paper"])
    assert out["refused"] and out["text"].startswith("No article in the chosen")
    for kwargs, message in [
        ({"sources": [3]}, "Sources must be a list of source names"),
        ({"question": "x" * 1001}, "the limit is 1000"),
    ]:
        with pytest.raises(gr.Error) as err:
            h.ask_api(**{"question": VACCINE_Q, **kwargs})
        assert message in str(err.value.message)
    # the chat keeps an over-long question in its box and says why
    chat, box, _, notice = next(h.respond("y" * 1500, [], [], 5, "", "", ""))
    assert chat == [] and box == "y" * 1500 and "1,500 characters long" in notice


def test_delete_of_an_id_outside_the_pattern_says_why(ui: Handlers) -> None:
    message, row = ui.confirm_delete("../../etc/passwd")
    assert "is not valid" in message and row["visible"] is False
