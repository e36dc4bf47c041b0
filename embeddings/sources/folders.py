"""One round of a folder: new and changed files are ingested, deleted files leave the index.

A file is re-read only when its size or modification time moved, and re-indexed only when
its bytes did; the articles a file gave are remembered so that deleting or editing it
removes exactly those (an article another file still gives stays).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from embeddings.loaders import SUPPORTED_SUFFIXES, LoadError, load_file
from embeddings.sources.report import Sink, SourceReport, now_iso
from embeddings.types import Document

__all__ = ["poll_folder"]

BATCH = 32  # files per index commit


def poll_folder(folder: Path, state: dict[str, Any], sink: Sink) -> SourceReport:
    """One round over `folder` (absolute); `state` is this source's part of the seen-state."""
    key = str(folder)
    state["kind"], state["name"] = "folder", key
    files: dict[str, Any] = state.setdefault("files", {})
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist (any more)"
        return SourceReport(key, "folder", key, error=f"{folder} {why}", finished_at=now_iso())
    counts = {"new": 0, "updated": 0, "unchanged": 0, "removed": 0, "failed": 0}
    problems: list[str] = []
    present = set()
    todo: list[tuple[str, dict[str, Any], list[Document]]] = []
    for path in _files(folder):
        if sink.stop_requested():
            return _report(key, counts, problems)
        rel = str(path.relative_to(folder))
        present.add(rel)
        known = files.get(rel)
        try:
            st = path.stat()
            stamp = {"mtime_ns": st.st_mtime_ns, "size": st.st_size}
            if known and all(known.get(k) == v for k, v in stamp.items()):
                counts["unchanged"] += len(known.get("doc_ids", ())) or 1
                continue
            digest = hashlib.sha1(path.read_bytes()).hexdigest()
            if known and known.get("sha1") == digest:
                known.update(stamp)  # touched, not changed
                counts["unchanged"] += len(known.get("doc_ids", ())) or 1
                continue
            docs = load_file(path)
        except LoadError as exc:
            _fail(counts, problems, rel, str(exc))
            continue
        except OSError as exc:
            _fail(counts, problems, rel, f"cannot read: {exc.strerror or exc}")
            continue
        todo.append((rel, {**stamp, "sha1": digest}, docs))
        if len(todo) >= BATCH:
            _commit(todo, files, sink, counts)
            todo = []
    _commit(todo, files, sink, counts)
    gone = [rel for rel in files if rel not in present]
    if gone:
        still = {d for rel, f in files.items() if rel in present for d in f.get("doc_ids", ())}
        dropped = [d for rel in gone for d in files[rel].get("doc_ids", ()) if d not in still]
        sink.commit([], dropped)
        counts["removed"] += len(dropped)
        for rel in gone:
            del files[rel]
    sink.save()
    return _report(key, counts, problems)


def _commit(
    todo: list[tuple[str, dict[str, Any], list[Document]]],
    files: dict[str, Any],
    sink: Sink,
    counts: dict[str, int],
) -> None:
    """Index the new articles and drop the ones an edited file no longer gives; then
    remember. A kill before the remembering re-reads these files next round."""
    if not todo:
        return
    docs = [d for _, _, ds in todo for d in ds]
    new_ids = {d.doc_id for d in docs}
    edited = {rel for rel, _, _ in todo}
    elsewhere = {d for rel, f in files.items() if rel not in edited for d in f.get("doc_ids", ())}
    stale = [
        d
        for rel in edited
        for d in files.get(rel, {}).get("doc_ids", ())
        if d not in new_ids and d not in elsewhere
    ]
    report = sink.commit(docs, stale)
    written = set(report.added) | set(report.updated)
    for rel, _, ds in todo:
        # An edited .txt file gets a new content-derived doc_id: still an update to the user.
        n = sum(d.doc_id in written for d in ds)
        counts["updated" if rel in files else "new"] += n
        counts["unchanged"] += len(ds) - n
    seen_at = now_iso()
    for rel, stamp, ds in todo:
        # Titles and dates too, so the UI's and /v1/sources' newest articles list folders' ones.
        articles = [{"title": d.title, "date": d.date, "seen_at": seen_at} for d in ds]
        files[rel] = {**stamp, "doc_ids": [d.doc_id for d in ds], "articles": articles}
    sink.save()


def _files(folder: Path) -> list[Path]:
    """Loadable files, recursively, in sorted order; hidden files and folders left out."""
    out = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith(".") and Path(name).suffix.lower() in SUPPORTED_SUFFIXES:
                out.append(Path(root) / name)
    return out


def _fail(counts: dict[str, int], problems: list[str], rel: str, why: str) -> None:
    counts["failed"] += 1
    problems.append(f"{rel}: {why}")


def _report(key: str, counts: dict[str, int], problems: list[str]) -> SourceReport:
    return SourceReport.counted(key, "folder", key, counts, problems)
