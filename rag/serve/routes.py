"""REST routes: /v1/ask, /v1/documents, /v1/stats, /v1/sources, and the probes /healthz,
/readyz, /metrics."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from embeddings.index import IngestReport
from embeddings.loaders import Skipped, doc_id_problem
from rag.errors import IngestError
from rag.inputs import check_history, check_question, to_filters
from rag.serve.auth import require_key
from rag.serve.errors import ApiError, as_api_error, error_body
from rag.serve.schemas import AskRequest, DocumentsIn, SourcesOut
from rag.serve.state import ServeState
from rag.serve.uploads import to_document
from rag.types import Answer

MAX_FILES = 100


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def require_json(request: Request) -> None:
    """A dependency: a JSON body must say so, or 415 (checked before the body is parsed)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise ApiError(
            415,
            f"send the body as application/json, not {ctype or 'no content type'}",
            "invalid_request_error",
        )


def precheck(question: str, history: Any, filters: Any = None) -> None:
    """Bad input is refused before it takes a place in the queue."""
    check_question(question)
    if history:
        check_history(history)
    to_filters(filters)


def _report(reports: list[IngestReport], skipped: list[Any]) -> dict[str, Any]:
    total = IngestReport(skipped=list(skipped))
    for r in reports:
        total.added += r.added
        total.updated += r.updated
        total.unchanged += r.unchanged
        total.skipped += r.skipped
        total.chunks_added += r.chunks_added
        total.duplicates.update(r.duplicates)
        total.notes += [n for n in r.notes if n not in total.notes]
    return {
        "added": total.added,
        "updated": total.updated,
        "unchanged": total.unchanged,
        "skipped": [{"file": s.path, "reason": s.reason} for s in total.skipped],
        "chunks_added": total.chunks_added,
        "duplicates": total.duplicates,  # copy doc_id -> the canonical article it repeats
        "summary": total.summary(),
    }


