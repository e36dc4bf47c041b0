"""Other generators plug in by configuration: an OpenAI-compatible server (here llama.cpp's own
server running the packaged model, standing in for vLLM or TGI), and a clear error when the
server is down. The reader's candidates are scored through the server's completions endpoint
(echoed prompt log-probabilities), or, visibly, by their features alone where it has none."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from cli_run import free_port

from evals.dataset import SEED_DATASET, load_dataset
from evals.served_reader import compare, llama_cpp_server, pick
from rag import GeneratorError, Pipeline, Settings
from rag.errors import GeneratorUnavailableError
from rag.models.generate import CandidateScorer, load_generator
from rag.models.llama import LlamaCppGenerator, packaged_model_path
from rag.models.served import ChatPrompt, OpenAIGenerator, _answer_logprobs
from rag.reader.answerers import build_messages
from rag.settings import load_settings
from rag.types import Citation


@pytest.fixture(scope="module")
def openai_server() -> Iterator[str]:
    with llama_cpp_server(packaged_model_path(), timeout_s=60, alias="smollm2") as url:
        yield url


def test_openai_compatible_server_answers_with_citations(
    openai_server: str, seed_index_dir: Path, embedder
) -> None:
    settings = Settings(generator="openai", base_url=openai_server, model="smollm2")
    pipeline = Pipeline(seed_index_dir, settings=settings, embedder=embedder)
    # the grounded answerer is the one that lets the served model write the answer
    q = "How many vaccine doses has the US delivered abroad?"
    streamed = list(pipeline.stream(q, answerer="grounded"))
    answer = streamed[-1]
    assert "smollm2@" in pipeline.generator.name
    assert len(streamed) > 2, "tokens stream from the server"
    assert not answer.refused and "330 million" in answer.text
    assert answer.citations and "330 million" in answer.citations[0].text


def test_unreachable_server_is_a_clear_error(seed_index_dir: Path, embedder) -> None:
    settings = Settings(generator="openai", base_url=f"http://127.0.0.1:{free_port()}/v1")
    pipeline = Pipeline(seed_index_dir, settings=settings, embedder=embedder)
    with pytest.raises(GeneratorError, match=r"generation server .* failed"):
        pipeline.ask("How many vaccine doses has the US delivered abroad?", answerer="grounded")


def test_missing_local_model_is_a_clear_error(seed_index_dir: Path, embedder, tmp_path) -> None:
    settings = Settings(generator="llama-cpp", model=str(tmp_path / "nope.gguf"))
    with pytest.raises(GeneratorError, match="model file not found"):
        Pipeline(seed_index_dir, settings=settings, embedder=embedder).generator  # noqa: B018


# --- the reader's candidate scoring through the completions endpoint -----------------------

SENTENCES = [
    "Secretary of State Antony Blinken said the US had delivered 330 million doses abroad.",
    "The summit took place in São Paulo on Tuesday.",
]


def reader_messages(question: str) -> list[dict[str, str]]:
    context = [Citation(n, "d", "t", None, s, 0, len(s), 1.0) for n, s in enumerate(SENTENCES, 1)]
    return build_messages(question, context)


def test_the_prompt_is_rendered_as_llama_cpp_renders_the_models_template(generator) -> None:
    """The completions endpoint takes text: ChatML written out must be the very prompt the
    server's chat template (SmolLM2's own, as llama.cpp renders it) makes of the messages."""
    chat = ChatPrompt()
    for question in ("How many doses?", "Where was the summit?"):
        assert chat.render(reader_messages(question)) == generator.prompt(reader_messages(question))
    assert chat.end_of_turn == "<|im_end|>"


def test_served_scores_are_the_models_log_probabilities(openai_server: str) -> None:
    """Each candidate's score over HTTP is the mean log-probability of its tokens and the
    end-of-turn after the prompt, exactly as llama.cpp computes it reading prompt and answer
    as one sequence (the same GGUF file, one thread). llama-cpp-python's server takes one
    prompt per request, so the probe settles on one request per candidate."""
    from llama_cpp import Llama

    served = OpenAIGenerator(openai_server, "smollm2")
    assert isinstance(served, CandidateScorer) and served.score_fallback is None
    assert not served.batch_prompts
    messages = reader_messages("Where did the summit take place?")
    answers = ["São Paulo", "330 million doses"]  # "ã" is two UTF-8 bytes
    scores = served.score(messages, answers)

    llm = Llama(str(packaged_model_path()), n_ctx=2048, logits_all=True, n_threads=1, verbose=False)
    prompt = ChatPrompt().render(messages)
    n_prompt = len(llm.tokenize(prompt.encode(), add_bos=False, special=True))
    for answer, score in zip(answers, scores, strict=True):
        tokens = llm.tokenize(f"{prompt}{answer}<|im_end|>".encode(), add_bos=False, special=True)
        llm.reset()
        llm.eval(tokens)
        logprobs = Llama.logits_to_logprobs(np.array(llm.scores[: len(tokens)]))
        expected = np.mean([logprobs[i - 1, tokens[i]] for i in range(n_prompt, len(tokens))])
        assert score == pytest.approx(float(expected), abs=1e-3), answer
    assert served.score(messages, []) == []


def test_reader_over_http_answers_as_in_process(openai_server: str, seed_index_dir: Path, embedder):
    """The reader's answers with candidates scored by llama-cpp-python's server equal those
    scored in process, on every 32nd seed question (a01, a25, u17; `python -m
    evals.served_reader` runs and times any share of the 65: README). Only some, because
    llama-cpp-python's server sorts the whole 49k-token vocabulary in Python for every
    echoed prompt token (about 75 ms a token here): 30-75 s a question on this machine.

    Both sides read the same file (the packaged Q4_1, which this module's server serves;
    in process it runs as is, without the F16 copy). The scores are not bit-equal: in process,
    the candidates are decoded together as sequences branching off one cached prompt, over
    HTTP each is read after the prompt as one sequence; llama.cpp's batched kernels round
    differently (up to 0.12 nats on the mean here; the test above shows the HTTP side equals
    a one-sequence read). A near-tie between two candidates could therefore rank differently;
    on these questions none does."""
    questions = pick(load_dataset(SEED_DATASET).questions, every=32)
    local = Pipeline(
        seed_index_dir, embedder=embedder, generator=LlamaCppGenerator(packaged_model_path())
    )
    settings = Settings(generator="openai", base_url=openai_server, model="smollm2")
    served = Pipeline(seed_index_dir, settings=settings, embedder=embedder)
    rows = compare(local, served, questions)
    assert [r.id for r in rows] == ["seed-a01", "seed-a25", "seed-u17"]
    # the model scored wherever it did in process (not where no candidate was found)
    assert [r.served_score_ms is None for r in rows] == [r.local_score_ms is None for r in rows]
    assert rows[0].served_score_ms is not None
    assert [r.served for r in rows] == [r.local for r in rows]
    assert all(r.equal for r in rows)


class _NoLogprobs(http.server.BaseHTTPRequestHandler):
    """A completions endpoint that answers but ignores `echo` and `logprobs`."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices = [
            {"index": i, "text": "Yes", "logprobs": None, "finish_reason": "length"}
            for i in range(len(prompts))
        ]
        reply = {
            "id": "x",
            "object": "text_completion",
            "created": 0,
            "model": body["model"],
            "choices": choices,
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def no_logprobs_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoLogprobs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_server_without_prompt_logprobs_ranks_by_features_visibly(
    no_logprobs_server: str, seed_index_dir: Path, embedder, caplog: pytest.LogCaptureFixture
) -> None:
    """The probe finds no log-probabilities: one warning, the reason on the generator, no
    scoring (the reader never asks), and the answers carry no "score" stage."""
    settings = Settings(generator="openai", base_url=no_logprobs_server, model="m")
    pipeline = Pipeline(seed_index_dir, settings=settings, embedder=embedder)
    with caplog.at_level(logging.WARNING, logger="rag.models.generate"):
        generator = pipeline.generator
        answers = [pipeline.ask("How many vaccine doses has the US delivered abroad?")]
        answers.append(pipeline.ask("To how many countries has the US delivered vaccine doses?"))
    assert not isinstance(generator, CandidateScorer)
    assert "log-probabilities" in (getattr(generator, "score_fallback", None) or "")
    warnings = [r for r in caplog.records if "features alone" in r.getMessage()]
    assert len(warnings) == 1, "said once"
    assert all("score" not in a.timings for a in answers)
    assert "330 million" in answers[0].text, "the features still find the answer"


def test_a_server_down_at_start_is_probed_when_the_reader_needs_it(
    seed_index_dir: Path, embedder
) -> None:
    """Nothing is decided while the server cannot be reached: the reader's question fails
    like any other request to a down server (503 in the HTTP API)."""
    settings = Settings(generator="openai", base_url=f"http://127.0.0.1:{free_port()}/v1")
    pipeline = Pipeline(seed_index_dir, settings=settings, embedder=embedder)
    assert isinstance(pipeline.generator, CandidateScorer)
    with pytest.raises(GeneratorUnavailableError, match=r"generation server .* unreachable"):
        pipeline.ask("How many vaccine doses has the US delivered abroad?")


LLAMA3_TEMPLATE = (
    "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def test_the_served_models_template_comes_from_rag_chat_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another model's template (here Llama 3's shape) is read from the file
    RAG_CHAT_TEMPLATE names; RAG_SCORE_CANDIDATES=0 turns scoring off without a request."""
    template = tmp_path / "llama3.jinja"
    template.write_text(LLAMA3_TEMPLATE)
    monkeypatch.setenv("RAG_CHAT_TEMPLATE", str(template))
    monkeypatch.setenv("RAG_SCORE_CANDIDATES", "0")
    options = load_settings().runtime.generator_options()
    generator = load_generator("openai", "m", f"http://127.0.0.1:{free_port()}/v1", **options)
    assert isinstance(generator, OpenAIGenerator)
    assert generator.chat.end_of_turn == "<|eot_id|>"
    assert generator.chat.render([{"role": "user", "content": "Hi"}]).endswith(
        "Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert not isinstance(generator, CandidateScorer)
    assert generator.score_fallback == "candidate scoring turned off"
    monkeypatch.setenv("RAG_CHAT_TEMPLATE", str(tmp_path / "missing.jinja"))
    options = load_settings().runtime.generator_options()
    with pytest.raises(GeneratorError, match="cannot read the chat template"):
        load_generator("openai", "m", "http://127.0.0.1:1/v1", **options)


def test_a_template_that_does_not_end_where_the_reply_begins_is_refused() -> None:
    with pytest.raises(GeneratorError, match="where the reply begins"):
        ChatPrompt("{% for m in messages %}{{ m['content'] }}{% endfor %}END")
    with pytest.raises(GeneratorError, match="cannot use the chat template"):
        ChatPrompt("{{ raise_exception('no system messages') }}")


def _choice(tokens: list[str], logprobs: list[float | None]) -> SimpleNamespace:
    return SimpleNamespace(logprobs=SimpleNamespace(tokens=tokens, token_logprobs=logprobs))


def test_the_answers_tokens_are_found_in_either_servers_echo() -> None:
    """Echoes differ: llama-cpp-python writes special tokens as "" (pieces of a character
    split across tokens too) and leaves a generated end-of-text out; a server may also write
    special tokens out and count the generated token (the first shape below, as expected
    from vLLM, which is not run here). The answer and the end of turn are found in each,
    and an echo that does not hold the answer is not scored."""
    end = "<|im_end|>"
    prompt = ["<|im_start|>", "user", "\n", "Hi", "\n", "assistant", "\n"]
    prompt_lp: list[float | None] = [None, -1, -1, -1, -1, -1, -1]
    vllm = _choice([*prompt, "330", " million", end, "\n"], [*prompt_lp, -2.0, -0.5, -3.0, -0.1])
    assert _answer_logprobs(vllm, 1, "330 million", end) == [-2.0, -0.5, -3.0]
    assert _answer_logprobs(vllm, None, "330 million", end) == [-2.0, -0.5, -3.0]
    llama = _choice([*prompt, "S", "", "", "o", " Paulo", ""], [*prompt_lp, -4, -1, -1, -2, -1, -5])
    assert _answer_logprobs(llama, 0, "São Paulo", end) == [-4, -1, -1, -2, -1, -5]
    assert _answer_logprobs(llama, None, "São Paulo", end) == [-4, -1, -1, -2, -1, -5]
    assert _answer_logprobs(vllm, 1, "330 billion", end) is None
    assert _answer_logprobs(_choice([], []), 1, "330 million", end) is None
