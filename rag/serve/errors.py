"""Every error leaves the API as `{"error": {"message": ..., "type": ...}}`, never a traceback.

The body has OpenAI's error shape, so the `openai` client raises its usual exceptions with
the project's one-line message.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from rag.errors import (
    GeneratorError,
    IndexUnavailableError,
    IngestError,
    InvalidQuestionError,
    RagError,
)

log = logging.getLogger("rag.serve")


class ApiError(Exception):
    """An error the API answers with its own status; `headers` e.g. Retry-After."""

    def __init__(
        self, status: int, message: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.headers = status, message, kind, headers


def error_body(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind}}


def rag_status(exc: RagError) -> tuple[int, str]:
    """The HTTP status and error type of one of the project's own errors."""
    if isinstance(exc, InvalidQuestionError | IngestError):
        return 400, "invalid_request_error"
    if isinstance(exc, GeneratorError):
        return 503, "generator_unavailable"
    if isinstance(exc, IndexUnavailableError):
        return 503, "index_unavailable"
    return 400, "invalid_request_error"


def as_api_error(exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RagError):
        status, kind = rag_status(exc)
        return ApiError(status, str(exc), kind)
    log.exception("unexpected error", exc_info=exc)
    return ApiError(500, "internal error; see the server log", "server_error")


_HTTP_KINDS = {
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
}


def _validation_message(exc: RequestValidationError) -> str:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON"
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    msg = str(first.get("msg", "invalid request"))
    return f"{where}: {msg}" if where else msg


def install(app: FastAPI) -> None:
    """Registers the handlers that give every failure the JSON error shape."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        e = as_api_error(exc)
        return JSONResponse(error_body(e.message, e.kind), e.status, headers=e.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(error_body(_validation_message(exc), "invalid_request_error"), 400)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        kind = _HTTP_KINDS.get(exc.status_code, "invalid_request_error")
        return JSONResponse(error_body(str(exc.detail), kind), exc.status_code, headers=exc.headers)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RagError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_api_error)
