"""Evaluation datasets: a folder with `questions.jsonl` and the articles the questions are about.

The format is the one in `../shared/README.md`. Articles come from `docs.jsonl` in the folder
or, when that file is absent, from the path named by `"docs"` in the folder's `dataset.json`
(relative to the folder). The pointer lets the seed set evaluate the very files the product
ships in `seeds/` instead of a copy that could drift from them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embeddings.types import Document

__all__ = [
    "SEED_DATASET",
    "Dataset",
    "DatasetError",
    "Question",
    "load_dataset",
]

SEED_DATASET = Path(__file__).resolve().parent / "seed"
# Bump when the way documents are read or indexed for evaluation changes, so old caches are
# not reused.
CACHE_FORMAT = "eval-cache-1"


class DatasetError(ValueError):
    """The dataset folder is missing or malformed; the message is one line for a person."""


@dataclass(frozen=True)
class Question:
    """One question. No acceptable answers means the corpus does not answer it."""

    id: str
    question: str
    answers: tuple[str, ...]
    doc_ids: tuple[str, ...]
    date: str | None = None
    extras: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass
class Dataset:
    """Questions plus where their articles live; articles are read only when an index is built."""

    name: str
    root: Path
    questions: list[Question]
    docs_path: Path  # docs.jsonl, or the file/folder a dataset.json points at

    @property
    def has_exact_fit_flags(self) -> bool:
        """RealTime QA marks which questions are fair for string matching (see `exact_fit`)."""
        return any(
            "answer_in_gold_doc" in q.extras and "needs_choices" in q.extras for q in self.questions
        )

    def load_documents(self) -> list[Document]:
        """All articles, parsed by the product's own loaders (so the seed date token etc. is
        handled exactly as in `rag ingest`)."""
        from embeddings.loaders import load_paths

        result = load_paths([self.docs_path])
        if not result.documents:
            reasons = "; ".join(s.reason for s in result.skipped[:3]) or "no articles"
            raise DatasetError(f"no articles could be loaded from {self.docs_path}: {reasons}")
        return result.documents

    def content_key(self) -> str:
        """Hash of every article byte (and the cache format), so an edited corpus gets a fresh
        index and an unchanged one reuses its cached index."""
        h = hashlib.sha256(CACHE_FORMAT.encode())
        files = (
            sorted(p for p in self.docs_path.rglob("*") if p.is_file() and not _hidden(p))
            if self.docs_path.is_dir()
            else [self.docs_path]
        )
        for path in files:
            rel = path.relative_to(self.docs_path).as_posix() if path != self.docs_path else ""
            h.update(rel.encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()[:20]


def exact_fit(question: Question) -> bool:
    """True for RealTime QA questions whose answer is in the gold article and makes sense without
    the quiz's multiple-choice options."""
    return bool(question.extras.get("answer_in_gold_doc")) and not question.extras.get(
        "needs_choices"
    )


def load_dataset(path: str | Path) -> Dataset:
    """Read and validate a dataset folder; raises `DatasetError` with a one-line reason."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset folder not found: {root}")
    qfile = root / "questions.jsonl"
    if not qfile.is_file():
        raise DatasetError(f"no questions.jsonl in {root}")
    questions = _read_questions(qfile)
    if not questions:
        raise DatasetError(f"{qfile} holds no questions")
    return Dataset(
        name=root.resolve().name, root=root, questions=questions, docs_path=_docs_path(root)
    )


def _docs_path(root: Path) -> Path:
    docs = root / "docs.jsonl"
    if docs.is_file():
        return docs
    meta = root / "dataset.json"
    if not meta.is_file():
        raise DatasetError(f"no docs.jsonl (or dataset.json pointing at articles) in {root}")
    try:
        pointer = json.loads(meta.read_text(encoding="utf-8")).get("docs")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        raise DatasetError(f"{meta} is not a JSON object") from None
    if not isinstance(pointer, str) or not pointer:
        raise DatasetError(f'{meta} has no "docs" path')
    target = (root / pointer).resolve()
    if not target.exists():
        raise DatasetError(f"{meta} points at a missing path: {target}")
    return target


def _read_questions(qfile: Path) -> list[Question]:
    questions: list[Question] = []
    seen: set[str] = set()
    try:
        lines = qfile.read_text(encoding="utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {qfile}: {exc}") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            q = _question(rec)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{qfile}:{lineno}: bad question record ({exc})") from None
        if q.id in seen:
            raise DatasetError(f"{qfile}:{lineno}: duplicate question id {q.id!r}")
        seen.add(q.id)
        questions.append(q)
    return questions


def _question(rec: dict[str, Any]) -> Question:
    if not isinstance(rec, dict):
        raise TypeError("not a JSON object")
    text = rec["question"]
    answers = rec.get("answers") or []
    doc_ids = rec.get("doc_ids") or []
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty question")
    if not all(isinstance(a, str) for a in answers) or not all(isinstance(d, str) for d in doc_ids):
        raise TypeError("answers and doc_ids must be lists of strings")
    date = rec.get("date")
    known = {"id", "question", "answers", "doc_ids", "date"}
    return Question(
        id=str(rec["id"]),
        question=text,
        answers=tuple(answers),
        doc_ids=tuple(doc_ids),
        date=date if isinstance(date, str) and date else None,
        extras={k: v for k, v in rec.items() if k not in known},
    )


def _hidden(path: Path) -> bool:
    return any(part.startswith(".") for part in path.parts[-1:])
