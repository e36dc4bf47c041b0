"""An OpenAI-compatible server as the generator (vLLM, TGI, llama.cpp's server, Ollama):
chat for the answer, and the completions endpoint's prompt log-probabilities (`echo` +
`logprobs`) to score the reader's candidates where the server offers them."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any

from rag.errors import GeneratorError, GeneratorUnavailableError, RagError
from rag.models.generate import CHATML_TEMPLATE, Messages

log = logging.getLogger("rag.models.served")


class ChatPrompt:
    """Chat messages as the text a server's chat template makes of them, for the completions
    endpoint (which takes text, not messages). `end_of_turn` is what the template writes right
    after an assistant's reply (`<|im_end|>` for ChatML), trailing whitespace left out.

    Templates are rendered as Hugging Face and llama.cpp render them (sandboxed Jinja,
    `trim_blocks`, `lstrip_blocks`), with empty `bos_token`/`eos_token`: servers add the
    BOS token themselves when their model wants one."""

    def __init__(self, template: str = CHATML_TEMPLATE) -> None:
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message: str) -> None:
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        env.globals["raise_exception"] = raise_exception
        try:
            self._template = env.from_string(template)
            probe = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
            marker = "\u2063answer\u2063"
            prompt = self.render(probe)
            full = self.render([*probe, {"role": "assistant", "content": marker}], False)
        except TemplateError as exc:
            raise GeneratorError(f"cannot use the chat template: {exc}") from None
        if not full.startswith(prompt) or marker not in full[len(prompt) :]:
            raise GeneratorError("the chat template does not end a prompt where the reply begins")
        self.end_of_turn = full[full.index(marker) + len(marker) :].rstrip()
        if not self.end_of_turn:
            raise GeneratorError("the chat template writes nothing after a reply")

    def render(self, messages: Messages, add_generation_prompt: bool = True) -> str:
        return str(
            self._template.render(
                messages=messages,
                add_generation_prompt=add_generation_prompt,
                bos_token="",
                eos_token="",
            )
        )


class OpenAIGenerator:
    """An OpenAI-compatible chat endpoint; the key comes from RAG_API_KEY or OPENAI_API_KEY.

    Connecting gives up after `connect_timeout` s and a silent server after `read_timeout` s
    between bytes; connection errors, timeouts and 5xx replies are retried `max_retries`
    times with back-off (the `openai` client's own retry), then `GeneratorUnavailableError`
    says the server is down, which the HTTP API answers with 503.

    It also scores the reader's candidates (`CandidateScorer`) through the completions
    endpoint: each candidate is appended to the chat prompt, rendered as text with
    `chat_template` (Jinja; default ChatML, the packaged SmolLM2's format; it must be the
    served model's template, or the numbers mean little), and the server echoes the prompt's
    token log-probabilities (`echo`, `logprobs`). Candidates go in one request where the
    server takes a list of prompts (vLLM does; llama-cpp-python's server takes one prompt per
    request). A probe at construction decides: `score` exists on the instance only while the
    server returns those log-probabilities. When it does not (TGI, Ollama, a server without
    logits for the prompt), the reader ranks candidates by their features alone, as it always
    did on this backend: one warning in the log, `score_fallback` holds the reason, and the
    answers' `timings` have no "score" stage. A server unreachable at construction is probed
    again on the first question.
    """

    score: Callable[[Messages, list[str]], list[float]]  # set by a successful probe only

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        max_retries: int = 2,
        chat_template: str | None = None,
        score_candidates: bool = True,
    ) -> None:
        from openai import OpenAI, Timeout

        self.client = OpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",  # RAG_API_KEY / OPENAI_API_KEY, via rag.settings
            timeout=Timeout(read_timeout, connect=connect_timeout),
            max_retries=max_retries,
        )
        self.model = model
        self.name = f"{model}@{base_url}"
        self.attempts = max_retries + 1
        self.chat = ChatPrompt(chat_template or CHATML_TEMPLATE)
        self.score_fallback: str | None = None  # why candidates are not scored, once known
        self.batch_prompts = False  # the server takes a list of prompts in one request
        self._probed = False
        self._misaligned = False  # warned that echoed tokens did not line up with a reply
        if not score_candidates:
            self.score_fallback = "candidate scoring turned off"
            return
        self.score = self._score  # until the probe says otherwise
        with contextlib.suppress(GeneratorUnavailableError):  # not up yet: probed again later
            self._probe()

    def stream(self, messages: Messages, *, max_tokens: int, stop: list[str]) -> Iterator[str]:
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
        except Exception as exc:
            raise self._failure(exc) from None

    def _failure(self, exc: Exception) -> RagError:
        """The error a failed request becomes: the server is down (503 in the HTTP API), or
        it refused the request."""
        import openai

        if isinstance(exc, RagError):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            return GeneratorUnavailableError(
                f"generation server {self.name} failed: no answer in time ({self.attempts} tries)"
            )
        if isinstance(exc, openai.APIConnectionError):
            return GeneratorUnavailableError(
                f"generation server {self.name} failed: unreachable ({self.attempts} tries)"
            )
        if isinstance(exc, openai.InternalServerError):
            return GeneratorUnavailableError(
                f"generation server {self.name} failed: HTTP {exc.status_code} "
                f"({self.attempts} tries)"
            )
        # 4xx (bad model name, bad key), a malformed stream
        return GeneratorError(f"generation server {self.name} failed: {exc}")

    def _score(self, messages: Messages, answers: list[str]) -> list[float]:
        """Mean log-probability per token of each answer (and its end-of-turn) as the reply,
        the quantity `LlamaCppGenerator.score` computes. Zeros (every candidate alike: the
        features decide) when the server turns out not to return them."""
        if not answers:
            return []
        if not self._probed:
            self._probe()
        if self.score_fallback:
            return [0.0] * len(answers)
        prompt = self.chat.render(messages)
        try:
            replies = self._echo(self.client, [prompt + a + self.chat.end_of_turn for a in answers])
        except Exception as exc:
            raise self._failure(exc) from None
        return self._mean_logprobs(replies, answers) or [0.0] * len(answers)

    def _probe(self) -> None:
        """Scores two tiny replies: does the server echo prompt log-probabilities, and does
        it take both prompts in one request? Raises `GeneratorUnavailableError` when it
        cannot be reached (nothing is decided then)."""
        import openai

        prompt = self.chat.render([{"role": "user", "content": "Is the sky blue?"}])
        answers = ["Yes", "No"]
        texts = [prompt + a + self.chat.end_of_turn for a in answers]
        replies = None
        for batch in (True, False):
            self.batch_prompts = batch
            client = self.client.with_options(max_retries=0) if batch else self.client
            if not batch:  # one prompt is enough to see the log-probabilities
                texts, answers = texts[:1], answers[:1]
            try:
                replies = self._echo(client, texts)
                break
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                raise self._failure(exc) from None
            except Exception as exc:  # refused: a list of prompts, echo or logprobs
                reason = f"the completions request failed: {exc}"
        self._probed = True
        if replies is None:
            self._fall_back(reason)
        elif self._mean_logprobs(replies, answers) is not None:
            how = "one request per question" if self.batch_prompts else "one per candidate"
            log.info("rag: %s scores the reader's candidates (%s)", self.name, how)

    def _fall_back(self, reason: str) -> None:
        """From now on the reader ranks candidates by their features alone; said once."""
        if self.score_fallback is None:
            self.score_fallback = reason
            log.warning(
                "rag: the reader ranks candidates by their features alone, without the "
                "model's scores from %s: %s",
                self.name,
                reason,
            )
        self.__dict__.pop("score", None)  # no longer a CandidateScorer

    def _echo(self, client: Any, texts: list[str]) -> list[tuple[Any, int | None]]:
        """The completions endpoint's echo of each text, in one request or one per text."""
        if self.batch_prompts:
            return _echo(client, self.model, texts)
        return [_echo(client, self.model, [t])[0] for t in texts]

    def _mean_logprobs(
        self, replies: list[tuple[Any, int | None]], answers: list[str]
    ) -> list[float] | None:
        """Each answer's mean log-probability from the echoed prompt; None when the server
        gives none (then the fallback, for good) or its tokens do not line up with an
        answer (this question only; said once)."""
        scores = []
        for (choice, generated), answer in zip(replies, answers, strict=True):
            if _no_logprobs(choice):
                self._fall_back(
                    "its completions endpoint does not echo the prompt's token "
                    "log-probabilities (echo + logprobs)"
                )
                return None
            values = _answer_logprobs(choice, generated, answer, self.chat.end_of_turn)
            if values is None:
                if not self._misaligned:
                    self._misaligned = True
                    log.warning(
                        "rag: %s: the echoed tokens do not line up with the reply %r; "
                        "such questions are ranked by features alone",
                        self.name,
                        answer,
                    )
                return None
            scores.append(sum(values) / len(values))
        return scores


def _echo(client: Any, model: str, texts: list[str]) -> list[tuple[Any, int | None]]:
    """One completions request that echoes the prompts' log-probabilities. Each choice comes
    with how many tokens the server generated after its prompt, when that is known.

    `max_tokens=1`, not 0: llama-cpp-python reads 0 as "until the context is full"."""
    response = client.completions.create(
        model=model,
        prompt=texts if len(texts) > 1 else texts[0],
        max_tokens=1,
        temperature=0,
        echo=True,
        logprobs=1,
    )
    choices = sorted(response.choices, key=lambda c: c.index)
    if len(choices) != len(texts):
        raise GeneratorError(f"{len(choices)} completions for {len(texts)} prompts")
    usage = getattr(response, "usage", None)
    total = getattr(usage, "completion_tokens", None)
    generated: list[int | None] = [None] * len(texts)
    if total is not None and (len(texts) == 1 or total in (0, len(texts))):
        generated = [total // len(texts)] * len(texts)
    return list(zip(choices, generated, strict=True))


def _no_logprobs(choice: Any) -> bool:
    lp = getattr(choice, "logprobs", None)
    return not lp or not lp.tokens or not lp.token_logprobs


def _ascii(text: str) -> str:
    return text.encode("ascii", "ignore").decode()


def _answer_logprobs(
    choice: Any, generated: int | None, answer: str, end_of_turn: str
) -> list[float] | None:
    """The echoed log-probabilities of the answer's tokens and the end-of-turn token after
    them. Servers differ in what they echo (llama-cpp-python leaves out its BOS tokens and
    writes special tokens as ""), so the answer is found from the end: past the generated
    token(s), the end of turn, then back through tokens whose text makes up the answer.
    Pieces of a character split across tokens can read as "", so texts are compared on their
    ASCII characters."""
    if _no_logprobs(choice):
        return None
    tokens: list[str] = list(choice.logprobs.tokens)
    values: list[float | None] = list(choice.logprobs.token_logprobs)
    want = _ascii(answer)
    for gen in (generated,) if generated is not None else (1, 0):
        end = len(tokens) - gen  # tokens[end - 1] is the end of turn
        if end < 2 or tokens[end - 1] not in ("", end_of_turn):
            continue
        start, text = end - 1, ""
        while start > 0 and len(text) < len(want):
            start -= 1
            text = _ascii(tokens[start]) + text
        while start > 0 and not _ascii(tokens[start - 1]) and tokens[start - 1]:
            start -= 1  # the start of a non-ASCII character
        picked = values[start:end]
        if text == want and all(v is not None and math.isfinite(v) for v in picked):
            return [float(v) for v in picked if v is not None]
    return None
