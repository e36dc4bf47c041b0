"""`rag ui`: a local Gradio app to ask questions, see the evidence, and manage the articles.

Everything article- or user-supplied is escaped here before it reaches the browser: the chat
receives finished, escaped HTML (and the chatbot's own sanitiser runs on top), so an article
holding `<script>` or an `onerror=` image is shown as text, never run.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embeddings.index import IngestReport
from embeddings.loaders import Skipped
from rag.errors import RagError
from rag.followup import rewrite_question

if TYPE_CHECKING:
    import gradio as gr

    from rag.pipeline import Pipeline

__all__ = [
    "ALLOWED_SUFFIXES",
    "EXAMPLE_QUESTIONS",
    "build_app",
    "configure_parser",
    "parse_auth",
    "render_answer",
    "run",
    "safe_filename",
    "serve",
]

ALLOWED_SUFFIXES = (".txt", ".md", ".html", ".json", ".jsonl")
EXAMPLE_QUESTIONS = (
    "How many vaccine doses has the US delivered abroad?",
    "What did Blinken say about US allies?",
    "Why were there tensions with China?",
)
AUTH_ENV = "RAG_UI_AUTH"
_MAX_CARDS = 5
_MAX_ARTICLE_CHARS = 50_000
_SAFE_NAME_RE = re.compile(r"[^A-Za-z0-9._-]+")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_CSS = """
.rag-q, .rag-answer { overflow-wrap: anywhere; }
.rag-rewritten { font-size: 0.85em; opacity: 0.8; margin-bottom: 0.4em; }
.rag-text { margin: 0 0 0.5em 0; }
.rag-refusal .rag-text { font-style: italic; }
.rag-short { display: block; font-size: 1.4em; font-weight: 600; margin-bottom: 0.3em; }
.rag-evidence { display: block; font-size: 0.95em; opacity: 0.85; }
.rag-sources-title { font-weight: 600; font-size: 0.85em; margin: 0.6em 0 0.3em; opacity: 0.8; }
.rag-card { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 0.5em 0.7em; margin: 0.4em 0; background: var(--background-fill-secondary); }
.rag-card-head { font-size: 0.9em; margin-bottom: 0.3em; }
.rag-title { font-weight: 600; }
.rag-date { opacity: 0.75; margin-left: 0.5em; }
.rag-passage { font-size: 0.9em; margin: 0.2em 0; padding-left: 0.6em;
  border-left: 3px solid var(--border-color-accent); }
