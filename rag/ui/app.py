"""The Gradio layout and its handlers, around one shared, already-constructed `Pipeline`.

`Handlers` holds every event handler as a method, so each can be called and tested with
plain arguments; `build_app` only lays out components and wires events to them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embeddings.loaders import doc_id_problem
from rag.errors import InvalidQuestionError, RagError
from rag.followup import rewrite_question
from rag.inputs import MAX_QUESTION_CHARS, check_history, check_question
from rag.ui import render
from rag.ui.inputs import MAX_K, Access, ask_kwargs
from rag.ui.uploads import ALLOWED_SUFFIXES, UploadStore

if TYPE_CHECKING:
    import gradio as gr

    from rag.pipeline import Pipeline
    from rag.ui.server import Readiness

__all__ = ["EXAMPLE_QUESTIONS", "Handlers", "build_app"]

# The file box's value as JSON text of {path, orig_name} (see `build_app`).
_PICKED_JS = """(files) => JSON.stringify((files ? [].concat(files) : []).map(
    (f) => ({path: f.path, orig_name: f.orig_name})))"""
EXAMPLE_QUESTIONS = (
    "How many vaccine doses has the US delivered abroad?",
    "What did Blinken say about US allies?",
    "Why were there tensions with China?",
)
log = logging.getLogger("rag.ui")


class Handlers:
    """Every UI event as a method over one pipeline and its upload folder."""

    def __init__(
        self,
        pipeline: Pipeline,
        uploads: UploadStore,
        *,
        warm_up: Readiness | None = None,
        access: Access | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.uploads = uploads
        self.warm_up = warm_up
        self.access = access or Access()
        self._ingest_lock = threading.Lock()

    # ---- questions -----------------------------------------------------------------------

    def ready(self) -> bool:
        return self.warm_up is None or self.warm_up.ready.is_set()

    def respond(
        self,
        message: str,
        chat: list[dict[str, Any]] | None,
        hist: list[list[str]] | None,
        k: float,
        date_from: str,
        date_to: str,
        as_of: str,
        sources: list[str] | None = None,
    ) -> Iterator[tuple[Any, ...]]:
        """The chat: yields (chat, question box, history, notice) as the answer comes. A bad
        question or setting leaves the question in its box, with a notice saying why."""
        chat, hist = list(chat or []), list(hist or [])
        question = (message or "").strip()
        if not question:
            yield chat, message, hist, render.notice("Please type a question first.")
            return
        try:
            if len(question) > MAX_QUESTION_CHARS:
                raise InvalidQuestionError(
                    f"The question is {len(question):,} characters long; the limit is "
                    f"{MAX_QUESTION_CHARS:,}. Please shorten it."
                )
            check_question(question)
            kwargs = ask_kwargs(k, date_from, date_to, as_of, sources)
        except InvalidQuestionError as e:
            yield chat, message, hist, render.notice(str(e))
            return
        standalone = rewrite_question(question, [(q, a) for q, a in hist])
        rewritten = standalone if standalone != question else None
        chat.append({"role": "user", "content": render.render_question(question)})
        waiting = render.render_streaming("", rewritten)
        if not self.ready():
            if self.warm_up is not None:
                self.warm_up.start()
            waiting = render.render_loading(rewritten)
        chat.append({"role": "assistant", "content": waiting})
        yield chat, "", hist, ""
        partial, answer = "", None
        try:
            for item in self.pipeline.stream(standalone, **kwargs):
                if isinstance(item, str):
                    partial += item
                    chat[-1] = {
                        "role": "assistant",
                        "content": render.render_streaming(partial, rewritten),
                    }
                    yield chat, "", hist, ""
                else:
                    answer = item
        except RagError as e:
            log.warning("question not answered: %s", e)
            yield chat[:-2], message, hist, render.notice(str(e))
            return
        if answer is None:  # pragma: no cover - stream always ends with an Answer
            yield chat[:-2], message, hist, render.notice("No answer was produced; try again.")
            return
        html_out = render.render_answer(answer, self._article_text, rewritten)
        chat[-1] = {"role": "assistant", "content": html_out}
        hist.append([standalone, answer.text])
        yield chat, "", hist, ""

    def ask_api(
        self,
        question: str,
        k: int = 5,
        date_from: str = "",
        date_to: str = "",
        as_of: str = "",
        history: list[list[str]] | None = None,
        sources: list[str] | None = None,
    ) -> dict[str, Any]:
        """Answer one question. `history` is [[previous question, answer], ...] for
        follow-ups; `sources` restricts the search to those sources. Returns the Answer as
        JSON plus the standalone question used. Bad input raises `gr.Error` with a one-line
        reason."""
        import gradio as gr

        try:
            if not isinstance(question, str) or not question.strip():
                raise InvalidQuestionError("Please type a question first.")
            check_question(question)
            kwargs = ask_kwargs(k, date_from, date_to, as_of, sources)
            pairs = check_history(history if history is not None else [])
            standalone = rewrite_question(question.strip(), pairs)
            answer = self.pipeline.ask(standalone, **kwargs)
        except RagError as e:
            log.warning("api ask rejected: %s", e)  # one line, no traceback: a user error
            raise gr.Error(str(e), print_exception=False) from None
        out = answer.to_dict()
        out["question"] = question.strip()
        out["standalone_question"] = standalone
        return out

    def _article_text(self, doc_id: str) -> str | None:
        doc = self.pipeline.document(doc_id)
        return doc.text if doc is not None else None

    # ---- index panel ---------------------------------------------------------------------

    def stats(self) -> str:
        try:
            return render.stats_html(self.pipeline.stats())
        except RagError as e:
            return render.notice(str(e))

    def choices(self) -> list[tuple[str, str]]:
        try:
            return render.doc_choices(self.pipeline.documents())
        except RagError:
            return []

    def sources(self) -> list[str]:
        try:
            return render.source_choices(self.pipeline.documents())
        except RagError:
            return []

    def followed(self) -> str:
        """The watched sources and their newest articles (`rag watch`, `serve --watch`)."""
        from rag.ui.sources import sources_html

        return sources_html(self.pipeline.index.path)

    def status(self) -> tuple[str, Any]:
        """Model readiness for the page, and whether to keep polling."""
        import gradio as gr

        ready = self.ready()
        return render.status_html(ready), gr.Timer(active=not ready)

    def refresh(self) -> tuple[Any, ...]:
        """(stats, article choices, source choices) after the index changed."""
        import gradio as gr

        return (
            self.stats(),
            gr.update(choices=self.choices(), value=None),
            gr.update(choices=self.sources()),
        )

    def _may_change(self, request: gr.Request | None) -> str | None:
        """Why this request may not change the index, or None."""
        if not self.access.changes:
            return "Adding and deleting articles is turned off: start `rag ui --auth USER:PASS`."
        if self.access.login and not getattr(request, "username", None):
            return "Please log in to change the index."
        return None

    def add_articles(self, payload: str | list[Any] | None, request: gr.Request) -> tuple[Any, ...]:
        """Store, check and ingest every uploaded file on its own; returns (summary, stats,
        article choices, source choices, file box). `payload` is the file box's value as
        JSON text (see `build_app`) or as a list."""
        t0 = time.perf_counter()
        refused = self._may_change(request)
        if refused:
            return (render.notice(refused), *self.refresh(), None)
        if isinstance(payload, str):
            try:
                payload = json.loads(payload) if payload.strip() else []
            except ValueError:
                payload = None
            if not isinstance(payload, list):
                return (render.notice("Choose the files again."), *self.refresh(), None)
        if not payload:
            return (render.notice("Choose one or more files first."), *self.refresh(), None)
        uploads, skipped = self.uploads.uploads(payload)
        saved, not_stored = self.uploads.store(uploads)
        with self._ingest_lock:
            outcome = self.uploads.ingest(self.pipeline, saved)
        self.uploads.sweep()

        def title(doc_id: str) -> str:
            doc = self.pipeline.document(doc_id)
            return doc.title if doc else doc_id

        summary = render.summary_html(
            title,
            outcome.added,
            outcome.updated,
            outcome.unchanged,
            [*skipped, *not_stored, *outcome.skipped],
            time.perf_counter() - t0,
        )
        return (summary, *self.refresh(), None)

    def confirm_delete(self, doc_id: str | None) -> tuple[Any, ...]:
        """First click on Delete: name the article and show the confirm buttons."""
        import gradio as gr

        if not doc_id:
            return render.notice("Pick an article to delete."), gr.update(visible=False)
        doc = self.pipeline.document(doc_id)
        if doc is None:
            problem = doc_id_problem(doc_id) or f"No article {doc_id!r} in the index."
            return render.notice(problem), gr.update(visible=False)
        title = doc.title
        question = f"Delete “{title}” from the index? This cannot be undone."
        return render.notice(question), gr.update(visible=True)

    def delete_article(self, doc_id: str | None, request: gr.Request) -> tuple[Any, ...]:
        """Confirmed delete; returns (message, confirm row, upload summary, stats, article
        choices, source choices)."""
        import gradio as gr

        hidden = gr.update(visible=False)
        refused = self._may_change(request)
        if refused or not doc_id:
            msg = refused or "Pick an article to delete."
            return (render.notice(msg), hidden, "", *self.refresh())
        doc = self.pipeline.document(doc_id)
        with self._ingest_lock:
            ok = self.pipeline.delete(doc_id)
        if ok and doc is not None and doc.path:
            self.uploads.remove_unused(self.pipeline, [Path(doc.path)])
        title = doc.title if doc else doc_id
        msg = f"Deleted “{title}”." if ok else f"“{title}” was not in the index."
        return (render.notice(msg), hidden, "", *self.refresh())


def build_app(
    pipeline: Pipeline,
    *,
    upload_dir: Path,
    max_upload_mb: int = 10,
    warm_up: Readiness | None = None,
    access: Access | None = None,
) -> gr.Blocks:
    """The whole UI. Uploads land in `upload_dir` (inside the index directory); Gradio's own
    temporary copies go to `upload_dir/.incoming`, so nothing a user sends is written
    elsewhere. `warm_up`, if given, drives the "loading the models" state."""
    uploads = UploadStore(Path(upload_dir), int(max_upload_mb) * 1024 * 1024)
    # Read by Gradio when components and the server are created.
    os.environ["GRADIO_TEMP_DIR"] = str(uploads.incoming)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    access = access or Access()
    h = Handlers(pipeline, uploads, warm_up=warm_up, access=access)

    def pick_example(evt: gr.SelectData) -> str:
        value = evt.value
        return str(value.get("text", "")) if isinstance(value, dict) else str(value)

    # Gradio finds event-data parameters by their resolved annotation; this module's
    # annotations are strings and `gr` is imported lazily.
    pick_example.__annotations__["evt"] = gr.SelectData
    for method in (Handlers.add_articles, Handlers.delete_article):
        method.__annotations__["request"] = gr.Request

    with gr.Blocks(title="News QA", analytics_enabled=False, fill_width=True) as demo:
        hist_state = gr.State([])
        gr.Markdown("## News QA — answers from your articles, with sources")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Chat",
                    show_label=False,
                    elem_id="rag-chat",
                    # grows with the conversation instead of a mostly empty 680 px box
                    height=None,
                    min_height=360,
                    max_height=680,
                    sanitize_html=True,
                    render_markdown=True,
                    latex_delimiters=[],
                    allow_tags=False,
                    feedback_options=None,
                    layout="panel",
                    buttons=["copy", "copy_all"],
                    examples=[{"text": q} for q in EXAMPLE_QUESTIONS],
                    placeholder="Ask about the articles in the index — or pick an example.",
                )
                notice = gr.HTML("", elem_id="rag-notice")
                with gr.Row():
                    # No max_length: the browser would cut a pasted question without a word;
                    # `respond` says how long it is instead.
                    box = gr.Textbox(
                        placeholder="Ask a question, or a follow-up like “And to how many?”",
                        show_label=False,
                        elem_id="rag-question",
                        scale=5,
                        autofocus=True,
                    )
                    send = gr.Button(
                        "Ask", variant="primary", elem_id="rag-ask", scale=0, min_width=90
                    )
                    clear = gr.Button("New chat", elem_id="rag-clear", scale=0, min_width=130)
            with gr.Column(scale=2):
                status = gr.HTML(render.status_html(h.ready()), elem_id="rag-status")
                timer = gr.Timer(1.0, active=not h.ready())
                stats = gr.HTML(h.stats(), elem_id="rag-stats")
                with gr.Accordion("Search settings", open=True):
                    k = gr.Slider(
                        1, MAX_K, value=5, step=1, label="Passages to use", elem_id="rag-k"
                    )
                    with gr.Row():
                        date_from = gr.Textbox(
                            label="From date",
                            placeholder="YYYY-MM-DD",
                            elem_id="rag-from",
                            max_length=10,
                        )
                        date_to = gr.Textbox(
                            label="To date",
                            placeholder="YYYY-MM-DD",
                            elem_id="rag-to",
                            max_length=10,
                        )
                    as_of = gr.Textbox(
                        label="As of",
                        placeholder="YYYY-MM-DD (only articles dated up to that day)",
                        elem_id="rag-asof",
                        max_length=10,
                    )
                    sources = gr.Dropdown(
                        choices=h.sources(),
                        value=[],
                        multiselect=True,
                        label="Sources (none chosen: all)",
                        elem_id="rag-sources",
                        interactive=True,
                    )
                with gr.Accordion("Add articles", open=access.changes, visible=access.changes):
                    files = gr.File(
                        file_count="multiple",
                        file_types=list(ALLOWED_SUFFIXES),
                        label=f"Articles ({', '.join(ALLOWED_SUFFIXES)}; "
                        f"≤ {max_upload_mb} MB each)",
                        elem_id="rag-files",
                    )
                    # What "Add" reads: the file box's value as plain JSON. Given the file
                    # box itself, Gradio refuses the whole batch over one dot-named file
                    # when the index lies inside the working directory ("Dotfiles located
                    # in the temporary directory…"); `UploadStore.uploads` checks the paths.
                    picked = gr.Textbox("", visible=False, elem_id="rag-picked")
                    add = gr.Button("Add to index", elem_id="rag-add")
                    summary = gr.HTML("", elem_id="rag-summary")
                with gr.Accordion("Followed sources", open=False):
                    followed = gr.HTML("", elem_id="rag-followed")
                    refresh_followed = gr.Button("Refresh", size="sm", elem_id="rag-followed-go")
                with gr.Accordion("Delete an article", open=False, visible=access.changes):
                    docs = gr.Dropdown(
                        choices=[], label="Article", elem_id="rag-docs", interactive=True
                    )
                    delete = gr.Button("Delete…", variant="stop", elem_id="rag-delete")
                    deleted = gr.HTML("", elem_id="rag-deleted")
                    with gr.Row(visible=False, elem_id="rag-confirm") as confirm_row:
                        confirm = gr.Button(
                            "Yes, delete", variant="stop", elem_id="rag-confirm-yes"
                        )
                        cancel = gr.Button("Cancel", elem_id="rag-confirm-no")

        ask_inputs = [box, chatbot, hist_state, k, date_from, date_to, as_of, sources]
        ask_outputs = [chatbot, box, hist_state, notice]
        private: dict[str, Any] = {"api_visibility": "private"}
        box.submit(h.respond, ask_inputs, ask_outputs, **private)
        send.click(h.respond, ask_inputs, ask_outputs, **private)
        chatbot.example_select(pick_example, None, box, queue=False, **private).then(
            h.respond, ask_inputs, ask_outputs, **private
        )
        clear.click(
            lambda: ([], [], "", ""),
            None,
            [chatbot, hist_state, box, notice],
            queue=False,
            **private,
        )
        ingest: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "ingest", **private}
        # Raw payload (preprocess=False): one odd file must not fail the whole batch.
        files.change(None, files, picked, js=_PICKED_JS, queue=False, **private)
        add.click(
            h.add_articles,
            picked,
            [summary, stats, docs, sources, files],
            preprocess=False,
            **ingest,
        )
        delete.click(h.confirm_delete, docs, [deleted, confirm_row], queue=False, **private)
        cancel.click(
            lambda: ("", gr.update(visible=False)),
            None,
            [deleted, confirm_row],
            queue=False,
            **private,
        )
        confirm.click(
            h.delete_article,
            docs,
            [deleted, confirm_row, summary, stats, docs, sources],
            **ingest,
        )
        timer.tick(h.status, None, [status, timer], **private)
        demo.load(h.refresh, None, [stats, docs, sources], **private)
        for event in (demo.load, refresh_followed.click):
            event(h.followed, None, followed, **private)
        gr.api(h.ask_api, api_name="ask")
    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo
