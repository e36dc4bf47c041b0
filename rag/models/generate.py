"""Generators: the packaged SmolLM2 via llama.cpp by default (`rag.models.llama`); any local model
or an OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama) by configuration.

A generator only turns chat messages into streamed text; prompting and checking live in
`rag.pipeline` and `rag.reader.ground`, so swapping the model changes nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from rag.errors import GeneratorError

Messages = list[dict[str, str]]
BACKENDS = ("llama-cpp", "transformers", "openai")

# ChatML, the format of the packaged SmolLM2 (and Qwen, Hermes...): rendered exactly as
# llama.cpp renders SmolLM2's own template when the reader's messages start with a system
# message (tests/test_generators.py compares the two).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


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


RAG_CHAT_TEMPLATE_ENV = "RAG_CHAT_TEMPLATE"


def _read_template(path: Path | None) -> str | None:
    """The served model's chat template, from a Jinja file (none: ChatML)."""
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise GeneratorError(
            f"cannot read the chat template {path} ({RAG_CHAT_TEMPLATE_ENV}): {exc}"
        ) from None


def load_generator(
    backend: str = "llama-cpp",
    model: str | None = None,
    base_url: str | None = None,
    *,
    api_key: str | None = None,
    chat_template: Path | None = None,
    score_candidates: bool = True,
    threads: int | None = None,
    cache_dir: Path | None = None,
) -> Generator:
    """Builds the configured generator; `model` is a path, or a served model's name. The
    keyword options are `rag.settings.Runtime.generator_options()`."""
    if backend == "llama-cpp":
        from rag.models.llama import LlamaCppGenerator

        return LlamaCppGenerator(model, threads=threads, cache_dir=cache_dir)
    if backend == "transformers":
        if not model:
            raise GeneratorError("the transformers backend needs a model folder or .gguf file")
        return TransformersGenerator(model)
    if backend == "openai":
        from rag.models.served import OpenAIGenerator

        if not base_url:
            raise GeneratorError("the openai backend needs a base URL (RAG_BASE_URL)")
        return OpenAIGenerator(
            base_url,
            model or "default",
            api_key,
            chat_template=_read_template(chat_template),
            score_candidates=score_candidates,
        )
    raise GeneratorError(f"unknown generator {backend!r}; choose one of {', '.join(BACKENDS)}")
