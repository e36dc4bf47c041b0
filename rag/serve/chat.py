"""POST /v1/chat/completions, the OpenAI chat protocol over `Pipeline.ask`.

The last user message is the question and earlier user/assistant pairs are the follow-up
history. The reply's content is the checked answer with its `[n]` markers; the citations ride
in an extra top-level field `citations` (and the whole `Answer.to_dict()` in `answer`).
Streaming sends the checked answer, not raw model tokens: the protocol cannot take back a
draft that the support check then replaces with a quote.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from rag.errors import InvalidQuestionError
from rag.serve.auth import require_key
from rag.serve.errors import ApiError, as_api_error, error_body
from rag.serve.routes import precheck, require_json
from rag.serve.schemas import ChatMessage, ChatRequest
from rag.serve.state import ServeState
from rag.types import Answer

_MARKER_RE = re.compile(r"\[\d+\]")
MODEL = "rag"


def _text(message: ChatMessage) -> str:
    if isinstance(message.content, list):  # [{"type": "text", "text": ...}, ...]
        return " ".join(str(p.get("text", "")) for p in message.content if p.get("type") == "text")
    return message.content or ""


def split_messages(messages: list[ChatMessage], limit: int) -> tuple[str, list[tuple[str, str]]]:
    """(question, [(earlier question, its answer), ...]); system messages are ignored (the
    prompt is the pipeline's own)."""
    if len(messages) > limit:
        raise InvalidQuestionError(f"{len(messages)} messages; the limit is {limit}")
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise InvalidQuestionError("the last message must be the user's question")
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for m in turns[:-1]:
        if m.role == "user":
            pending = _text(m)
        elif pending is not None:
            history.append((pending, _text(m)))
            pending = None
    return _text(turns[-1]), history


def content(answer: Answer) -> str:
    """The answer with its `[n]` markers (an extracted span carries none of its own)."""
    text = answer.text
    if answer.citations and not _MARKER_RE.search(text):
        text += " " + "".join(f"[{c.n}]" for c in answer.citations)
    return text


def completion(answer: Answer, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content(answer)},
                "finish_reason": "stop",
            }
        ],
        "citations": [c.to_dict() for c in answer.citations],
        "answer": answer.to_dict(),
    }


def _chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None, **extra: Any) -> str:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def build_chat_router(state: ServeState) -> APIRouter:
    router = APIRouter()
    keyed = [Depends(require_key(state.config.api_keys))]

    @router.get("/v1/models", dependencies=keyed, summary="OpenAI-compatible model list")
    async def models() -> Any:
        """One model, `rag`, the only `model` /v1/chat/completions accepts."""
        return {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "rag"}]}

    @router.post(
        "/v1/chat/completions",
        dependencies=[*keyed, Depends(require_json)],
        summary="OpenAI-compatible chat completions",
    )
    async def chat(body: ChatRequest) -> Any:
        if body.model != MODEL:
            raise ApiError(
                404,
                f"model {body.model!r} does not exist; the only model is {MODEL!r}",
                "not_found_error",
            )
        if body.n != 1:
            raise ApiError(
                400,
                f"n is {body.n}; only n=1 is supported (one checked answer)",
                "invalid_request_error",
            )
        question, history = split_messages(body.messages, state.config.max_messages)
        precheck(question, history, body.filters)
        kwargs: dict[str, Any] = {
            "k": body.k,
            "as_of": body.as_of,
            "filters": body.filters,
            "history": history or None,
        }
        pipeline = state.pipeline
        if not body.stream:
            answer = await state.queue.run(lambda: pipeline.ask(question, **kwargs))
            state.metrics.observe_stages(answer.timings)
            return completion(answer, body.model)
        items = await state.queue.stream(lambda: pipeline.stream(question, **kwargs))
        cid = f"chatcmpl-{uuid.uuid4().hex}"

        async def events(items: AsyncIterator[str | Answer]) -> AsyncIterator[str]:
            yield _chunk(cid, body.model, {"role": "assistant", "content": ""}, None)
            try:
                async for item in items:
                    if isinstance(item, Answer):
                        state.metrics.observe_stages(item.timings)
                        yield _chunk(cid, body.model, {"content": content(item)}, None)
                        yield _chunk(
                            cid,
                            body.model,
                            {},
                            "stop",
                            citations=[c.to_dict() for c in item.citations],
                            answer=item.to_dict(),
                        )
            except Exception as exc:  # headers are sent: the error is the last event
                e = as_api_error(exc)
                yield f"data: {json.dumps(error_body(e.message, e.kind))}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(items), media_type="text/event-stream")

    return router
