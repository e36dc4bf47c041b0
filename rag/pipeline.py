"""From a question to a grounded answer: retrieve, focus, generate, check, cite.

Read `Pipeline.stream` top to bottom to follow a question through the whole path.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embeddings.chunking import split_sentences
from embeddings.embedder import Embedder
from embeddings.errors import IngestError
from embeddings.index import DateSourceFilter, Index, IndexStats, IngestReport
from embeddings.loaders import Skipped, load_paths
from embeddings.types import Document
from rag.answerable import can_answer
from rag.context import Sentence, select_sentences
from rag.errors import InvalidQuestionError
from rag.generate import Generator, load_generator
from rag.ground import (
    answers_question,
    extract_quantity,
    is_model_refusal,
    parse_citations,
    supporting,
)
from rag.retrieve import RETRIEVERS, Retriever, parse_date
from rag.text import strip_injection
from rag.types import Answer, Citation

Filters = DateSourceFilter
ANSWERERS = ("extractive", "generative", "grounded")
MAX_QUESTION_CHARS = 1000
SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"
REFUSAL = "The indexed articles don't contain an answer to this question."

# Relevance gate, calibrated on the seed evaluation set and squad2_dev500 (see README):
# below it the best sentence is too far from the question to answer it.
MIN_RELEVANCE = 0.45
QUOTE_MARGIN = 0.1

# Measured on SmolLM2-135M: a one-line instruction and a bare "Question:" get short copied
# phrases; worked examples in the prompt get copied back verbatim instead.
SYSTEM_PROMPT = "Answer the question with a short phrase copied from the numbered sentences."


@dataclass
class Settings:
    """Everything configurable; `from_env` reads RAG_* variables so servers need no flags."""

    index_dir: Path | None = None
    generator: str = "llama-cpp"  # llama-cpp | transformers | openai
    model: str | None = None  # GGUF/HF path, or a served model's name
    base_url: str | None = None  # OpenAI-compatible server, e.g. http://localhost:8000/v1
    embedder_path: str | None = None
    seeds_dir: Path = SEEDS_DIR
    context_sentences: int = 4
    max_new_tokens: int = 48
    min_relevance: float = MIN_RELEVANCE

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        env = os.environ
        values: dict[str, Any] = {
            "index_dir": Path(env["RAG_INDEX_DIR"]) if env.get("RAG_INDEX_DIR") else None,
            "generator": env.get("RAG_GENERATOR", "llama-cpp"),
            "model": env.get("RAG_MODEL") or None,
            "base_url": env.get("RAG_BASE_URL") or None,
            "embedder_path": env.get("RAG_EMBEDDER") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def default_index_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("rag", appauthor=False)) / "index"


def check_question(question: object) -> str:
    if not isinstance(question, str):
        raise InvalidQuestionError(f"question must be a string, not {type(question).__name__}")
    text = question.strip()
    if not text:
        raise InvalidQuestionError("question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(
            f"question is {len(text)} characters long; the limit is {MAX_QUESTION_CHARS}"
        )
    return text


def to_filters(filters: Filters | dict[str, Any] | None) -> Filters:
    if filters is None:
        return Filters()
    if isinstance(filters, Filters):
        return filters
    if isinstance(filters, dict):
        unknown = set(filters) - {"date_from", "date_to", "sources"}
        if unknown:
            raise InvalidQuestionError(f"unknown filter keys: {', '.join(sorted(unknown))}")
        return Filters(
            date_from=filters.get("date_from"),
            date_to=filters.get("date_to"),
            sources=tuple(filters.get("sources") or ()),
        )
    raise InvalidQuestionError(f"filters must be a Filters or dict, not {type(filters).__name__}")


def _citation(n: int, s: Sentence) -> Citation:
    c = s.hit.chunk
    return Citation(
        n=n,
        doc_id=c.doc_id,
        title=c.title,
        date=c.date,
        text=s.text,
        start=s.start,
        end=s.end,
        score=round(s.score, 4),
        passage=c.text,
        passage_start=c.start,
        source=c.source,
        url=c.url,
    )


def build_messages(question: str, context: list[Citation]) -> list[dict[str, str]]:
    numbered = "\n".join(f"[{c.n}] {c.text}" for c in context)
    user = f"{numbered}\n\nQuestion: {question}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def quoted_evidence(context: list[Citation]) -> list[Citation]:
    """The best sentence, plus the runner-up when it scores within QUOTE_MARGIN: on the seed
    set that took "the gold answer is in the quote" from 0.62 to 0.73 (0.79 to 0.89 on
    squad2_dev500) while a third of answers grew to two sentences."""
    if len(context) > 1 and context[1].score >= context[0].score - QUOTE_MARGIN:
        return context[:2]
    return context[:1]


_PRONOUN_START = re.compile(r"^(He|She|They|It|His|Her|Their|This|These)\b")


def with_antecedent(c: Citation) -> str:
    """The sentence, led by the one before it when it opens with a pronoun: a quote that
    says "He highlighted ..." must also say who he is (seed: "Who said ...?")."""
    if not _PRONOUN_START.match(c.text) or not c.passage:
        return c.text
    offset = c.start - c.passage_start
    before = [c.passage[s:e] for s, e in split_sentences(c.passage) if e <= offset]
    return f"{before[-1]} {c.text}" if before else c.text


def quote(citations: list[Citation], question: str = "") -> str:
    """The fallback answer: the sentences themselves, marked as a quote, led by the figure
    they give when the question asks "how many/much" (copied verbatim from a sentence)."""
    quotes = " ".join(f"“{with_antecedent(c)}” [{c.n}]" for c in citations)
    text = f"The article{'s say' if len(citations) > 1 else ' says'}: {quotes}"
    figure = next(
        (f for c in citations if question and (f := extract_quantity(question, c.text))), None
    )
    return f"{figure}. {text}" if figure else text


@dataclass
class _Run:
    """Per-question state threaded through `stream`."""

    question: str
    timings: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def lap(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[stage] = (now - since) * 1000
        return now


class Pipeline:
    """Keeps the embedder, index and generator loaded across questions; thread-safe."""

    def __init__(
        self,
        index_dir: str | Path | None = None,
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
    ) -> None:
        """`embedder` and `generator` can be shared between pipelines over several indexes."""
        self.settings = settings or Settings.from_env()
        path = index_dir or self.settings.index_dir or default_index_dir()
        self.embedder = embedder or Embedder(self.settings.embedder_path)
        self.index = Index(Path(path), self.embedder)
        self.retriever = Retriever(self.index, self.embedder)
        self._generator: Generator | None = generator
        self._generate_lock = threading.Lock()
        self._setup_lock = threading.Lock()

    @property
    def generator(self) -> Generator:
        with self._setup_lock:
            if self._generator is None:
                s = self.settings
                self._generator = load_generator(s.generator, s.model, s.base_url)
            return self._generator

    # ---- articles ------------------------------------------------------------------------

    def ingest(
        self,
        paths: Iterable[str | Path] = (),
        *,
        documents: Iterable[Document] = (),
        progress: bool = False,
    ) -> IngestReport:
        """Loads files and folders (skipping unreadable ones with a warning) into the index."""
        files = [Path(p) for p in paths]
        missing = [str(p) for p in files if not p.exists()]
        if missing:
            raise IngestError(f"no such file or directory: {', '.join(missing)}")
        loaded = load_paths(files) if files else None
        docs = list(documents) + (loaded.documents if loaded else [])
        skipped: list[Skipped] = loaded.skipped if loaded else []
        return self.index.ingest(docs, progress=progress, skipped=skipped)

    def delete(self, doc_id: str) -> bool:
        return self.index.delete(doc_id)

    def stats(self) -> IndexStats:
        return self.index.stats()

    def document(self, doc_id: str) -> Document | None:
        return self.index.document(doc_id)

    def documents(self) -> list[Document]:
        return self.index.documents()

    def _ensure_corpus(self) -> None:
        """An empty index answers from the packaged seed articles, as a new user expects."""
        if len(self.index) == 0 and self.settings.seeds_dir.is_dir():
            self.ingest([self.settings.seeds_dir])

    # ---- questions -----------------------------------------------------------------------

    def retrieve(
        self,
        question: str,
        *,
        k: int = 5,
        as_of: str | dt.date | None = None,
        filters: Filters | dict[str, Any] | None = None,
        retriever: str = "hybrid",
    ) -> list[Any]:
        """Ranked chunks (`rag.retrieve.Hit`) for a question, without answering it."""
        question = check_question(question)
        self._ensure_corpus()
        return self.retriever.retrieve(
            question, k=k, as_of=_as_date(as_of), filters=to_filters(filters), mode=retriever
        )

    def ask(self, question: str, **kwargs: Any) -> Answer:
        """Answers a question; see `stream` for the keyword arguments."""
        for item in self.stream(question, **kwargs):
            if isinstance(item, Answer):
                return item
        raise AssertionError("stream ended without an Answer")  # pragma: no cover

    def stream(
        self,
        question: str,
        *,
        k: int = 5,
        as_of: str | dt.date | None = None,
        filters: Filters | dict[str, Any] | None = None,
        retriever: str = "hybrid",
        answerer: str = "grounded",
    ) -> Iterator[str | Answer]:
        """Yields the model's text deltas as they come, then the final checked `Answer`.

        The final text can differ from the streamed one: an unsupported answer is replaced
        by a quote, and a refusal streams nothing.
        """
        question = check_question(question)
        if not isinstance(k, int) or not 1 <= k <= 50:
            raise InvalidQuestionError("k must be an integer between 1 and 50")
        if retriever not in RETRIEVERS:
            raise InvalidQuestionError(f"retriever must be one of {', '.join(RETRIEVERS)}")
        if answerer not in ANSWERERS:
            raise InvalidQuestionError(f"answerer must be one of {', '.join(ANSWERERS)}")
        run = _Run(question)
        flt, as_of_date = to_filters(filters), _as_date(as_of)
        self._ensure_corpus()
        self.index.refresh()
        t = time.perf_counter()

        ask_text = strip_injection(question)
        hits = []
        if ask_text:
            hits = self.retriever.retrieve(
                ask_text, k=k, as_of=as_of_date, filters=flt, mode=retriever
            )
        t = run.lap("retrieve", t)

        ranked = select_sentences(ask_text, hits, self.embedder) if hits else []
        context = [
            _citation(i, s) for i, s in enumerate(ranked[: self.settings.context_sentences], 1)
        ]
        relevant = (
            bool(ranked)
            and max(s.relevance for s in ranked) >= self.settings.min_relevance
            and can_answer(ask_text, [s.text for s in ranked[:2]])
        )
        t = run.lap("select", t)

        if answerer != "generative" and not relevant:
            yield self._finish(run, REFUSAL, True, [], context, "refused")
            return
        if answerer == "extractive":
            cited_ctx = quoted_evidence(context)
            yield self._finish(run, quote(cited_ctx, ask_text), False, cited_ctx, context, "quoted")
            return

        draft = ""
        if context:
            with self._generate_lock:
                t = time.perf_counter()
                for delta in self.generator.stream(
                    build_messages(ask_text, context),
                    max_tokens=self.settings.max_new_tokens,
                    stop=["\n\n", "Question:", "Sentences:"],
                ):
                    if not draft:
                        run.timings["first_token"] = (time.perf_counter() - run.started) * 1000
                    draft += delta
                    yield delta
                t = run.lap("generate", t)
        text, cited = parse_citations(draft.strip(), len(context))

        if answerer == "generative":
            if not text:
                yield self._finish(run, REFUSAL, True, [], context, "refused")
                return
            citations = [context[n - 1] for n in cited]
            yield self._finish(
                run, f"{text} {_markers(cited)}".strip(), False, citations, context, "generated"
            )
            return

        evidence = [c.text for c in context]
        cited = cited or supporting(text, evidence)[:1]
        if (
            text
            and not is_model_refusal(text)
            and cited
            and answers_question(text, ask_text, [evidence[n - 1] for n in cited])
        ):
            answer_text, mode = f"{text} {_markers(cited)}", "generated"
            citations = [context[n - 1] for n in cited]
        else:
            citations = quoted_evidence(context)
            answer_text, mode = quote(citations, ask_text), "quoted"
        run.lap("check", t)
        yield self._finish(run, answer_text, False, citations, context, mode)

    @staticmethod
    def _finish(
        run: _Run,
        text: str,
        refused: bool,
        citations: list[Citation],
        context: list[Citation],
        mode: str,
    ) -> Answer:
        run.timings["total"] = (time.perf_counter() - run.started) * 1000
        return Answer(run.question, text, refused, citations, context, run.timings, mode)


def _markers(cited: list[int]) -> str:
    return "".join(f"[{n}]" for n in cited)


def _as_date(value: str | dt.date | None) -> dt.date | None:
    try:
        return parse_date(value)
    except (TypeError, ValueError):
        raise InvalidQuestionError(f"as_of must be a YYYY-MM-DD date, not {value!r}") from None


_default: Pipeline | None = None
_default_lock = threading.Lock()


def default_pipeline() -> Pipeline:
    global _default
    with _default_lock:
        if _default is None:
            _default = Pipeline()
        return _default


def ask(
    question: str,
    *,
    k: int = 5,
    as_of: str | dt.date | None = None,
    filters: Filters | dict[str, Any] | None = None,
    **kwargs: Any,
) -> Answer:
    """Answers `question` from the default index (RAG_INDEX_DIR or the per-user folder).

    Raises `InvalidQuestionError` for an empty, over-long (> 1000 characters) or non-string
    question, and `IndexUnavailableError` for a damaged or incompatible index.
    """
    return default_pipeline().ask(question, k=k, as_of=as_of, filters=filters, **kwargs)