def build_router(state: ServeState) -> APIRouter:
    pipeline, metrics = state.pipeline, state.metrics
    keyed = [Depends(require_key(state.config.api_keys))]
    router = APIRouter()

    def known_doc_id(doc_id: str) -> str:
        """An id from the URL: the documented pattern, or an article that already has it
        (indexed before ids were checked)."""
        problem = doc_id_problem(doc_id)
        if problem and pipeline.document(doc_id) is None:
            raise ApiError(400, problem, "invalid_request_error")
        return doc_id

    @router.post(
        "/v1/ask",
        dependencies=[*keyed, Depends(require_json)],
        summary="Answer a question with citations",
    )
    async def ask(body: AskRequest, stream: bool = False) -> Any:
        """`Answer.to_dict()`; with `?stream=true`, server-sent events: `delta` events with
        text as it is generated, then one `answer` event with the checked answer (its text
        can differ from the deltas: an unsupported draft is replaced by a quote)."""
        precheck(body.question, body.history, body.filters)
        kwargs = body.kwargs()
        if not stream:
            answer = await state.queue.run(lambda: pipeline.ask(body.question, **kwargs))
            metrics.observe_stages(answer.timings)
            return answer.to_dict()
        items = await state.queue.stream(lambda: pipeline.stream(body.question, **kwargs))

        async def events(items: AsyncIterator[str | Answer]) -> AsyncIterator[str]:
            try:
                async for item in items:
                    if isinstance(item, Answer):
                        metrics.observe_stages(item.timings)
                        yield sse("answer", item.to_dict())
                    else:
                        yield sse("delta", {"text": item})
            except Exception as exc:  # headers are sent: the error becomes the last event
                e = as_api_error(exc)
                yield sse("error", error_body(e.message, e.kind))

        return StreamingResponse(events(items), media_type="text/event-stream")

    @router.post("/v1/documents", dependencies=keyed, summary="Add or update articles")
    async def add_documents(request: Request) -> Any:
        """JSON `{"documents": [{"text": ..., "title", "date", "source", "url", "doc_id"}]}`,
        or multipart files in the field `files` (.txt .md .html .json .jsonl, as in the UI)."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            form = await request.form(max_files=MAX_FILES)
            files = [
                state.uploads.receive(f.filename or "file", await f.read())
                for f in form.getlist("files")
                if isinstance(f, UploadFile)
            ]
            if not files:
                raise IngestError("no files: send them in the multipart field 'files'")

            def ingest_uploads() -> dict[str, Any]:
                with state.ingest_lock:
                    saved, skipped = state.uploads.store(files)
                    out = state.uploads.ingest(pipeline, saved)
                report = IngestReport(
                    added=out.added,
                    updated=out.updated,
                    unchanged=out.unchanged,
                    skipped=[Skipped(n, r) for n, r in [*skipped, *out.skipped]],
                    chunks_added=out.chunks_added,
                )
                return _report([report], [])

            report = await run_in_threadpool(ingest_uploads)
        elif ctype == "application/json":
            try:
                body = DocumentsIn.model_validate(json.loads(await request.body()))
            except json.JSONDecodeError:
                raise ApiError(
                    400, "request body is not valid JSON", "invalid_request_error"
                ) from None
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                raise ApiError(400, f"{where}: {err['msg']}", "invalid_request_error") from None
            docs = [to_document(a.model_dump(), n) for n, a in enumerate(body.documents)]

            def ingest_docs() -> dict[str, Any]:
                with state.ingest_lock:
                    return _report([pipeline.ingest(documents=docs)], [])

            report = await run_in_threadpool(ingest_docs)
        else:
            raise ApiError(
                415,
                "send application/json articles or multipart/form-data files",
                "invalid_request_error",
            )
        if report["skipped"] and not (report["added"] or report["updated"] or report["unchanged"]):
            reasons = "; ".join(f"{s['file']}: {s['reason']}" for s in report["skipped"])
            raise IngestError(f"nothing ingested: {reasons}")
        return report

    @router.get("/v1/documents", dependencies=keyed, summary="List the articles")
    async def list_documents() -> Any:
        docs = await run_in_threadpool(pipeline.documents)
        rows = [{k: v for k, v in d.to_dict().items() if k not in ("text", "path")} for d in docs]
        return {"documents": rows, "count": len(rows)}

    @router.get("/v1/documents/{doc_id:path}", dependencies=keyed, summary="One article")
    async def get_document(doc_id: str) -> Any:
        """`doc_id`: 1-128 of `A-Za-z0-9._:-`, starting with a letter or digit (else 400)."""
        doc_id = await run_in_threadpool(known_doc_id, doc_id)
        doc = await run_in_threadpool(pipeline.document, doc_id)
        if doc is None:
            raise _unknown(doc_id)
        return {k: v for k, v in doc.to_dict().items() if k != "path"}

    @router.delete("/v1/documents/{doc_id:path}", dependencies=keyed, summary="Remove an article")
    async def delete_document(doc_id: str) -> Any:
        doc_id = await run_in_threadpool(known_doc_id, doc_id)

        def delete() -> bool:
            with state.ingest_lock:
                doc = pipeline.document(doc_id)
                ok = pipeline.delete(doc_id)
                if ok and doc and doc.path:  # kept while another article comes from it
                    state.uploads.remove_unused(pipeline, [Path(doc.path)])
                return ok

        if not await run_in_threadpool(delete):
            raise _unknown(doc_id)
        return {"deleted": doc_id}

    @router.get("/v1/stats", dependencies=keyed, summary="Index size and queue")
    async def stats() -> Any:
        s = await run_in_threadpool(pipeline.stats)
        return {
            "documents": s.documents,
            "chunks": s.chunks,
            "updated_at": s.updated_at,
            "queue": {"running": state.queue.running, "waiting": state.queue.waiting},
        }

    @router.get(
        "/v1/sources",
        dependencies=keyed,
        response_model=SourcesOut,
        summary="Followed feeds and folders",
    )
    async def sources() -> Any:
        """Each source `rag watch` or `rag serve --watch` follows into this index, with its
        last round; read from the watcher's state file, so every worker answers the same."""
        from embeddings.sources import newest_articles, read_sources

        def read() -> dict[str, Any]:
            index_dir = pipeline.index.path
            return {
                "sources": [v.to_dict() for v in read_sources(index_dir)],
                "newest": newest_articles(index_dir),
            }

        return await run_in_threadpool(read)

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> Any:
        return {"status": "ok"}

    @router.get("/readyz", summary="Models loaded and index readable")
    async def readyz() -> Any:
        if not state.ready.is_set():
            body = error_body(state.not_ready_reason, "not_ready")
            return JSONResponse(body, 503)
        s = await run_in_threadpool(pipeline.stats)  # IndexUnavailableError -> 503
        return {"status": "ready", "documents": s.documents, "chunks": s.chunks}

    @router.get("/metrics", dependencies=keyed, summary="Prometheus metrics")
    async def metrics_text() -> Response:
        data, ctype = metrics.render()
        return Response(data, media_type=ctype)

    return router


def _unknown(doc_id: str) -> ApiError:
    return ApiError(404, f"no article with doc_id {doc_id!r} in the index", "not_found_error")
