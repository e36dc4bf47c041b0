"""HTML for the chat: pure functions from answers and documents to escaped markup.

Everything article- or user-supplied is escaped here before it reaches the browser: the chat
receives finished, escaped HTML (and the chatbot's own sanitiser runs on top), so an article
holding `<script>` or an `onerror=` image is shown as text, never run. Nothing here imports
Gradio, so every function is testable with plain objects in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable, Sequence

from embeddings.index import IndexStats
from embeddings.types import Document
from rag.types import AlsoPublished, Answer, Citation

__all__ = [
    "ArticleText",
    "doc_choices",
    "esc",
    "notice",
    "render_answer",
    "render_loading",
    "render_question",
    "render_streaming",
    "source_choices",
    "stats_html",
    "status_html",
    "summary_html",
]

ArticleText = Callable[[str], "str | None"]
"""doc_id -> the whole article's text (None when the article is gone)."""

MAX_CARDS = 5
MAX_ARTICLE_CHARS = 50_000
_MAX_LISTED = 20


def esc(text: object) -> str:
    """Escape for HTML and keep line breaks without ever producing a blank line, so the
    chatbot's Markdown step treats the whole message as one raw HTML block."""
    s = html.escape(str(text), quote=True)
    return re.sub(r"\r\n|\r|\n", "<br>", s)


def _esc_compact(text: str) -> str:
    """`esc` with paragraph gaps folded into one line break, for short passages."""
    return re.sub(r"(?:\s*<br>\s*)+", "<br>", esc(text))


def _marked(text: str, spans: Sequence[tuple[int, int]], *, compact: bool = False) -> str:
    """`text` escaped, with each (start, end) span wrapped in `<mark>`."""
    escape = _esc_compact if compact else esc
    out, pos = [], 0
    for start, end in sorted(spans):
        start, end = max(pos, start), min(len(text), end)
        if start >= end:
            continue
        out.append(f"{escape(text[pos:start])}<mark>{escape(text[start:end])}</mark>")
        pos = end
    out.append(escape(text[pos:]))
    return "".join(out)


def _span_in(text: str, offset: int, c: Citation) -> tuple[int, int] | None:
    """Where citation `c`'s sentence sits in `text` (which starts at article `offset`)."""
    at = c.start - offset
    if not (at >= 0 and text[at : at + len(c.text)] == c.text):
        at = text.find(c.text) if c.text else -1
    return (at, at + len(c.text)) if at >= 0 else None


def _card_html(group: Sequence[Citation], full_text: str | None, *, evidence: bool) -> str:
    """One source card: a passage with every cited sentence of it highlighted.

    A refusal's closest passages (`evidence=False`) get no numbers and no highlight: they
    were looked at and found wanting, and must not read as support.
    """
    c = group[0]
    passage = c.passage or c.text
    offset = c.passage_start if c.passage else c.start
    spans = [sp for sp in (_span_in(passage, offset, g) for g in group) if sp] if evidence else []
    lead = len(passage) - len(passage.lstrip())
    passage_html = _marked(passage.strip(), [(a - lead, b - lead) for a, b in spans], compact=True)
    if evidence and not spans:  # offsets disagree with the text: show both rather than guess
        passage_html += "".join(f" <mark>{esc(g.text)}</mark>" for g in group)
    date_html = f'<span class="rag-date">{esc(c.date)}</span>' if c.date else ""
    source_html = f'<span class="rag-source">{esc(c.source)}</span>' if c.source else ""
    link = ""
    if c.url and re.match(r"^https?://", c.url, re.IGNORECASE):
        link = (
            f' · <a href="{html.escape(c.url, quote=True)}" target="_blank" '
            f'rel="noopener noreferrer nofollow">source</a>'
        )
    also = ""
    if c.also:
        outlets = ", ".join(_outlet_html(a) for a in c.also)
        also = f'<div class="rag-also">also published by {outlets}</div>'
    full = ""
    if full_text:
        text = full_text[:MAX_ARTICLE_CHARS]
        marks = [sp for sp in (_span_in(text, 0, g) for g in group) if sp] if evidence else []
        body = _marked(text, marks)
        if len(full_text) > len(text):
            body += " …"
        full = (
            f'<details class="rag-full"><summary>Open the whole article</summary>'
            f'<div class="rag-article">{body}</div></details>'
        )
    if evidence:
        label = f'<span class="rag-n">{"".join(f"[{int(g.n)}]" for g in group)}</span> '
        cls = "rag-card"
    else:
        label = '<span class="rag-near-label">not enough to answer</span>'
        cls = "rag-card rag-near"
    return (
        f'<div class="{cls}" data-doc="{html.escape(c.doc_id, quote=True)}">'
        f'<div class="rag-card-head">{label}'
        f'<span class="rag-title">{esc(c.title or "Untitled")}</span>'
        f"{source_html}{date_html}{link}</div>"
        f'<blockquote class="rag-passage">{passage_html}</blockquote>{also}{full}</div>'
    )


def _outlet_html(a: AlsoPublished) -> str:
    """An outlet's name, linked to its copy of the story when the address is a web one."""
    name = esc(a.source or a.title or a.doc_id)
    if a.url and re.match(r"^https?://", a.url, re.IGNORECASE):
        href = html.escape(a.url, quote=True)
        return f'<a href="{href}" target="_blank" rel="noopener noreferrer nofollow">{name}</a>'
    return name


