"""Other generators plug in by configuration: an OpenAI-compatible server (here llama.cpp's own
server running the packaged model, standing in for vLLM or TGI), and a clear error when the
server is down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import GeneratorError, Pipeline, Settings
from rag.llama import packaged_model_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def openai_server() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(packaged_model_path()),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_threads",
            "1",
            "--n_ctx",
            "2048",
            "--model_alias",
            "smollm2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=1).read()
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("llama.cpp server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


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
