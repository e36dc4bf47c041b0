"""Run a dataset's questions through the real pipeline and score what comes back.

Every question goes through `Pipeline.ask` exactly as a user's would (the question's `date`
becomes `as_of`). Retrieval is scored separately, on the first 10 distinct documents of
`Pipeline.retrieve`, so the retrieval numbers do not depend on how many chunks the answerer
reads.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals import metrics as m
from evals.dataset import Dataset, Question, exact_fit
from rag.reader.answerers import AnswererName  # light: loads no model
from rag.retrieve import RETRIEVERS

if TYPE_CHECKING:
    from rag import Answer, Pipeline

__all__ = [
    "ANSWERERS",
    "RETRIEVAL_K",
    "RETRIEVERS",
    "Config",
    "QuestionResult",
    "RunResult",
    "aggregate",
    "cached_index",
    "evaluate",
    "grounded",
    "open_pipeline",
    "score_question",
]

ANSWERERS = tuple(a.value for a in AnswererName)
RETRIEVAL_K = 10  # distinct documents scored for recall@k
# Chunks fetched to fill those 10 documents: one article often holds several top chunks, so
# asking for 10 chunks would score recall@10 on only ~6 documents.
CHUNK_DEPTH = 50
_QUOTED = re.compile(r"“(.+)”", re.DOTALL)


@dataclass(frozen=True)
class Config:
    retriever: str = "hybrid"
    answerer: str = AnswererName.READER.value

    @property
    def label(self) -> str:
        return f"{self.retriever}/{self.answerer}"


@dataclass
class QuestionResult:
    """Everything the report shows about one question."""

    id: str
    question: str
    gold: list[str]
    gold_doc_ids: list[str]
    answer: str = ""
    refused: bool = False
    mode: str = ""
    citations: list[dict[str, str]] = field(default_factory=list)  # doc_id, text
    context: list[dict[str, str]] = field(default_factory=list)  # every sentence shown
    retrieved: list[str] = field(default_factory=list)  # distinct doc_ids, best first
    exact_match: float | None = None  # answerable questions only
    f1: float | None = None
    contains: float | None = None
    grounded: bool | None = None  # non-refused answers only
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    qtype: str | None = None
    exact_fit: bool | None = None  # RealTime QA: fair for string matching
    confidence: float | None = None  # the reader's score of the answer it chose
    candidates: list[str] = field(default_factory=list)  # the reader's best spans, best first
    chunks_hold: bool | None = None  # one of the k retrieved chunks contains a gold answer

    @property
    def answerable(self) -> bool:
        return bool(self.gold)

    @property
    def verdict(self) -> str:
        if self.error:
            return f"error: {self.error}"
        if not self.answerable:
            return "correct refusal" if self.refused else "answered, should refuse"
        if self.refused:
            return "false refusal"
        verdict = "correct" if self.contains else "wrong"
        return verdict if self.grounded is not False else f"{verdict} (ungrounded)"

    @property
    def failure(self) -> str | None:
        """Where a wrong outcome went wrong, from retrieval to the final text (None if right)."""
        if self.error:
            return "rejected as invalid"
        if not self.answerable:
            return None if self.refused else f"answered ({self.mode or 'unknown'})"
        if self.contains:
            return None
        shown = any(m.best_over(m.contains, c["text"], self.gold) for c in self.context)
        if self.refused:
            return "refused, answer was in context" if shown else "refused"
        if shown:
            return "answer in context, not in answer"
        if self.gold_doc_ids and not set(self.gold_doc_ids) & set(self.retrieved):
            return "gold document not retrieved"
        return "answer not in context sentences"

    @property
    def funnel(self) -> dict[str, bool] | None:
        """Where the gold answer still is, stage by stage (`FUNNEL`); None when unanswerable.
        Chunks and sentences hold it when they contain it; a candidate holds it when its token
        F1 with a gold answer reaches 0.5 (what the reader's ranker is fitted to find)."""
        if not self.answerable:
            return None
        has = lambda text: bool(m.best_over(m.contains, text, self.gold))  # noqa: E731
        right = [m.best_over(m.token_f1, c, self.gold) >= 0.5 for c in self.candidates]
        return {
            "chunks": bool(self.chunks_hold),
            "sentences": any(has(c["text"]) for c in self.context),
            "candidates": any(right),
            "top3": any(right[:3]),
            "top1": any(right[:1]),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "verdict": self.verdict,
            "failure": self.failure,
            "funnel": self.funnel,
        }


@dataclass
class RunResult:
    config: Config
    metrics: dict[str, Any]
    questions: list[QuestionResult]
    wall_s: float = 0.0


# ---- scoring (pure) ----------------------------------------------------------------------


def score_question(q: QuestionResult) -> QuestionResult:
    """Fill the answer scores of one question in place. A refusal or an empty answer to an
    answerable question scores 0; citation markers are removed before matching."""
    if q.answerable:
        text = "" if q.refused else m.strip_citation_markers(q.answer)
        q.exact_match = m.best_over(m.exact_match, text, q.gold)
        q.f1 = m.best_over(m.token_f1, text, q.gold)
        q.contains = m.best_over(m.contains, text, q.gold)
    return q


def aggregate(results: Sequence[QuestionResult], *, with_exact_fit: bool = False) -> dict[str, Any]:
    """The issue's metric set over per-question results (see README for definitions)."""
    answerable = [r for r in results if r.answerable]
    with_docs = [r for r in answerable if r.gold_doc_ids]
    answered = [r for r in results if not r.refused and r.grounded is not None]
    good = total = 0
    for r in results:
        g, t = m.citation_precision(
            [(c["doc_id"], c["text"]) for c in r.citations], r.gold_doc_ids, r.gold
        )
        good, total = good + g, total + t
    refused = [r.refused for r in results]
    unanswerable = [not r.answerable for r in results]
    out: dict[str, Any] = {
        "recall@1": m.mean([m.recall_at_k(r.retrieved, r.gold_doc_ids, 1) for r in with_docs]),
        "recall@5": m.mean([m.recall_at_k(r.retrieved, r.gold_doc_ids, 5) for r in with_docs]),
        "recall@10": m.mean([m.recall_at_k(r.retrieved, r.gold_doc_ids, 10) for r in with_docs]),
        "mrr": m.mean([m.reciprocal_rank(r.retrieved, r.gold_doc_ids) for r in with_docs]),
        "exact_match": m.mean([r.exact_match or 0.0 for r in answerable]),
        "f1": m.mean([r.f1 or 0.0 for r in answerable]),
        "contains": m.mean([r.contains or 0.0 for r in answerable]),
        "citation_precision": good / total if total else None,
        "grounded": m.mean([float(bool(r.grounded)) for r in answered]),
        "refusal_precision": m.refusal_precision(refused, unanswerable),
        "refusal_recall": m.refusal_recall(refused, unanswerable),
        "funnel": funnel_counts(answerable),
        "latency_ms": latency_summary(r.timings for r in results),
        "n_questions": len(results),
    }
    if with_exact_fit:
        out["contains_exact_fit"] = m.mean([r.contains or 0.0 for r in answerable if r.exact_fit])
    return out


# The stages a gold answer passes on its way to the answer: the k retrieved chunks, the
# sentences the reader takes candidates from, its five best candidates, the top 3, the
# top 1. Each count is of answerable questions whose answer is still there.
FUNNEL = ("chunks", "sentences", "candidates", "top3", "top1")


def funnel_counts(results: Sequence[QuestionResult]) -> dict[str, int]:
    stages = [r.funnel for r in results if r.funnel is not None]
    return {"questions": len(stages), **{s: sum(f[s] for f in stages) for s in FUNNEL}}


def latency_summary(timings: Iterable[dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """p50/p95 in milliseconds per pipeline stage, over the questions that ran that stage."""
    per_stage: dict[str, list[float]] = {}
    for t in timings:
        for stage, ms in t.items():
            per_stage.setdefault(stage, []).append(ms)
    return {
        stage: {"p50": _round(m.percentile(v, 50)), "p95": _round(m.percentile(v, 95))}
        for stage, v in per_stage.items()
    }


def recall_curve(results: Sequence[QuestionResult], ks: Iterable[int]) -> list[float | None]:
    """Mean recall@k for each k, for the recall plot."""
    with_docs = [r for r in results if r.answerable and r.gold_doc_ids]
    return [m.mean([m.recall_at_k(r.retrieved, r.gold_doc_ids, k) for r in with_docs]) for k in ks]


def refusal_curve(results: Sequence[QuestionResult]) -> list[tuple[float, float, float]]:
    """(threshold, refusal precision, refusal recall) if every answer whose confidence falls
    below the threshold were refused as well; the first point is what the pipeline did."""
    unanswerable = [not r.answerable for r in results]
    levels = sorted({r.confidence for r in results if r.confidence is not None})
    points = []
    for t in [float("-inf"), *levels, float("inf")]:
        refused = [r.refused or (r.confidence is not None and r.confidence < t) for r in results]
        p, rec = m.refusal_precision(refused, unanswerable), m.refusal_recall(refused, unanswerable)
        if p is not None and rec is not None:
            points.append((t, p, rec))
    return points


def grounded(answer: Answer) -> bool:
    """The pipeline's own support check, re-applied here to the passages the answer cites.

    A quoted answer is checked on what it quotes (the "The article says:" wrapper is not a
    claim); an answer without citations cannot be grounded.
    """
    from rag.reader.ground import is_supported

    if not answer.citations:
        return False
    quoted = _QUOTED.search(answer.text) if answer.mode == "quoted" else None
    claim = quoted.group(1) if quoted else m.strip_citation_markers(answer.text)
    evidence = [c.passage or c.text for c in answer.citations]
    return is_supported(claim, evidence)


# ---- index cache -------------------------------------------------------------------------


def cache_root(override: str | Path | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("rag", appauthor=False)) / "eval"


def index_key(dataset: Dataset) -> str:
    """Content hash of the articles plus what shapes an index (format version, chunker and
    encoder code, embedding model and backend), so a changed corpus or indexer gets a fresh
    index."""
    import embeddings.chunking
    import embeddings.generations
    import embeddings.onnx_encoder

    h = hashlib.sha256(dataset.content_key().encode())
    h.update(f"index-v{embeddings.generations.VERSION}".encode())
    h.update(Path(embeddings.chunking.__file__).read_bytes())
    from rag import Settings

    h.update(str(Settings.from_env().embedder_path).encode())
    h.update(os.environ.get("RAG_EMBEDDER_BACKEND", "").encode())
    h.update(Path(embeddings.onnx_encoder.__file__).read_bytes())  # how chunks are embedded
    from rag.settings import load_settings

    h.update(f"dedup-{int(load_settings().store.dedup)}".encode())  # RAG_DEDUP=0 indexes every copy
    return f"{dataset.name}-{h.hexdigest()[:16]}"


def cached_index(
    dataset: Dataset, root: str | Path | None = None, *, progress: bool = True
) -> Path:
    """The index directory for `dataset`, built (into a temporary folder, then renamed, so an
    interrupted build is never mistaken for a finished one) only when not cached yet."""
    from rag import IndexUnavailableError, Pipeline

    base = cache_root(root)
    target = base / index_key(dataset)
    if target.is_dir():
        try:
            if len(Pipeline(target).index) > 0:
                return target
        except IndexUnavailableError:
            pass
        shutil.rmtree(target, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=base))
    try:
        docs = dataset.load_documents()
        if progress:
            print(f"indexing {len(docs)} articles of {dataset.name} into {target}", file=sys.stderr)
        Pipeline(tmp).ingest(documents=docs, progress=progress)
        try:
            tmp.rename(target)
        except OSError:  # built concurrently by another run: use theirs
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def open_pipeline(index_dir: Path, **settings: Any) -> Pipeline:
    """A pipeline over `index_dir`; `settings` override the RAG_* environment (None = keep),
    e.g. the `--generator`/`--model`/`--base-url` flags `rag` adds to every subcommand."""
    from rag import Pipeline, Settings

    return Pipeline(index_dir, settings=Settings.from_env(**settings))


# ---- running -----------------------------------------------------------------------------


def evaluate(
    pipeline: Pipeline,
    dataset: Dataset,
    configs: Sequence[Config] = (Config(),),
    *,
    k: int = 5,
    limit: int | None = None,
    progress: bool = True,
) -> list[RunResult]:
    """Run every configuration over the same questions; retrieval is computed once per
    retriever and shared by the answerers that use it."""
    from tqdm import tqdm

    questions = dataset.questions[:limit] if limit else dataset.questions
    flags = dataset.has_exact_fit_flags
    retrieved: dict[str, dict[str, tuple[list[str], list[str]]]] = {}
    runs: list[RunResult] = []
    for config in configs:
        if config.retriever not in retrieved:
            retrieved[config.retriever] = {
                q.id: _retrieve(pipeline, q, config.retriever) for q in questions
            }
        started = time.perf_counter()
        results: list[QuestionResult] = []
        bar = tqdm(
            questions,
            desc=config.label,
            unit="q",
            file=sys.stderr,
            disable=not progress,
            dynamic_ncols=True,
        )
        for q in bar:
            r = _run_question(pipeline, q, config, k)
            r.retrieved, chunks = retrieved[config.retriever][q.id]
            r.chunks_hold = any(m.best_over(m.contains, t, r.gold) for t in chunks[:k])
            r.exact_fit = exact_fit(q) if flags else None
            results.append(score_question(r))
        runs.append(
            RunResult(
                config,
                aggregate(results, with_exact_fit=flags),
                results,
                time.perf_counter() - started,
            )
        )
    return runs


def _retrieve(pipeline: Pipeline, q: Question, retriever: str) -> tuple[list[str], list[str]]:
    """The first RETRIEVAL_K distinct documents, and the chunk texts in retrieval order."""
    from rag import RagError

    if not q.doc_ids and not q.answers:
        return [], []
    try:
        hits = pipeline.retrieve(q.question, k=CHUNK_DEPTH, as_of=q.date, retriever=retriever)
    except RagError:
        return [], []
    docs = m.dedupe(h.doc_id for h in hits)[:RETRIEVAL_K] if q.doc_ids else []
    return docs, [h.chunk.text for h in hits]


def _run_question(pipeline: Pipeline, q: Question, config: Config, k: int) -> QuestionResult:
    from rag import InvalidQuestionError

    r = QuestionResult(
        id=q.id,
        question=q.question,
        gold=list(q.answers),
        gold_doc_ids=list(q.doc_ids),
        qtype=q.extras.get("type") if isinstance(q.extras.get("type"), str) else None,
    )
    started = time.perf_counter()
    try:
        answer = pipeline.ask(
            q.question, k=k, as_of=q.date, retriever=config.retriever, answerer=config.answerer
        )
    except InvalidQuestionError as exc:  # the product rejected it: the user got no answer
        r.refused, r.error = True, str(exc)
        r.timings = {"total": (time.perf_counter() - started) * 1000}
        return r
    r.answer, r.refused, r.mode = answer.text, answer.refused, answer.mode
    r.confidence = answer.confidence
    r.candidates = list(answer.candidates)
    r.citations = [{"doc_id": c.doc_id, "text": c.text} for c in answer.citations]
    r.context = [{"doc_id": c.doc_id, "text": c.text} for c in answer.context]
    r.timings = dict(answer.timings)
    r.timings.setdefault("total", (time.perf_counter() - started) * 1000)
    if not answer.refused:
        r.grounded = grounded(answer)
    return r


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)
