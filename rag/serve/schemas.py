"""Request bodies, as pydantic models so /docs shows them. Values the pipeline checks itself
(question length, k, dates, filters) are passed through for its one-line messages."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="the question; at most 1000 characters")
    k: StrictInt = Field(5, description="passages to retrieve, 1-50 (a JSON integer)")
    as_of: str | None = Field(None, description="date the question is asked, YYYY-MM-DD")
    filters: dict[str, Any] | None = Field(
        None, description='{"date_from": "YYYY-MM-DD", "date_to": ..., "sources": [...]}'
    )
    history: list[list[str]] | None = Field(
        None, description="earlier [question, answer] turns, for a follow-up question"
    )
    retriever: Literal["bm25", "dense", "hybrid"] = "hybrid"
    answerer: Literal["reader", "grounded", "extractive", "generative"] = "reader"

    def kwargs(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "as_of": self.as_of,
            "filters": self.filters,
            "history": [tuple(t) for t in self.history] if self.history else None,
            "retriever": self.retriever,
            "answerer": self.answerer,
        }


class ArticleIn(BaseModel):
    text: str
    title: str | None = None
    date: str | None = Field(None, description="YYYY-MM-DD")
    source: str | None = None
    url: str | None = None
    doc_id: str | None = Field(None, description="default: derived from the text")


class DocumentsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[ArticleIn] = Field(min_length=1)


class ChatMessage(BaseModel):
    # system and developer messages are accepted and ignored (the prompt is the pipeline's)
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """OpenAI's chat request; sampling fields are accepted and ignored (answers are greedy
    and checked). `k`, `as_of` and `filters` may ride in the body (`extra_body`)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field("rag", description="must be 'rag' (GET /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    n: StrictInt = Field(1, description="choices: only 1 (one checked answer per question)")
    k: StrictInt = 5
    as_of: str | None = None
    filters: dict[str, Any] | None = None


class RoundOut(BaseModel):
    finished_at: str = Field(description="when the source's last round ended (ISO, UTC)")
    new: int
    updated: int
    unchanged: int
    removed: int
    failed: int = Field(description="entries or files not indexed this round (see problems)")
    error: str | None = Field(description="why the whole source failed, if it did")
    problems: list[str] = Field(description="one line per entry or file that failed")


class SourceOut(BaseModel):
    source: str = Field(description="the feed URL or folder as given to --watch / rag watch")
    kind: Literal["feed", "folder"]
    name: str = Field(description="the feed's title (else its host), or the folder")
    articles: int = Field(description="entries or files remembered for this source")
    last_round: RoundOut | None


class ArticleOut(BaseModel):
    title: str | None
    source: str | None
    date: str | None
    url: str | None
    seen_at: str | None = Field(description="when the watcher first indexed it (ISO, UTC)")


class SourcesOut(BaseModel):
    sources: list[SourceOut]
    newest: list[ArticleOut] = Field(description="the articles indexed most recently")
