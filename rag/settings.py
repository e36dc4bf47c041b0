"""Every setting of `rag`, read once from the environment and the command line.

Entry points (the `rag` commands, `rag serve` and each of its uvicorn workers, `rag ui`, and
`Pipeline()` built without settings) call `load_settings` once and pass its parts down: the
reader's `Settings`, the index store's `StoreConfig`, the HTTP API's `ServeConfig`, and
`Runtime` (threads, model cache, keys of the generation server...). No other module reads the
environment for configuration; `embeddings` keeps `StoreConfig.from_env` for an `Index`
used on its own, without rag.

Why a table of variables building frozen dataclasses rather than pydantic-settings: every
value must say where it came from (default / env / flag) for `--print-settings`; the names
keep their historic shapes (RAG_SERVE_* next to RAG_API_KEYS, OPENAI_API_KEY as a fallback
for RAG_API_KEY), which one env prefix cannot express; and a bad value must be one line
naming the variable, which pydantic's multi-line ValidationError is not. The parts stay the
frozen records that other modules and tests already build directly, and no dependency is
added.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from embeddings.store import STORES, StoreConfig
from rag.errors import RagError
from rag.serve.config import ServeConfig

if TYPE_CHECKING:
    from rag.pipeline import Settings

Origin = Literal["default", "env", "flag"]
GENERATORS = ("llama-cpp", "transformers", "openai")
EMBEDDER_BACKENDS = ("onnx", "torch")  # as embeddings.embedder.BACKENDS, without loading it
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class SettingsError(RagError, ValueError):
    """An environment variable or option holds a value that cannot work; the message names it."""


@dataclass(frozen=True)
class Runtime:
    """Settings of the process rather than of the answer: threads, caches, keys."""

    threads: int | None = None  # llama.cpp threads; None: half the usable cores
    model_cache: Path | None = None  # None: the platform's user cache folder
    embedder_backend: str | None = None  # None: onnx for the packaged MiniLM, else torch
    api_key: str | None = field(default=None, repr=False)  # sent to an OpenAI-compatible server
    chat_template: Path | None = None  # the served model's Jinja chat template; None: ChatML
    score_candidates: bool = True  # ask the generation server to score the reader's candidates
    ui_auth: str | None = field(default=None, repr=False)  # USER:PASS for `rag ui`
    metrics_dir: Path | None = None  # PROMETHEUS_MULTIPROC_DIR, set by `rag serve --workers N`

    def generator_options(self) -> dict[str, Any]:
        """Keyword arguments of `rag.models.generate.load_generator`."""
        return {
            "api_key": self.api_key,
            "chat_template": self.chat_template,
            "score_candidates": self.score_candidates,
            "threads": self.threads,
            "cache_dir": self.model_cache,
        }


@dataclass(frozen=True)
class Var:
    """One environment variable: the part and field it sets, how its text is parsed, and
    the command-line option that overrides it."""

    env: str
    part: Literal["reader", "store", "serve", "runtime"]
    field: str
    parse: Callable[[str], Any]
    flag: str | None = None
    secret: bool = False


def _text(raw: str) -> str:
    return raw.strip()


def _path(raw: str) -> Path:
    return Path(raw.strip()).expanduser()


def _number(kind: type[int] | type[float], least: float | None = None) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        try:
            value = kind(raw.strip())
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise ValueError(f"must be {noun}") from None
        if least is not None and value < least:
            raise ValueError(f"must be at least {least:g}")
        return value

    return parse


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ValueError("must be 1 or 0 (true/false, yes/no, on/off)")


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _keys(raw: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in raw.split(",") if k.strip())


def _threads(raw: str) -> int:
    return max(1, _number(int)(raw))  # 0 or less has always meant one thread


VARS: tuple[Var, ...] = (
    Var("RAG_INDEX_DIR", "reader", "index_dir", _path, "--index"),
    Var("RAG_GENERATOR", "reader", "generator", _choice(GENERATORS), "--generator"),
    Var("RAG_MODEL", "reader", "model", _text, "--model"),
    Var("RAG_BASE_URL", "reader", "base_url", _text, "--base-url"),
    Var("RAG_EMBEDDER", "reader", "embedder_path", _text),
    Var("RAG_STORE", "store", "kind", _choice(STORES)),
    Var("RAG_MILVUS_URI", "store", "milvus_uri", _text),
    Var("RAG_MILVUS_TOKEN", "store", "milvus_token", _text, secret=True),
    Var("RAG_MILVUS_COLLECTION", "store", "milvus_collection", _text),
    Var("RAG_DEDUP", "store", "dedup", _bool),
    Var("RAG_SERVE_HOST", "serve", "host", _text, "--host"),
    Var("RAG_SERVE_PORT", "serve", "port", _number(int), "--port"),
    Var("RAG_SERVE_WORKERS", "serve", "workers", _number(int), "--workers"),
    Var("RAG_API_KEYS", "serve", "api_keys", _keys, secret=True),
    Var("RAG_SERVE_MAX_BODY_BYTES", "serve", "max_body_bytes", _number(int)),
    Var("RAG_SERVE_MAX_UPLOAD_MB", "serve", "max_upload_mb", _number(int)),
    Var("RAG_SERVE_MAX_UPLOAD_BODY_MB", "serve", "max_upload_body_mb", _number(int)),
    Var("RAG_SERVE_MAX_MESSAGES", "serve", "max_messages", _number(int)),
    Var("RAG_SERVE_CONCURRENCY", "serve", "concurrency", _number(int), "--concurrency"),
    Var("RAG_SERVE_QUEUE_SIZE", "serve", "queue_size", _number(int), "--queue-size"),
    Var("RAG_SERVE_TIMEOUT_S", "serve", "timeout_s", _number(float), "--timeout"),
    Var("RAG_SERVE_UI", "serve", "ui", _bool, "--no-ui"),
    Var("RAG_THREADS", "runtime", "threads", _threads),
    Var("RAG_MODEL_CACHE", "runtime", "model_cache", _path),
    Var("RAG_EMBEDDER_BACKEND", "runtime", "embedder_backend", _choice(EMBEDDER_BACKENDS)),
    Var("RAG_API_KEY", "runtime", "api_key", _text, secret=True),
    Var("OPENAI_API_KEY", "runtime", "api_key", _text, secret=True),  # if RAG_API_KEY is unset
    Var("RAG_CHAT_TEMPLATE", "runtime", "chat_template", _path),
    Var("RAG_SCORE_CANDIDATES", "runtime", "score_candidates", _bool),
    Var("RAG_UI_AUTH", "runtime", "ui_auth", _text, "--auth", secret=True),
    Var("PROMETHEUS_MULTIPROC_DIR", "runtime", "metrics_dir", _path),
)
# argparse destinations of the options above, per command that has them
_FLAGS = {
    "index": "index_dir",
    "generator": "generator",
    "model": "model",
    "base_url": "base_url",
}
_SERVE_FLAGS = {
    "host": "host",
    "port": "port",
    "workers": "workers",
    "concurrency": "concurrency",
    "queue_size": "queue_size",
    "timeout_s": "timeout_s",
}


@dataclass(frozen=True)
class RagSettings:
    """The effective settings, in parts for the modules that use them, and where each came
    from. `serve` is not `checked()` here: its rules (keys beyond loopback...) apply to
    `rag serve` only."""

    reader: Settings
    store: StoreConfig
    serve: ServeConfig
    runtime: Runtime
    origins: Mapping[str, Origin] = field(default_factory=dict)  # variable -> where from
    raw: Mapping[str, str] = field(default_factory=dict, repr=False)  # variable -> text given

    def origin(self, env: str) -> Origin:
        return self.origins.get(env, "default")

    def to_env(self) -> dict[str, str]:
        """The environment that rebuilds these settings in another process (a uvicorn worker)."""
        return dict(self.raw)

    def describe(self) -> str:
        """One line per variable: name, effective value (secrets masked), and its origin."""
        from rag.pipeline import default_index_dir

        lines = []
        for var in VARS:
            if var.env == "OPENAI_API_KEY":
                continue  # shown as the origin of RAG_API_KEY's value
            value = getattr(getattr(self, var.part), var.field)
            shown = _mask(var, value) if var.secret else _show(value)
            origin = self.origin(var.env)
            where = f"flag {var.flag}" if origin == "flag" else origin
            if var.env == "RAG_API_KEY" and origin == "default" and value:
                where = "env OPENAI_API_KEY"
            if var.env == "RAG_INDEX_DIR" and value is None:
                shown = f"{default_index_dir()} (per-user folder)"
            lines.append(f"{var.env:<29} {shown:<40} {where}")
        return "\n".join(lines)


def _show(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "(none)"
    return str(value)


def _mask(var: Var, value: object) -> str:
    """Secrets are shown as set or unset, never in part; a login keeps its user name."""
    if not value:
        return "(unset)" if value is None else "(none)"
    if isinstance(value, tuple):
        return f"**** ({len(value)} key{'s' if len(value) != 1 else ''})"
    if var.field == "ui_auth" and ":" in str(value):
        return f"{str(value).split(':', 1)[0]}:****"
    return "****"


def load_settings(
    env: Mapping[str, str] | None = None, flags: Mapping[str, Any] | None = None
) -> RagSettings:
    """`env` (default: this process's environment) overridden by `flags` (field -> value,
    None meaning not given). Raises SettingsError naming the variable of a bad value."""
    env = os.environ if env is None else env
    from rag.pipeline import Settings

    values: dict[str, dict[str, Any]] = {p: {} for p in ("reader", "store", "serve", "runtime")}
    origins: dict[str, Origin] = {}
    raw: dict[str, str] = {}
    for var in VARS:
        text = env.get(var.env)
        if text is None or not text.strip() or var.field in values[var.part]:
            continue  # unset, empty, or an earlier variable (RAG_API_KEY) already set it
        try:
            values[var.part][var.field] = var.parse(text)
        except ValueError as exc:
            shown = "" if var.secret else f", not {text.strip()!r}"
            raise SettingsError(f"{var.env} {exc}{shown}") from None
        origins[var.env], raw[var.env] = "env", text
    by_field: dict[str, Var] = {}
    for var in VARS:
        by_field.setdefault(var.field, var)
    for name, value in (flags or {}).items():
        if value is None:
            continue
        var = by_field[name]
        values[var.part][name] = value
        origins[var.env] = "flag"
        raw[var.env] = _show(value) if not isinstance(value, tuple) else ",".join(value)
    serve = values["serve"]
    try:
        return RagSettings(
            reader=Settings(**values["reader"]),
            store=StoreConfig(**values["store"]),
            serve=replace(ServeConfig(), **serve),
            runtime=Runtime(**values["runtime"]),
            origins=origins,
            raw=raw,
        )
    except RagError as exc:  # StoreConfig's own checks
        raise SettingsError(str(exc)) from None


def flags_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The options a user gave on the command line, as `load_settings` flags."""
    flags = {field: getattr(args, dest, None) for dest, field in _FLAGS.items()}
    if hasattr(args, "no_ui"):  # `rag serve` (`rag ui` has a --host and --port of its own)
        flags.update({field: getattr(args, dest, None) for dest, field in _SERVE_FLAGS.items()})
        flags["ui"] = False if args.no_ui else None
    if hasattr(args, "auth"):  # `rag ui`
        flags["ui_auth"] = args.auth
    return flags


def settings_for(args: argparse.Namespace) -> RagSettings:
    """The settings `rag.cli.main` loaded for this command line, or loads them (a command's
    `run` called directly, as tests do)."""
    loaded = getattr(args, "settings", None)
    return loaded if isinstance(loaded, RagSettings) else load_settings(flags=flags_from_args(args))
