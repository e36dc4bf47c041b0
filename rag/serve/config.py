"""Every `rag serve` setting in one frozen record; `rag.settings` fills it from the
environment and the command line."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere


@dataclass(frozen=True)
class ServeConfig:
    """Limits and keys of the HTTP API. Environment names are the field names, upper-cased,
    with a RAG_SERVE_ prefix (RAG_SERVE_QUEUE_SIZE...), except RAG_API_KEYS."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # bearer tokens; empty = open
    max_body_bytes: int = 1_000_000  # JSON requests and whole multipart bodies
    max_upload_mb: int = 10  # per uploaded file, as in the UI
    max_upload_body_mb: int = 50  # a whole multipart POST /v1/documents
    max_messages: int = 50  # chat turns in one /v1/chat/completions request
    # Questions answered at once. llama.cpp spins its threads at barriers: two concurrent
    # generations on 2 cores were slower in total than one after the other (rag/models/generate.py).
    concurrency: int = 1
    queue_size: int = 8  # questions waiting for a slot before 429
    timeout_s: float = 60.0  # a question's wait + answer; then 504
    ui: bool = True  # mount the Gradio UI at /ui

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ServeConfig:
        """The `serve` part of `rag.settings.load_settings`, checked."""
        from rag.settings import load_settings

        return load_settings(env, flags=overrides).serve.checked()

    def to_env(self) -> dict[str, str]:
        """The environment that rebuilds this config in a uvicorn worker process."""
        env = {
            f"RAG_SERVE_{k.upper()}": str(v) for k, v in self.__dict__.items() if k != "api_keys"
        }
        env["RAG_API_KEYS"] = ",".join(self.api_keys)
        return env

    def checked(self) -> ServeConfig:
        """Raises ValueError with a one-line reason for a setting that cannot work."""
        if not 0 < self.port < 65536:
            raise ValueError(f"invalid port {self.port}")
        for name in (
            "workers",
            "max_body_bytes",
            "max_upload_mb",
            "max_upload_body_mb",
            "max_messages",
            "concurrency",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1")
        if self.queue_size < 0:
            raise ValueError("queue-size must be 0 or more")
        if self.timeout_s <= 0:
            raise ValueError("timeout must be more than 0 seconds")
        if not self.api_keys and not is_loopback(self.host):
            raise ValueError(
                f"binding to {self.host} exposes the API beyond this machine: set RAG_API_KEYS "
                "(comma-separated bearer tokens) or bind to 127.0.0.1"
            )
        return self