def _group_by_passage(cites: Sequence[Citation]) -> list[list[Citation]]:
    """Citations from one passage share a card (a refusal's context often lists several
    sentences of one chunk)."""
    groups: dict[tuple[str, int], list[Citation]] = {}
    for c in cites:
        key = (c.doc_id, c.passage_start if c.passage else c.start)
        groups.setdefault(key, []).append(c)
    return list(groups.values())[:MAX_CARDS]


def render_question(question: str) -> str:
    return f'<div class="rag-q">{esc(question)}</div>'


def _rewritten_html(rewritten: str | None) -> str:
    if not rewritten:
        return ""
    return f'<div class="rag-rewritten">Understood as: <q>{esc(rewritten)}</q></div>'


def render_streaming(partial: str, rewritten: str | None) -> str:
    head = _rewritten_html(rewritten)
    body = f'<p class="rag-text">{esc(partial)}▍</p>'
    return f'<div class="rag-answer rag-streaming">{head}{body}</div>'


def render_loading(rewritten: str | None) -> str:
    """Shown while the first question waits for the models to load (7–36 s measured)."""
    body = '<p class="rag-text">Loading the models (first question after start)…</p>'
    head = _rewritten_html(rewritten)
    return f'<div class="rag-answer rag-streaming rag-loading">{head}{body}</div>'


def render_answer(answer: Answer, article_text: ArticleText, rewritten: str | None = None) -> str:
    """The finished answer with its source cards, or a refusal with the closest passages
    marked as not enough to answer."""
    evidence = not answer.refused
    cards = [
        _card_html(group, article_text(group[0].doc_id), evidence=evidence)
        for group in _group_by_passage(answer.citations if evidence else answer.context)
    ]
    if answer.refused:
        title = "Closest passages looked at — not enough to answer" if cards else ""
        text = f"<strong>Not answered.</strong> {esc(answer.text)}"
        cls = "rag-answer rag-refusal"
    else:
        title = "Sources"
        text = esc(answer.text)
        cls = "rag-answer"
        if answer.mode == "extracted" and answer.evidence:  # the short answer, large, then why
            text = (
                f'<span class="rag-short">{text}</span>'
                f'<span class="rag-evidence">{esc(answer.evidence)}</span>'
            )
    sources = (
        f'<div class="rag-sources"><div class="rag-sources-title">{title}</div>'
        f"{''.join(cards)}</div>"
        if cards
        else ""
    )
    return (
        f'<div class="{cls}" data-mode="{html.escape(answer.mode, quote=True)}">'
        f'{_rewritten_html(rewritten)}<p class="rag-text">{text}</p>{sources}</div>'
    )


def notice(message: str) -> str:
    return f'<div class="rag-notice" role="status">{esc(message)}</div>' if message else ""


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def stats_html(st: IndexStats) -> str:
    updated = _when(st.updated_at)
    return (
        f'<div class="rag-stats"><b>{int(st.documents)}</b> {_plural(st.documents, "article")}'
        f" · <b>{int(st.chunks)}</b> {_plural(st.chunks, 'chunk')} · last update {esc(updated)}"
        "</div>"
    )


def _when(stamp: str | None) -> str:
    """An ISO time stamp (UTC, as the index writes it) as "2026-11-29 05:58 UTC"."""
    if not stamp:
        return "never"
    try:
        when = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M UTC")


def status_html(ready: bool) -> str:
    """Model readiness, so nobody mistakes the first slow answer for a hang."""
    text = "Models ready" if ready else "Loading the models…"
    return f'<div class="rag-status" data-ready="{str(ready).lower()}">{text}</div>'


def doc_choices(docs: Sequence[Document]) -> list[tuple[str, str]]:
    ordered = sorted(docs, key=lambda d: ((d.date or ""), d.title), reverse=True)
    return [
        (f"{d.title[:90]} ({', '.join(x for x in (d.source, d.date or 'no date') if x)})", d.doc_id)
        for d in ordered
    ]


def source_choices(docs: Sequence[Document]) -> list[str]:
    """The distinct sources, one per spelling ignoring case, sorted."""
    names: dict[str, str] = {}
    for d in docs:
        if d.source and d.source.strip():
            names.setdefault(d.source.strip().casefold(), d.source.strip())
    return sorted(names.values(), key=str.casefold)


def summary_html(
    titles: Callable[[str], str],
    added: Sequence[str],
    updated: Sequence[str],
    unchanged: Sequence[str],
    skipped: Sequence[tuple[str, str]],
    seconds: float,
) -> str:
    """What an upload did, naming every skipped file with its reason."""

    def listing(ids: Sequence[str]) -> str:
        items = [f"<li>{esc(titles(i))}</li>" for i in ids[:_MAX_LISTED]]
        more = f"<li>… and {len(ids) - _MAX_LISTED} more</li>" if len(ids) > _MAX_LISTED else ""
        return f"<ul>{''.join(items)}{more}</ul>" if items else ""

    parts = [
        f'<div class="rag-summary"><p><b>Added {len(added)}</b> · updated {len(updated)}'
        f" · unchanged {len(unchanged)} · skipped {len(skipped)}"
        f" <small>({seconds:.1f} s)</small></p>"
    ]
    if added:
        parts.append(f"<div>Added:</div>{listing(added)}")
    if updated:
        parts.append(f"<div>Updated:</div>{listing(updated)}")
    if skipped:
        rows = "".join(f"<li>{esc(n)}: {esc(r)}</li>" for n, r in skipped)
        parts.append(f'<div>Skipped:</div><ul class="rag-skipped">{rows}</ul>')
    parts.append("</div>")
    return "".join(parts)
