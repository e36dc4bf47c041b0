"""Bearer API keys (RAG_API_KEYS): checked in constant time, on every /v1 route and /metrics."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence

from fastapi import Request

from rag.serve.errors import ApiError


def key_matches(given: str, keys: Sequence[str]) -> bool:
    # compare with every key, not stopping at a match: timing says nothing about which key
    found = False
    for key in keys:
        found |= hmac.compare_digest(given.encode(), key.encode())
    return found


def require_key(keys: Sequence[str]) -> Callable[[Request], None]:
    """A FastAPI dependency: open when no keys are configured (loopback only, see config)."""

    def check(request: Request) -> None:
        if not keys:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401,
                "missing API key: send 'Authorization: Bearer <key>'",
                "authentication_error",
                {"WWW-Authenticate": "Bearer"},
            )
        if not key_matches(token.strip(), keys):
            raise ApiError(
                401, "invalid API key", "authentication_error", {"WWW-Authenticate": "Bearer"}
            )

    return check
