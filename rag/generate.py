"""Generators: the packaged SmolLM2 via llama.cpp by default (`rag.llama`); any local model
or an OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama) by configuration.

A generator only turns chat messages into streamed text; prompting and checking live in
`rag.pipeline` and `rag.ground`, so swapping the model changes nothing else.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rag.errors import GeneratorError, GeneratorUnavailableError

Messages = list[dict[str, str]]
BACKENDS = ("llama-cpp", "transformers", "openai")


class Generator(Protocol):
    name: str

    def stream(self, messages: Messages, *, max_tokens: int, stop: list[str]) -> Iterator[str]:
        """Yields text deltas, greedily decoded."""
        ...


@runtime_checkable
class CandidateScorer(Protocol):
    """A generator that can also say how likely each given answer is as its reply."""

    def score(self, messages: Messages, answers: list[str]) -> list[float]:
        """Mean log-probability per token of each answer (and its end-of-turn) as the reply."""
        ...


class TransformersGenerator:
    """Any local Hugging Face model folder, or a GGUF file (dequantised by transformers)."""

    def __init__(self, model_path: str | Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(model_path)
        if not path.exists():
            raise GeneratorError(f"model not found: {path}")
        kwargs: dict[str, Any] = {"local_files_only": True}
        folder = path
        if path.is_file():  # a .gguf file
            folder, kwargs["gguf_file"] = path.parent, path.name
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(folder, **kwargs).to(self.device)  # type: ignore[arg-type]
        except Exception as exc:
            raise GeneratorError(f"cannot load {path}: {exc}") from None
        self.name = path.name

    def stream(self, messages: Messages, *, max_tokens: int, stop: list[str]) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)  # type: ignore[union-attr]
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = dict(**inputs, max_new_tokens=max_tokens, do_sample=False, streamer=streamer)
        thread = threading.Thread(target=self.model.generate, kwargs=kwargs, daemon=True)
        thread.start()
        yield from _stop_at(streamer, stop)
        thread.join()


class OpenAIGenerator:
    """An OpenAI-compatible chat endpoint; the key comes from RAG_API_KEY or OPENAI_API_KEY.

    Connecting gives up after `connect_timeout` s and a silent server after `read_timeout` s
    between bytes; connection errors, timeouts and 5xx replies are retried `max_retries`
    times with back-off (the `openai` client's own retry), then `GeneratorUnavailableError`
    says the server is down, which the HTTP API answers with 503.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        from openai import OpenAI, Timeout

        key = api_key or os.environ.get("RAG_API_KEY") or os.environ.get("OPENAI_API_KEY")
        self.client = OpenAI(
            base_url=base_url,
            api_key=key or "not-needed",
            timeout=Timeout(read_timeout, connect=connect_timeout),
            max_retries=max_retries,
        )
        self.model = model
        self.name = f"{model}@{base_url}"
        self.attempts = max_retries + 1

    def stream(self, messages: Messages, *, max_tokens: int, stop: list[str]) -> Iterator[str]:
        import openai

        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                temperature=0,
                max_tokens=max_tokens,
                stop=stop or None,
                stream=True,
            )
            for event in response:
                choices = getattr(event, "choices", None)
                if choices and choices[0].delta.content:
                    yield choices[0].delta.content
        except openai.APITimeoutError:
            raise GeneratorUnavailableError(
                f"generation server {self.name} failed: no answer in time ({self.attempts} tries)"
            ) from None
        except openai.APIConnectionError:
            raise GeneratorUnavailableError(
                f"generation server {self.name} failed: unreachable ({self.attempts} tries)"
            ) from None
        except openai.InternalServerError as exc:
            raise GeneratorUnavailableError(
                f"generation server {self.name} failed: HTTP {exc.status_code} "
                f"({self.attempts} tries)"
            ) from None
        except Exception as exc:  # 4xx (bad model name, bad key), a malformed stream
            raise GeneratorError(f"generation server {self.name} failed: {exc}") from None


def _stop_at(pieces: Iterator[str], stop: list[str]) -> Iterator[str]:
    """Cuts a stream at the first stop string (transformers has no string stops). Text that
    could be the start of a stop string is held back until the next piece decides, since a
    stop string can span two pieces."""
    text, sent = "", 0
    for piece in pieces:
        text += piece
        cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            if cut > sent:
                yield text[sent:cut]
            return
        hold = max((n for s in stop for n in range(1, len(s)) if text.endswith(s[:n])), default=0)
        if len(text) - hold > sent:
            yield text[sent : len(text) - hold]
            sent = len(text) - hold
    if len(text) > sent:
        yield text[sent:]


def load_generator(
    backend: str = "llama-cpp", model: str | None = None, base_url: str | None = None
) -> Generator:
    """Builds the configured generator; `model` is a path, or a served model's name."""
    if backend == "llama-cpp":
        from rag.llama import LlamaCppGenerator

        return LlamaCppGenerator(model)
    if backend == "transformers":
        if not model:
            raise GeneratorError("the transformers backend needs a model folder or .gguf file")
        return TransformersGenerator(model)
    if backend == "openai":
        if not base_url:
            raise GeneratorError("the openai backend needs a base URL (RAG_BASE_URL)")
        return OpenAIGenerator(base_url, model or "default")
    raise GeneratorError(f"unknown generator {backend!r}; choose one of {', '.join(BACKENDS)}")
