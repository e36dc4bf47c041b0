"""From a question to a grounded answer: retrieve, focus, generate, check, cite.

Read `Pipeline.stream` top to bottom to follow a question through the whole path.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embeddings.embedder import Embedder
from embeddings.errors import IngestError
from embeddings.index import Index, IndexStats, IngestReport
from embeddings.loaders import Skipped, load_paths
from embeddings.types import Document
from rag.context import Sentence, select_sentences
from rag.english import nlp
from rag.english.text import strip_injection
from rag.errors import InvalidQuestionError
from rag.followup import rewrite_question
from rag.inputs import (
    Filters,
    as_date,
    check_history,
    check_question,
    check_search,
    to_filters,
)
from rag.models.generate import Generator, load_generator
from rag.reader.answerers import (
    NO_ARTICLE_IN_FILTERS,
    REFUSAL,
    AnswererName,
    Draft,
    Focus,
    Model,
    make_answerer,
)
from rag.reader.ranker import Ranker
from rag.retrieve import Retriever, with_as_of
from rag.types import AlsoPublished, Answer, Citation

if TYPE_CHECKING:
    from embeddings.store import StoreConfig
    from rag.settings import RagSettings

ANSWERERS = tuple(a.value for a in AnswererName)


def _seeds_dir() -> Path:
    """The seed articles: `rag/seeds/` in the package, read through importlib.resources. A
    wheel ships them there as package data; in a source checkout `rag/seeds` is a symlink to
    the top-level `seeds/` folder, which is used directly where the symlink is missing."""
    from importlib.resources import files

    packaged = Path(str(files("rag").joinpath("seeds")))
    if packaged.is_dir():
        return packaged.resolve()
    return Path(__file__).resolve().parent.parent / "seeds"


SEEDS_DIR = _seeds_dir()

# Relevance gate, fitted with the reader's ranker on the even halves of the seed set,
# squad2_dev500 and realtimeqa_dev (`rag/reader/ranker.json`): below it the best sentence is too
# far from the question to answer it.
MIN_RELEVANCE = Ranker.fitted().min_relevance


@dataclass
class Settings:
    """Everything configurable; `rag.settings` fills it from RAG_* variables and flags."""

    index_dir: Path | None = None
    generator: str = "llama-cpp"  # llama-cpp | transformers | openai
    model: str | None = None  # GGUF/HF path, or a served model's name
    base_url: str | None = None  # OpenAI-compatible server, e.g. http://localhost:8000/v1
    embedder_path: str | None = None
    seeds_dir: Path = SEEDS_DIR
    context_sentences: int = 4  # what a model that reads the context whole is shown
    # Where the reader's candidates come from: every sentence of the retrieved chunks, best
    # first (issue 18: the best four kept the answer for 56 of the 71 held-out RealTime QA
    # questions whose chunks held it). The reader's model still reads only the sentences
    # its best candidates come from.
    candidate_sentences: int = 16
    max_new_tokens: int = 48
    min_relevance: float = MIN_RELEVANCE

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """The reader part of `rag.settings.load_settings` (RAG_INDEX_DIR, RAG_GENERATOR...)."""
        from rag.settings import load_settings

        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(load_settings().reader, **given)


def default_index_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("rag", appauthor=False)) / "index"


def missing_index(path: str | Path, store: StoreConfig | None = None) -> str | None:
    """Why `path` holds no index (so using it would create a new, seed-only one), or None.
    Indexes kept in a store server (RAG_STORE other than faiss) are not folders: None.
    `store` defaults to the environment's (rag.settings)."""
    if store is None:
        from rag.settings import load_settings

        store = load_settings().store
    if store.kind != "faiss":
        return None
    path = Path(path).expanduser()
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return f"no index at {path}"
    return None


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
        config: RagSettings | None = None,
    ) -> None:
        """`embedder` and `generator` can be shared between pipelines over several indexes.
        `config` (rag.settings) gives the store, threads, caches and keys; without it the
        environment is read here, once; `settings` defaults to its reader part."""
        if config is None:
            from rag.settings import load_settings

            config = load_settings()
        self.config = config
        self.settings = settings or config.reader
        path = index_dir or self.settings.index_dir or default_index_dir()
        runtime = config.runtime
        self.embedder = embedder or Embedder(
            self.settings.embedder_path,
            backend=runtime.embedder_backend,
            cache_dir=runtime.model_cache,
        )
        self.index = Index(Path(path), self.embedder, config.store)
        self.retriever = Retriever(self.index, self.embedder)
        self._generator: Generator | None = generator
        self._setup_lock = threading.Lock()
        self._model = Model(lambda: self.generator)

    @property
    def generator(self) -> Generator:
        with self._setup_lock:
            if self._generator is None:
                s = self.settings
                self._generator = load_generator(
                    s.generator, s.model, s.base_url, **self.config.runtime.generator_options()
                )
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
        question = check_search(question, k, retriever)
        self._ensure_corpus()
        self.index.refresh()
        return self.retriever.retrieve(
            question, k=k, as_of=as_date(as_of), filters=to_filters(filters), mode=retriever
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
        answerer: str = AnswererName.READER.value,
        history: Sequence[tuple[str, str]] | None = None,
    ) -> Iterator[str | Answer]:
        """Yields the answer text as it comes, then the final checked `Answer`.

        The final text can differ from the streamed one: an unsupported free-form answer is
        replaced by a quote, and a refusal streams nothing. `history` holds the earlier
        (question, answer) turns of a conversation: a follow-up ("And to how many
        countries?") is rewritten into a standalone question first, and `Answer.question`
        is that rewritten question.
        """
        question = check_question(question)
        if history:
            question = rewrite_question(question, check_history(history))
        if answerer not in ANSWERERS:
            raise InvalidQuestionError(f"answerer must be one of {', '.join(ANSWERERS)}")
        run = _Run(question)
        t = time.perf_counter()
        self.warm(answerer)  # a fresh process's model loading is its own stage, not "retrieve"
        run.lap("load", t)
        focus = self.focus(question, k=k, as_of=as_of, filters=filters, retriever=retriever)
        run.timings.update(focus.timings)
        if focus.filtered_out:  # the filters, not the articles' content, left nothing
            yield self._finish(run, Draft(NO_ARTICLE_IN_FILTERS, "refused"), [])
            return
        if answerer != AnswererName.GENERATIVE and not focus.relevant:
            yield self._finish(run, Draft(REFUSAL, "refused"), focus.context)
            return
        if not focus.context:  # the generative baseline with nothing retrieved
            yield self._finish(run, Draft(REFUSAL, "refused"), [])
            return
        t = time.perf_counter()
        job = Focus(focus.question, focus.context, run.timings, self.settings.context_sentences)
        draft: Draft | None = None
        for item in make_answerer(answerer, self._model).answer(job):
            if isinstance(item, Draft):
                draft = item
            else:
                run.timings.setdefault("first_token", (time.perf_counter() - run.started) * 1000)
                yield item
        run.lap("answer", t)
        assert draft is not None, "an answerer ends with a Draft"
        yield self._finish(run, draft, focus.context)

    def warm(self, answerer: str = AnswererName.READER.value) -> None:
        """Loads the models a question will use (once per process; later calls cost ~0)."""
        self.embedder.load()
        if answerer != AnswererName.EXTRACTIVE:
            _ = self.generator
        if answerer in (AnswererName.READER, AnswererName.GROUNDED):  # they type the question
            nlp.load()

    def focus(
        self,
        question: str,
        *,
        k: int = 5,
        as_of: str | dt.date | None = None,
        filters: Filters | dict[str, Any] | None = None,
        retriever: str = "hybrid",
    ) -> Focused:
        """Retrieve and focus: the numbered sentences an answerer will read, and whether the
        best of them comes close enough to the question to answer it at all."""
        question = check_search(question, k, retriever)
        flt, as_of_date = to_filters(filters), as_date(as_of)
        self._ensure_corpus()
        self.index.refresh()
        timings: dict[str, float] = {}
        t = time.perf_counter()
        ask_text = strip_injection(question)
        hits = []
        if ask_text:
            hits = self.retriever.retrieve(
                ask_text, k=k, as_of=as_of_date, filters=flt, mode=retriever
            )
        now = time.perf_counter()
        timings["retrieve"], t = (now - t) * 1000, now
        ranked = select_sentences(ask_text, hits, self.embedder) if hits else []
        context = self._with_copies(
            [_citation(i, s) for i, s in enumerate(ranked[: self.settings.candidate_sentences], 1)]
        )
        relevance = max((s.relevance for s in ranked), default=0.0)
        timings["select"] = (time.perf_counter() - t) * 1000
        filtered_out = not hits and self.index.allowed_ids(with_as_of(flt, as_of_date)) == []
        return Focused(
            ask_text,
            context,
            relevance,
            relevance >= self.settings.min_relevance,
            timings,
            filtered_out and len(self.index) > 0,
            hits,
        )

    def _with_copies(self, context: list[Citation]) -> list[Citation]:
        """Each citation with the other outlets that published the same story."""
        copies = self.index.copies(c.doc_id for c in context) if context else {}
        return [
            dataclasses.replace(
                c,
                also=tuple(
                    AlsoPublished(d.doc_id, d.source, d.url, d.title, d.date)
                    for d in copies[c.doc_id]
                ),
            )
            if c.doc_id in copies
            else c
            for c in context
        ]

    @staticmethod
    def _finish(run: _Run, draft: Draft, context: list[Citation]) -> Answer:
        run.timings["total"] = (time.perf_counter() - run.started) * 1000
        return Answer(
            run.question,
            draft.text,
            draft.mode == "refused",
            draft.citations,
            context,
            run.timings,
            draft.mode,
            draft.evidence,
            draft.confidence,
            list(draft.candidates),
        )


@dataclass(frozen=True)
class Focused:
    """The focused context of a question (see `Pipeline.focus`)."""

    question: str  # as asked, with instruction-like sentences removed
    context: list[Citation]
    relevance: float  # of the best sentence: cosine + weighted term overlap
    relevant: bool  # relevance reaches Settings.min_relevance
    timings: dict[str, float] = field(default_factory=dict)
    filtered_out: bool = False  # date/source filters or as_of excluded every article
    hits: list[Any] = field(default_factory=list)  # the retrieved chunks (`rag.retrieve.Hit`)


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