.rag-card mark { background: #ffe58a; color: #1a1a1a; padding: 0 2px; border-radius: 2px; }
.rag-full summary { cursor: pointer; font-size: 0.85em; }
.rag-article { font-size: 0.85em; max-height: 22em; overflow-y: auto; padding: 0.4em; }
#rag-notice:empty { display: none; }
.rag-notice { padding: 0.4em 0.7em; border-radius: 6px; background: #fff4e5; color: #663c00; }
.rag-stats { font-size: 0.9em; }
"""


# --------------------------------------------------------------------------- rendering


def _esc(text: object) -> str:
    """Escape for HTML and keep line breaks without ever producing a blank line, so the
    chatbot's Markdown step treats the whole message as one raw HTML block."""
    s = html.escape(str(text), quote=True)
    return re.sub(r"\r\n|\r|\n", "<br>", s)


def _esc_compact(text: str) -> str:
    """`_esc` with paragraph gaps folded into one line break, for short passages."""
    return re.sub(r"(?:\s*<br>\s*)+", "<br>", _esc(text))


def _marked(text: str, spans: Sequence[tuple[int, int]], *, compact: bool = False) -> str:
    """`text` escaped, with each (start, end) span wrapped in `<mark>`."""
    esc = _esc_compact if compact else _esc
    out, pos = [], 0
    for start, end in sorted(spans):
        start, end = max(pos, start), min(len(text), end)
        if start >= end:
            continue
        out.append(f"{esc(text[pos:start])}<mark>{esc(text[start:end])}</mark>")
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def _span_in(text: str, offset: int, c: Any) -> tuple[int, int] | None:
    """Where citation `c`'s sentence sits in `text` (which starts at article `offset`)."""
    at = c.start - offset
    if not (at >= 0 and text[at : at + len(c.text)] == c.text):
        at = text.find(c.text) if c.text else -1
    return (at, at + len(c.text)) if at >= 0 else None


def _card_html(group: Sequence[Any], full_text: str | None) -> str:
    """One source card: a passage with every cited sentence of it highlighted."""
    c = group[0]
    passage: str = c.passage or c.text
    offset = c.passage_start if c.passage else c.start
    spans = [sp for sp in (_span_in(passage, offset, g) for g in group) if sp]
    lead = len(passage) - len(passage.lstrip())
    passage_html = _marked(passage.strip(), [(a - lead, b - lead) for a, b in spans], compact=True)
    if not spans:  # offsets disagree with the text: show both rather than guess
        passage_html += "".join(f" <mark>{_esc(g.text)}</mark>" for g in group)
    date_html = f'<span class="rag-date">{_esc(c.date)}</span>' if c.date else ""
    link = ""
    url = getattr(c, "url", None)
    if url and re.match(r"^https?://", url, re.IGNORECASE):
        link = (
            f' · <a href="{html.escape(url, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer nofollow">source</a>'
        )
    full = ""
    if full_text:
        text = full_text[:_MAX_ARTICLE_CHARS]
        body = _marked(text, [sp for sp in (_span_in(text, 0, g) for g in group) if sp])
        if len(full_text) > len(text):
            body += " …"
        full = (
            f'<details class="rag-full"><summary>Open the whole article</summary>'
            f'<div class="rag-article">{body}</div></details>'
        )
    numbers = "".join(f"[{int(g.n)}]" for g in group)
    return (
        f'<div class="rag-card" data-doc="{html.escape(c.doc_id, quote=True)}">'
        f'<div class="rag-card-head"><span class="rag-n">{numbers}</span> '
        f'<span class="rag-title">{_esc(c.title or "Untitled")}</span>{date_html}{link}</div>'
        f'<blockquote class="rag-passage">{passage_html}</blockquote>{full}</div>'
    )


def _group_by_passage(cites: Sequence[Any]) -> list[list[Any]]:
    """Citations from one passage share a card (a refusal's context often lists several
    sentences of one chunk)."""
    groups: dict[tuple[str, int], list[Any]] = {}
    for c in cites:
        key = (c.doc_id, c.passage_start if c.passage else c.start)
        groups.setdefault(key, []).append(c)
    return list(groups.values())[:_MAX_CARDS]


def render_question(question: str) -> str:
    return f'<div class="rag-q">{_esc(question)}</div>'


def render_streaming(partial: str, rewritten: str | None) -> str:
    head = _rewritten_html(rewritten)
    body = f'<p class="rag-text">{_esc(partial)}▍</p>'
    return f'<div class="rag-answer rag-streaming">{head}{body}</div>'


def _rewritten_html(rewritten: str | None) -> str:
    if not rewritten:
        return ""
    return f'<div class="rag-rewritten">Understood as: <q>{_esc(rewritten)}</q></div>'


def render_answer(answer: Any, pipeline: Any, rewritten: str | None = None) -> str:
    """The finished answer with its source cards (or a refusal with the closest passages)."""
    cites = answer.citations if not answer.refused else answer.context
    cards = []
    for group in _group_by_passage(cites):
        doc = pipeline.document(group[0].doc_id)
        cards.append(_card_html(group, doc.text if doc is not None else None))
    if answer.refused:
        title = "Closest passages looked at" if cards else "No passages matched"
        text = f"<strong>Not answered.</strong> {_esc(answer.text)}"
        cls = "rag-answer rag-refusal"
    else:
        title = "Sources"
        text = _esc(answer.text)
        cls = "rag-answer"
        if answer.mode == "extracted" and answer.evidence:  # the short answer, large, then why
            text = (
                f'<span class="rag-short">{text}</span>'
                f'<span class="rag-evidence">{_esc(answer.evidence)}</span>'
            )
    sources = (
        (
            f'<div class="rag-sources"><div class="rag-sources-title">{title}</div>'
            f"{''.join(cards)}</div>"
        )
        if cards or answer.refused
        else ""
    )
    return (
        f'<div class="{cls}" data-mode="{html.escape(answer.mode, quote=True)}">'
        f'{_rewritten_html(rewritten)}<p class="rag-text">{text}</p>{sources}</div>'
    )


def _notice(message: str) -> str:
    return f'<div class="rag-notice" role="status">{_esc(message)}</div>' if message else ""


def _stats_html(pipeline: Any) -> str:
    try:
        st = pipeline.stats()
    except RagError as e:
        return _notice(str(e))
    updated = (st.updated_at or "never").replace("T", " ")[:19]
    return (
        f'<div class="rag-stats"><b>{int(st.documents)}</b> {_plural(st.documents, "article")}'
        f" · <b>{int(st.chunks)}</b> {_plural(st.chunks, 'chunk')} · last update {_esc(updated)}"
        "</div>"
    )


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _doc_choices(pipeline: Any) -> list[tuple[str, str]]:
    docs = sorted(pipeline.documents(), key=lambda d: ((d.date or ""), d.title), reverse=True)
    return [(f"{d.title[:90]} ({d.date or 'no date'})", d.doc_id) for d in docs]


# --------------------------------------------------------------------------- uploads


def safe_filename(name: str) -> str:
    """A basename that cannot leave the upload folder: no directories, no `..`, no hidden
    files, only `[A-Za-z0-9._-]`."""
    base = re.split(r"[\\/]", name or "")[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _SAFE_NAME_RE.sub("_", stem).strip("._-")[:80] or "article"
    suffix = _SAFE_NAME_RE.sub("", suffix).lower()[:10]
    return f"{stem}.{suffix}" if suffix else stem


@dataclass
class _UploadResult:
    saved: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _store_uploads(files: Sequence[Any], upload_dir: Path, max_bytes: int) -> _UploadResult:
    """Copy accepted uploads into `upload_dir` under a cleaned name. Re-sending identical
    bytes reuses the stored file; a different file with a taken name gets a unique suffix
    (article ids come from the content, so an older version stays valid until deleted)."""
    result = _UploadResult()
    upload_dir.mkdir(parents=True, exist_ok=True)
    root = upload_dir.resolve()
    used: set[str] = set()
    for f in files:
        src = Path(getattr(f, "name", None) or str(f))
        orig = getattr(f, "orig_name", None) or src.name
        shown = re.split(r"[\\/]", orig)[-1] or "file"
        name = safe_filename(orig)
        suffix = Path(name).suffix.lower()
        try:
            size = src.stat().st_size
        except OSError:
            result.skipped.append((shown, "could not be read"))
            continue
        if suffix not in ALLOWED_SUFFIXES:
            result.skipped.append(
                (
                    shown,
                    f"type {suffix or '(none)'} not accepted; use " + ", ".join(ALLOWED_SUFFIXES),
                )
            )
        elif size > max_bytes:
            result.skipped.append((shown, f"larger than {max_bytes // (1024 * 1024)} MB"))
        elif size == 0:
            result.skipped.append((shown, "empty file"))
        else:
            stem = Path(name).stem
            while name in used or ((root / name).exists() and not _same_file(root / name, src)):
                name = f"{stem}-{uuid.uuid4().hex[:6]}{suffix}"
            used.add(name)
            dest = (root / name).resolve()
            if dest.parent != root:  # belt and braces: safe_filename already prevents this
                result.skipped.append((shown, "unsafe file name"))
                continue
            if not dest.exists():
                tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:6]}.part")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dest)
            result.saved.append(dest)
        _discard_incoming(src, upload_dir)
    return result


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def _discard_incoming(src: Path, upload_dir: Path) -> None:
    """Gradio's own copy of an upload lives under `<upload_dir>/.incoming`; drop it."""
    incoming = (upload_dir / ".incoming").resolve()
    try:
        path = src.resolve()
        if path.is_relative_to(incoming):
            path.unlink(missing_ok=True)
            if path.parent != incoming and not any(path.parent.iterdir()):
                path.parent.rmdir()  # Gradio's per-upload hash folder
    except OSError:
        pass


def _summary_html(
    pipeline: Any,
    added: list[str],
    updated: list[str],
    unchanged: list[str],
    skipped: list[tuple[str, str]],
    seconds: float,
) -> str:
    def titles(ids: list[str]) -> str:
        items = []
        for i in ids[:20]:
            d = pipeline.document(i)
            items.append(f"<li>{_esc(d.title if d else i)}</li>")
        more = f"<li>… and {len(ids) - 20} more</li>" if len(ids) > 20 else ""
        return f"<ul>{''.join(items)}{more}</ul>" if items else ""

    parts = [
        f'<div class="rag-summary"><p><b>Added {len(added)}</b> · updated {len(updated)}'
        f" · unchanged {len(unchanged)} · skipped {len(skipped)}"
        f" <small>({seconds:.1f} s)</small></p>"
    ]
    if added:
        parts.append(f"<div>Added:</div>{titles(added)}")
    if updated:
        parts.append(f"<div>Updated:</div>{titles(updated)}")
    if skipped:
        rows = "".join(f"<li>{_esc(n)}: {_esc(r)}</li>" for n, r in skipped)
        parts.append(f'<div>Skipped:</div><ul class="rag-skipped">{rows}</ul>')
    parts.append("</div>")
    return "".join(parts)


# --------------------------------------------------------------------------- app


def _check_date(value: str | None, label: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not _DATE_RE.match(value):
        raise ValueError(f"{label} must look like 2021-12-31.")
    try:
        date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{label} is not a real date: {value}.") from None
    return value


def _ask_kwargs(k: float, date_from: str, date_to: str, as_of: str) -> dict[str, Any]:
    d_from = _check_date(date_from, "From date")
    d_to = _check_date(date_to, "To date")
    if d_from and d_to and d_from > d_to:
        raise ValueError("The From date is after the To date.")
    kwargs: dict[str, Any] = {"k": max(1, int(k or 5))}
    if d_from or d_to:
        kwargs["filters"] = {"date_from": d_from, "date_to": d_to}
    a = _check_date(as_of, "As-of date")
    if a:
        kwargs["as_of"] = a
    return kwargs


def build_app(
    pipeline: Pipeline,
    *,
    upload_dir: Path,
    max_upload_mb: int = 10,
    warm_up: _WarmUp | None = None,
) -> gr.Blocks:
    """The whole UI around one shared, already-constructed `pipeline`.

    `warm_up`, if given, is started when the first page has loaded: loading the models
    earlier competes with serving the page for the two cores.

    Uploads land in `upload_dir` (inside the index directory); Gradio's own temporary copies
    go to `upload_dir/.incoming`, so nothing a user sends is written elsewhere.
    """
    upload_dir = Path(upload_dir)
    (upload_dir / ".incoming").mkdir(parents=True, exist_ok=True)
    # Read by Gradio when components and the server are created: keep its upload cache in
    # the index directory too.
    os.environ["GRADIO_TEMP_DIR"] = str((upload_dir / ".incoming").resolve())
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    max_bytes = int(max_upload_mb) * 1024 * 1024
    ingest_lock = threading.Lock()

    def respond(
        message: str,
        chat: list[dict[str, Any]] | None,
        hist: list[list[str]] | None,
        k: float,
        date_from: str,
        date_to: str,
        as_of: str,
    ) -> Iterator[tuple[Any, ...]]:
        chat = list(chat or [])
        hist = list(hist or [])
        question = (message or "").strip()
        if not question:
            yield chat, message, hist, _notice("Please type a question first.")
            return
        try:
            kwargs = _ask_kwargs(k, date_from, date_to, as_of)
        except ValueError as e:
            yield chat, message, hist, _notice(str(e))
            return
        standalone = rewrite_question(question, [(q, a) for q, a in hist])
        rewritten = standalone if standalone != question else None
        chat.append({"role": "user", "content": render_question(question)})
        chat.append({"role": "assistant", "content": render_streaming("", rewritten)})
        yield chat, "", hist, ""
        partial = ""
        answer = None
        try:
            for item in pipeline.stream(standalone, **kwargs):
                if isinstance(item, str):
                    partial += item
                    chat[-1] = {
                        "role": "assistant",
                        "content": render_streaming(partial, rewritten),
                    }
                    yield chat, "", hist, ""
                else:
                    answer = item
        except RagError as e:
            chat = chat[:-2]
            yield chat, message, hist, _notice(str(e))
            return
        if answer is None:
            chat = chat[:-2]
            yield chat, message, hist, _notice("No answer was produced; please try again.")
            return
        chat[-1] = {"role": "assistant", "content": render_answer(answer, pipeline, rewritten)}
        hist.append([standalone, answer.text])
        yield chat, "", hist, ""

    def ask_api(
        question: str,
        k: int = 5,
        date_from: str = "",
        date_to: str = "",
        as_of: str = "",
        history: list[list[str]] | None = None,
    ) -> dict[str, Any]:
        """Answer one question. `history` is [[previous question, answer], ...] for
        follow-ups. Returns the Answer as JSON plus the standalone question used."""
        if not (question or "").strip():
            raise gr.Error("Please type a question first.")
        try:
            kwargs = _ask_kwargs(k, date_from, date_to, as_of)
            pairs = [(str(q), str(a)) for q, a in (history or [])]
            standalone = rewrite_question(question.strip(), pairs)
            answer = pipeline.ask(standalone, **kwargs)
        except (ValueError, RagError) as e:
            raise gr.Error(str(e)) from None
        out = answer.to_dict()
        out["question"] = question.strip()
        out["standalone_question"] = standalone
        return out

    def pick_example(evt: gr.SelectData) -> str:
        value = evt.value
        return str(value.get("text", "")) if isinstance(value, dict) else str(value)

    # Gradio finds event-data parameters by their resolved annotation; this module's
    # annotations are strings and `gr` is imported lazily.
    pick_example.__annotations__["evt"] = gr.SelectData

    def refresh() -> tuple[Any, Any]:
        if warm_up is not None:
            warm_up.start()
        return _stats_html(pipeline), gr.update(choices=_doc_choices(pipeline), value=None)

    def add_articles(
        files: list[Any] | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> tuple[Any, ...]:
        t0 = time.perf_counter()
        files = list(files or [])
        if not files:
            return (_notice("Choose one or more files first."), *refresh(), None)
        stored = _store_uploads(files, upload_dir, max_bytes)
        added: list[str] = []
        updated: list[str] = []
        unchanged: list[str] = []
        skipped = list(stored.skipped)
        batches = [stored.saved[i : i + 5] for i in range(0, len(stored.saved), 5)]
        with ingest_lock:
            for b, batch in enumerate(batches):
                progress(
                    (b, len(batches)), desc=f"Indexing {len(stored.saved)} file(s)", unit="batch"
                )
                for report in _ingest(pipeline, batch):
                    added += report.added
                    updated += report.updated
                    unchanged += report.unchanged
                    skipped += [(Path(s.path).name, s.reason) for s in report.skipped]
        summary = _summary_html(
            pipeline, added, updated, unchanged, skipped, time.perf_counter() - t0
        )
        return (summary, *refresh(), None)

    def delete_article(doc_id: str | None) -> tuple[Any, ...]:
        if not doc_id:
            return (_notice("Pick an article to delete."), *refresh())
        doc = pipeline.document(doc_id)
        with ingest_lock:
            ok = pipeline.delete(doc_id)
        if (
            ok
            and doc is not None
            and doc.path
            and not any(d.path == doc.path for d in pipeline.documents())
        ):  # a .jsonl upload can hold several articles: keep it while any is indexed
            _remove_upload(Path(doc.path), upload_dir)
        title = doc.title if doc else doc_id
        msg = f"Deleted “{title}”." if ok else f"“{title}” was not in the index."
        return (_notice(msg), *refresh())

    with gr.Blocks(title="News QA", analytics_enabled=False, fill_width=True) as demo:
        hist_state = gr.State([])
        gr.Markdown("## News QA — answers from your articles, with sources")
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Chat",
                    show_label=False,
                    elem_id="rag-chat",
                    height=680,
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
                    box = gr.Textbox(
                        placeholder="Ask a question, e.g. a follow-up: "
                        "“And to how many countries?”",
                        show_label=False,
                        elem_id="rag-question",
                        scale=5,
                        max_length=1000,
                        autofocus=True,
                    )
                    send = gr.Button(
                        "Ask", variant="primary", elem_id="rag-ask", scale=0, min_width=90
                    )
                    clear = gr.Button("New chat", elem_id="rag-clear", scale=0, min_width=130)
            with gr.Column(scale=2):
                stats = gr.HTML(_stats_html(pipeline), elem_id="rag-stats")
                with gr.Accordion("Search settings", open=True):
                    k = gr.Slider(1, 10, value=5, step=1, label="Passages to use", elem_id="rag-k")
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
                        placeholder="YYYY-MM-DD (answer as known on that day)",
                        elem_id="rag-asof",
                        max_length=10,
                    )
                with gr.Accordion("Add articles", open=True):
                    files = gr.File(
                        file_count="multiple",
                        file_types=list(ALLOWED_SUFFIXES),
                        label=f"Articles ({', '.join(ALLOWED_SUFFIXES)}; "
                        f"≤ {max_upload_mb} MB each)",
                        elem_id="rag-files",
                        height=120,
                    )
                    add = gr.Button("Add to index", elem_id="rag-add")
                    summary = gr.HTML("", elem_id="rag-summary")
                with gr.Accordion("Delete an article", open=False):
                    docs = gr.Dropdown(
                        choices=[], label="Article", elem_id="rag-docs", interactive=True
                    )
                    delete = gr.Button("Delete", variant="stop", elem_id="rag-delete")
                    deleted = gr.HTML("", elem_id="rag-deleted")

        ask_inputs = [box, chatbot, hist_state, k, date_from, date_to, as_of]
        ask_outputs = [chatbot, box, hist_state, notice]
        box.submit(respond, ask_inputs, ask_outputs, api_visibility="private")
        send.click(respond, ask_inputs, ask_outputs, api_visibility="private")
        chatbot.example_select(pick_example, None, box, api_visibility="private", queue=False).then(
            respond, ask_inputs, ask_outputs, api_visibility="private"
        )
        clear.click(
            lambda: ([], [], "", ""),
            None,
            [chatbot, hist_state, box, notice],
            api_visibility="private",
            queue=False,
        )
        add.click(
            add_articles,
            files,
            [summary, stats, docs, files],
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="ingest",
        )
        delete.click(
            delete_article,
            docs,
            [deleted, stats, docs],
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="ingest",
        )
        demo.load(refresh, None, [stats, docs], api_visibility="private")
        gr.api(ask_api, api_name="ask")
    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


def _ingest(pipeline: Any, paths: list[Path]) -> list[Any]:
    """Ingest a batch; if the batch as a whole fails, retry file by file so one bad file is
    reported as skipped instead of sinking the rest."""
    if not paths:
        return []
    try:
        return [pipeline.ingest(paths)]
    except RagError:
        if len(paths) == 1:
            raise
    reports = []
    for p in paths:
        try:
            reports.append(pipeline.ingest([p]))
        except RagError as e:
            reports.append(IngestReport(skipped=[Skipped(str(p), str(e))]))
    return reports


def _remove_upload(path: Path, upload_dir: Path) -> None:
    """Delete the stored copy of an uploaded article; files outside the upload folder (the
    seeds, a user's own folders) are never touched."""
    try:
        p = path.resolve()
        if p.parent == upload_dir.resolve() and p.is_file():
            p.unlink()
    except OSError:
        pass


# --------------------------------------------------------------------------- CLI


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """`user:pass` -> ("user", "pass"); raises ValueError with a one-line reason."""
    if value is None or value == "":
        return None
    user, sep, password = value.partition(":")
    if not sep or not user.strip() or not password:
        raise ValueError("--auth / RAG_UI_AUTH must look like USER:PASS")
    return user.strip(), password


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Options of `rag ui` (the lead's CLI adds `--index`; added here only if missing)."""
    with contextlib.suppress(argparse.ArgumentError):
        p.add_argument("--index", default=None, metavar="DIR", help="index directory")
    p.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument(
        "--auth",
        default=None,
        metavar="USER:PASS",
        help=f"require a login (or set {AUTH_ENV}=USER:PASS)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=int,
        default=10,
        metavar="MB",
        help="largest accepted upload (default 10)",
    )


def serve(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
    max_upload_mb: int = 10,
    block: bool = False,
) -> str:
    """Start the server (never a public share link) and return its local URL."""
    import gradio as gr

    # System fonts: no web-font requests, and gradio's bundled subsets lack some bold
    # glyphs, which rendered titles in mixed fonts.
    font = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Liberation Sans", "sans-serif"]
    theme = gr.themes.Default(font=font)
    demo.launch(
        server_name=host,
        server_port=port,
        share=False,
        auth=auth,
        inbrowser=False,
        prevent_thread_lock=True,
        quiet=True,
        show_error=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        max_file_size=f"{int(max_upload_mb)}mb",
        footer_links=["api", "settings"],
        css=_CSS,
        theme=theme,
        enable_monitoring=False,
    )
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"
    if block:
        demo.block_thread()
    return url


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class _WarmUp:
    """Loads the models once, in the background, so the first real question answers quickly."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline
        self._started = threading.Event()

    def start(self) -> None:
        if not self._started.is_set():
            self._started.set()
            threading.Thread(target=self._run, name="rag-warm-up", daemon=True).start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # a failed warm-up only costs speed
            self._pipeline.ask(EXAMPLE_QUESTIONS[0], k=1)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """`rag ui`: serve until interrupted. Errors are one line on stderr."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        auth = parse_auth(args.auth if args.auth is not None else os.environ.get(AUTH_ENV))
    except ValueError as e:
        print(f"rag ui: {e}", file=sys.stderr)
        return 2
    if args.max_upload_mb < 1:
        print("rag ui: --max-upload-mb must be at least 1", file=sys.stderr)
        return 2
    host, port = args.host or "127.0.0.1", int(args.port)
    if not 0 < port < 65536:
        print(f"rag ui: invalid port {port}", file=sys.stderr)
        return 2
    if not _port_free(host, port):
        print(
            f"rag ui: cannot listen on {host}:{port} (port busy or address not available); "
            "choose another with --port",
            file=sys.stderr,
        )
        return 1
    try:
        from rag.pipeline import Pipeline, Settings

        settings = Settings.from_env(
            generator=getattr(args, "generator", None),
            model=getattr(args, "model", None),
            base_url=getattr(args, "base_url", None),
        )
        pipeline = Pipeline(getattr(args, "index", None), settings=settings)
        index_dir = Path(pipeline.stats().path)
        warm_up = _WarmUp(pipeline)
        demo = build_app(
            pipeline,
            upload_dir=index_dir / "uploads",
            max_upload_mb=args.max_upload_mb,
            warm_up=warm_up,
        )
        url = serve(demo, host=host, port=port, auth=auth, max_upload_mb=args.max_upload_mb)
    except (RagError, OSError) as e:
        print(f"rag ui: {e}", file=sys.stderr)
        return 1
    print(
        f"rag ui: serving {index_dir} at {url}" + ("  (login required)" if auth else ""), flush=True
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"rag ui: listening on {host}: reachable from other machines", flush=True)
    # Started by the first page load; without a visitor, shortly after start-up.
    timer = threading.Timer(5.0, warm_up.start)
    timer.daemon = True
    timer.start()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)  # stop cleanly under a service manager
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()
    return 0
