"""The "Followed sources" panel: each watched source's last round and the newest articles.

Read from the watcher's state file in the index folder, so the panel shows the same thing
whichever process (`rag watch`, `rag serve --watch`, another worker) did the watching.
Everything from a feed is escaped; links must be http(s) to become links.
"""

from __future__ import annotations

from pathlib import Path

from embeddings.errors import RagError
from embeddings.sources import newest_articles, read_sources
from rag.ui.render import esc

__all__ = ["sources_html"]


def sources_html(index_dir: Path, newest: int = 10) -> str:
    """The panel's HTML; a line saying how to start watching when nothing is followed."""
    try:
        views = read_sources(index_dir)
        articles = newest_articles(index_dir, newest)
    except RagError as exc:
        return f'<div class="rag-notice">{esc(str(exc))}</div>'
    if not views:
        return (
            '<div class="rag-sources">No sources followed. Start with '
            "<code>rag watch FEED_URL_OR_FOLDER --index …</code> or "
            "<code>rag serve --watch …</code>.</div>"
        )
    rows = []
    for v in views:
        last = v.last_round
        if last is None:
            state = "not polled yet"
        elif last.error:
            state = f"failed: {last.error}"
        else:
            state = (
                f"{last.new} new, {last.updated} updated, {last.unchanged} unchanged, "
                f"{last.removed} removed, {last.failed} failed"
            )
            if last.problems:
                state += " — " + "; ".join(last.problems[:3])
        when = last.finished_at.replace("T", " ").replace("+00:00", " UTC") if last else ""
        css = "rag-source-failed" if last and (last.error or last.failed) else "rag-source-ok"
        rows.append(
            f'<li class="{css}"><b>{esc(v.name)}</b> ({esc(v.kind)}, {v.articles} seen) '
            f"<br><small>{esc(when)}: {esc(state)}</small></li>"
        )
    items = []
    for a in articles:
        title = esc(a["title"] or "(untitled)")
        url = a["url"] or ""
        link = (
            f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">{title}</a>'
            if url.startswith(("http://", "https://"))
            else title
        )
        items.append(
            f"<li>{link} <small>— {esc(a['source'] or '')}, {esc(a['date'] or 'undated')}"
            "</small></li>"
        )
    newest_block = f"<p><b>Newest articles</b></p><ul>{''.join(items)}</ul>" if items else ""
    return f'<div class="rag-sources"><ul>{"".join(rows)}</ul>{newest_block}</div>'
