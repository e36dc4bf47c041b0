"""`rag serve`: every endpoint through FastAPI's test client, and one real uvicorn process
driven by the official `openai` client, as a user of the API would."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cli_run import free_port, running_server
from fastapi.testclient import TestClient

from rag.models.served import OpenAIGenerator
from rag.pipeline import Pipeline
from rag.serve import ServeConfig, create_app

ROOT = Path(__file__).resolve().parent.parent
VACCINE_Q = "How many vaccine doses has the US delivered abroad?"
KEY = "test-key-123"


def _client(pipeline: Pipeline, **config: object) -> TestClient:
    config.setdefault("ui", False)
    return TestClient(create_app(pipeline, ServeConfig(**config)))  # type: ignore[arg-type]


def _wait_ready(client: TestClient) -> None:
    for _ in range(600):
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.1)
    raise AssertionError(client.get("/readyz").json())


@pytest.fixture(scope="module")
def client(seed_pipeline: Pipeline) -> Iterator[TestClient]:
    with _client(seed_pipeline) as c:
        _wait_ready(c)
        yield c


@pytest.fixture
def writable(fresh_index_dir: Path, make_pipeline) -> Iterator[TestClient]:
    with _client(make_pipeline(fresh_index_dir)) as c:
        yield c


def _error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type"}
    assert "Traceback" not in body["error"]["message"]
    return str(body["error"]["message"])


# ---- questions -------------------------------------------------------------------------------


def test_ask_answers_with_citations(client: TestClient, seed_pipeline: Pipeline) -> None:
    r = client.post("/v1/ask", json={"question": VACCINE_Q})
    assert r.status_code == 200
    body = r.json()
    assert "330 million" in body["text"] and not body["refused"]
    assert body["citations"] and "330 million" in body["citations"][0]["text"]
    assert body["text"] == seed_pipeline.ask(VACCINE_Q).text


def test_ask_follow_up_uses_history(client: TestClient) -> None:
    first = client.post("/v1/ask", json={"question": VACCINE_Q}).json()
    r = client.post(
        "/v1/ask",
        json={"question": "And to how many countries?", "history": [[VACCINE_Q, first["text"]]]},
    )
    assert r.status_code == 200 and "110" in r.json()["text"]


def test_ask_streams_events_then_the_final_answer(client: TestClient) -> None:
    with client.stream("POST", "/v1/ask?stream=true", json={"question": VACCINE_Q}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = "".join(r.iter_text())
    events = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1][6:]))
        for block in raw.strip().split("\n\n")
    ]
    assert events[-1][0] == "answer" and "330 million" in events[-1][1]["text"]
    assert all(name == "delta" for name, _ in events[:-1])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"question": ""}, "question is empty"),
        ({"question": "x" * 1001}, "the limit is 1000"),
        ({}, "question: Field required"),
        ({"question": VACCINE_Q, "k": 0}, "k must be an integer between 1 and 50"),
        ({"question": VACCINE_Q, "as_of": "soon"}, "as_of must be a YYYY-MM-DD date"),
        ({"question": VACCINE_Q, "filters": {"colour": "red"}}, "unknown filter keys: colour"),
        ({"question": VACCINE_Q, "history": [["only one"]]}, "history must be"),
        ({"question": VACCINE_Q, "topk": 3}, "topk: Extra inputs are not permitted"),
    ],
)
def test_bad_questions_get_one_line_400(client: TestClient, body: dict, message: str) -> None:
    assert message in _error(client.post("/v1/ask", json=body), 400)


def test_bad_json_is_400_not_a_traceback(client: TestClient) -> None:
    r = client.post("/v1/ask", content=b"{question:", headers={"content-type": "application/json"})
    assert _error(r, 400) == "request body is not valid JSON"


def test_unknown_route_and_method_are_json_errors(client: TestClient) -> None:
    assert _error(client.get("/v1/nothing"), 404) == "Not Found"
    _error(client.get("/v1/ask"), 405)


def test_oversized_bodies_are_refused_with_413(seed_pipeline: Pipeline) -> None:
    with _client(seed_pipeline, max_body_bytes=2000) as c:
        big = {"question": VACCINE_Q, "history": [["q" * 900, "a" * 900]] * 2}
        assert "larger than 2000 bytes" in _error(c.post("/v1/ask", json=big), 413)

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield json.dumps(big).encode()

        r = c.post("/v1/ask", content=chunked(), headers={"content-type": "application/json"})
        _error(r, 413)


# ---- OpenAI-compatible chat ------------------------------------------------------------------


def test_chat_completion_has_the_openai_shape(client: TestClient) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={"model": "rag", "messages": [{"role": "user", "content": VACCINE_Q}]},
    )
    assert r.status_code == 200
    body = r.json()
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant" and "330 million" in message["content"]
    n = body["citations"][0]["n"]
    assert f"[{n}]" in message["content"]
    assert body["object"] == "chat.completion" and body["choices"][0]["finish_reason"] == "stop"


def test_chat_earlier_turns_are_the_history(client: TestClient) -> None:
    messages = [
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": VACCINE_Q},
        {"role": "assistant", "content": "330 million doses"},
        {"role": "user", "content": "And to how many countries?"},
    ]
    r = client.post("/v1/chat/completions", json={"messages": messages})
    assert "110" in r.json()["choices"][0]["message"]["content"]
    assert "vaccine" in r.json()["answer"]["question"]


def test_chat_errors(client: TestClient) -> None:
    assistant_last = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}]
    r = client.post("/v1/chat/completions", json={"messages": assistant_last})
    assert _error(r, 400) == "the last message must be the user's question"
    r = client.post("/v1/chat/completions", json={"messages": []})
    assert "messages" in _error(r, 400)
    many = [{"role": "user", "content": "q"}] * 51
    assert "the limit is 50" in _error(
        client.post("/v1/chat/completions", json={"messages": many}), 400
    )


# ---- auth ------------------------------------------------------------------------------------


def test_api_keys_are_required_when_configured(seed_pipeline: Pipeline) -> None:
    with _client(seed_pipeline, api_keys=(KEY, "other")) as c:
        assert "missing API key" in _error(c.get("/v1/stats"), 401)
        wrong = {"Authorization": "Bearer nope"}
        assert _error(c.get("/v1/stats", headers=wrong), 401) == "invalid API key"
        assert _error(c.get("/metrics"), 401)
        ok = {"Authorization": f"Bearer {KEY}"}
        assert c.get("/v1/stats", headers=ok).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes stay open for load balancers


def test_binding_beyond_loopback_without_keys_is_refused(monkeypatch, capsys) -> None:
    from rag.cli import main

    monkeypatch.delenv("RAG_API_KEYS", raising=False)
    assert main(["serve", "--host", "0.0.0.0", "--port", "8123"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "set RAG_API_KEYS" in err
    with pytest.raises(ValueError, match="RAG_API_KEYS"):
        ServeConfig(host="10.1.2.3").checked()
    assert ServeConfig(host="0.0.0.0", api_keys=(KEY,)).checked().host == "0.0.0.0"


# ---- queue, timeouts, generator down ---------------------------------------------------------


class BlockingModel:
    """A stand-in model that holds its slot until released, to fill the queue."""

    name = "blocking"

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def stream(self, messages: list, *, max_tokens: int, stop: list) -> Iterator[str]:
        self.started.set()
        self.release.wait(30)
        yield "330 million doses [1]"


def test_a_full_queue_answers_429_with_retry_after(seed_index_dir: Path, embedder) -> None:
    model = BlockingModel()
    pipeline = Pipeline(seed_index_dir, embedder=embedder, generator=model)
    with _client(pipeline, concurrency=1, queue_size=1) as c:
        body = {"question": VACCINE_Q, "answerer": "grounded"}
        results: list[int] = []
        threads = [
            threading.Thread(
                target=lambda: results.append(c.post("/v1/ask", json=body).status_code)
            )
            for _ in range(2)
        ]
        threads[0].start()
        assert model.started.wait(30)
        threads[1].start()  # waits in the queue's one place
        for _ in range(300):
            if c.get("/v1/stats").json()["queue"]["waiting"] == 1:
                break
            time.sleep(0.05)
        r = c.post("/v1/ask", json=body)
        assert "too many questions" in _error(r, 429)
        assert int(r.headers["Retry-After"]) >= 1
        model.release.set()
        for t in threads:
            t.join(30)
        assert results == [200, 200]
        assert c.post("/v1/ask", json=body).status_code == 200  # the queue drained
        metrics = c.get("/metrics").text
        assert 'rag_requests_total{route="/v1/ask",status="429"} 1.0' in metrics


def test_questions_that_would_time_out_waiting_get_429_at_once() -> None:
    import asyncio

    from rag.serve.errors import ApiError
    from rag.serve.limits import GenerationQueue

    queue = GenerationQueue(concurrency=1, queue_size=8, timeout_s=1.0)
    queue._avg_s = 0.4  # as if answers took 0.4 s: 1.5 x (one wait + one answer) > 1 s
    release = threading.Event()

    async def scenario() -> ApiError:
        running = asyncio.ensure_future(queue.run(lambda: release.wait(5)))
        await asyncio.sleep(0.1)
        try:
            await queue.run(lambda: True)
        except ApiError as exc:
            return exc
        finally:
            release.set()
            await running
        raise AssertionError("admitted a question that could only time out")

    exc = asyncio.run(scenario())
    assert exc.status == 429 and exc.headers == {"Retry-After": "1"}
    queue.shutdown()


def test_a_slow_answer_times_out_with_504(seed_index_dir: Path, embedder) -> None:
    model = BlockingModel()
    pipeline = Pipeline(seed_index_dir, embedder=embedder, generator=model)
    with _client(pipeline, timeout_s=0.5) as c:
        r = c.post("/v1/ask", json={"question": VACCINE_Q, "answerer": "grounded"})
        assert "no answer within 0.5 s" in _error(r, 504)
        model.release.set()


def test_generation_server_down_is_503_with_the_reason(seed_index_dir: Path, embedder) -> None:
    down = OpenAIGenerator(f"http://127.0.0.1:{free_port()}/v1", "m", max_retries=1)
    pipeline = Pipeline(seed_index_dir, embedder=embedder, generator=down)
    with _client(pipeline) as c:
        r = c.post("/v1/ask", json={"question": VACCINE_Q, "answerer": "grounded"})
        message = _error(r, 503)
        assert "failed: unreachable (2 tries)" in message and r.json()["error"]["type"] == (
            "generator_unavailable"
        )


# ---- documents, stats, probes ----------------------------------------------------------------

LIBRARY = (
    "The town of Brackenford opened the Willowmere Library on 3 March 2024, with 12,500 books. "
    "Residents queued from early morning."
)


def test_documents_add_list_get_delete(writable: TestClient) -> None:
    before = writable.get("/v1/stats").json()["documents"]
    r = writable.post(
        "/v1/documents",
        json={"documents": [{"text": LIBRARY, "title": "Library opens", "date": "2024-03-03"}]},
    )
    assert r.status_code == 200 and len(r.json()["added"]) == 1
    doc_id = r.json()["added"][0]
    assert writable.get("/v1/stats").json()["documents"] == before + 1
    listed = writable.get("/v1/documents").json()
    assert {"doc_id": doc_id, "title": "Library opens", "date": "2024-03-03"}.items() <= next(
        d for d in listed["documents"] if d["doc_id"] == doc_id
    ).items()
    assert writable.get(f"/v1/documents/{doc_id}").json()["text"] == LIBRARY
    q = {"question": "How many books did the Willowmere Library open with?"}
    assert writable.post("/v1/ask", json=q).json()["text"] == "12,500"
    assert writable.delete(f"/v1/documents/{doc_id}").json() == {"deleted": doc_id}
    assert "no article with doc_id" in _error(writable.delete(f"/v1/documents/{doc_id}"), 404)
    assert _error(writable.get(f"/v1/documents/{doc_id}"), 404)
    assert writable.post("/v1/ask", json=q).json()["refused"]


def test_uploaded_files_are_checked_like_the_ui(
    writable: TestClient, fresh_index_dir: Path
) -> None:
    files = [
        ("files", ("../../lib rary.txt", LIBRARY.encode(), "text/plain")),
        ("files", ("tool.exe", b"MZ", "application/octet-stream")),
    ]
    r = writable.post("/v1/documents", files=files)
    assert r.status_code == 200, r.text
    report = r.json()
    assert len(report["added"]) == 1
    assert report["skipped"] == [
        {
            "file": "tool.exe",
            "reason": "type .exe not accepted; use .htm, .html, .json, .jsonl, .md, .txt",
        }
    ]
    assert (fresh_index_dir / "uploads" / "lib_rary.txt").read_text() == LIBRARY
    writable.delete(f"/v1/documents/{report['added'][0]}")
    assert not (fresh_index_dir / "uploads" / "lib_rary.txt").exists()
    only_bad = writable.post("/v1/documents", files=[files[1]])
    assert "nothing ingested: tool.exe" in _error(only_bad, 400)


def test_bad_documents_requests(writable: TestClient) -> None:
    assert "documents: " in _error(writable.post("/v1/documents", json={"documents": []}), 400)
    r = writable.post("/v1/documents", json={"documents": [{"text": "  "}]})
    assert _error(r, 400) == "documents[0] has no text"
    r = writable.post("/v1/documents", content=b"hi", headers={"content-type": "text/plain"})
    assert "application/json" in _error(r, 415)
    r = writable.post("/v1/documents", content=b"[", headers={"content-type": "application/json"})
    assert _error(r, 400) == "request body is not valid JSON"


def test_probes_stats_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["chunks"] > 0
    stats = client.get("/v1/stats").json()
    assert stats["documents"] > 0 and stats["queue"] == {"running": 0, "waiting": 0}
    client.post("/v1/ask", json={"question": VACCINE_Q})
    text = client.get("/metrics").text
    assert 'rag_requests_total{route="/v1/ask",status="200"}' in text
    assert 'rag_stage_seconds_count{stage="retrieve"}' in text
    assert f"rag_index_chunks {float(stats['chunks'])}" in text
    assert "rag_queue_waiting 0.0" in text
    assert client.get("/openapi.json").json()["paths"]["/v1/ask"]["post"]


def test_the_ui_is_mounted_at_ui(seed_pipeline: Pipeline) -> None:
    with _client(seed_pipeline, ui=True) as c:
        r = c.get("/ui/")
        assert r.status_code == 200 and "<html" in r.text.lower()
        assert c.get("/healthz").status_code == 200


# ---- one real server -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, seed_index_dir: Path) -> Iterator[str]:
    import shutil

    index = tmp_path_factory.mktemp("served") / "index"
    shutil.copytree(seed_index_dir, index)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAG_API_KEYS": KEY, "HF_HUB_OFFLINE": "1"}
    with running_server(["serve", "--index", str(index)], env) as (url, _):
        yield url


def test_the_openai_client_talks_to_a_real_server(server: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)
    messages = [{"role": "user", "content": VACCINE_Q}]
    reply = client.chat.completions.create(model="rag", messages=messages)  # type: ignore[arg-type]
    content = reply.choices[0].message.content or ""
    assert "330 million" in content
    citations = (reply.model_extra or {})["citations"]
    assert f"[{citations[0]['n']}]" in content and "330 million" in citations[0]["text"]

    stream = client.chat.completions.create(model="rag", messages=messages, stream=True)  # type: ignore[arg-type]
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert streamed == content

    with pytest.raises(openai.BadRequestError, match="question is empty"):
        client.chat.completions.create(model="rag", messages=[{"role": "user", "content": " "}])
    assert [m.id for m in client.models.list()] == ["rag"]
    with pytest.raises(openai.AuthenticationError, match="invalid API key"):
        openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0).models.list()


def test_the_real_server_serves_rest_and_ui(server: str) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    r = httpx.post(f"{server}/v1/ask", json={"question": VACCINE_Q}, headers=auth, timeout=120)
    assert r.status_code == 200 and "330 million" in r.json()["text"]
    assert httpx.get(f"{server}/ui/", timeout=30).status_code == 200
    assert httpx.get(f"{server}/docs", timeout=30).status_code == 200


# ---- issue 19: ids, bad requests, a mistyped RAG_INDEX_DIR -----------------------------------


def test_doc_ids_are_checked_wherever_they_enter(writable: TestClient) -> None:
    for bad in ("../../etc/passwd", "   ", "a b", "-starts-with-dash", "x" * 129):
        r = writable.post("/v1/documents", json={"documents": [{"text": LIBRARY, "doc_id": bad}]})
        assert "is not valid: use 1-128 letters, digits" in _error(r, 400), bad
    for path in ("..%2F..%2Fetc%2Fpasswd", "a%20b", "a/b"):
        assert "is not valid" in _error(writable.get(f"/v1/documents/{path}"), 400), path
        assert "is not valid" in _error(writable.delete(f"/v1/documents/{path}"), 400), path
    # an id of the documented pattern goes in, and can be read and deleted
    ok = "willowmere:library_2024.v1"
    r = writable.post("/v1/documents", json={"documents": [{"text": LIBRARY, "doc_id": ok}]})
    assert r.json()["added"] == [ok]
    assert writable.get(f"/v1/documents/{ok}").json()["doc_id"] == ok
    assert writable.delete(f"/v1/documents/{ok}").json() == {"deleted": ok}
    # a blank id means "derive one from the text"
    r = writable.post("/v1/documents", json={"documents": [{"text": LIBRARY, "doc_id": ""}]})
    assert re.fullmatch(r"[0-9a-f]{16}", r.json()["added"][0])
    # ids in uploaded files go through the same check
    files = [("files", ("odd.md", b"---\ndoc_id: ../x\n---\nThe pier reopened.", "text/plain"))]
    r = writable.post("/v1/documents", files=files)
    assert "odd.md: doc_id '../x' is not valid" in _error(r, 400)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"filters": {"sources": "CNN"}}, 400, "filters.sources must be a list of source names"),
        ({"filters": {"sources": [3]}}, 400, "filters.sources must be a list"),
        (
            {"filters": {"date_from": "2022-02-01", "date_to": "2022-01-01"}},
            400,
            "filters.date_from (2022-02-01) is after filters.date_to (2022-01-01)",
        ),
        ({"filters": {"date_from": "last week"}}, 400, "filters.date_from must be a YYYY-MM-DD"),
        ({"k": True}, 400, "k: Input should be a valid integer"),
        ({"k": "3"}, 400, "k: Input should be a valid integer"),
    ],
)
def test_bad_asks_are_rejected_not_answered(
    client: TestClient, body: dict, status: int, message: str
) -> None:
    r = client.post("/v1/ask", json={"question": VACCINE_Q, **body})
    assert message in _error(r, status)
    chat = {"messages": [{"role": "user", "content": VACCINE_Q}], **body}
    assert message in _error(client.post("/v1/chat/completions", json=chat), status)


def test_json_sent_as_text_is_415(client: TestClient) -> None:
    raw = json.dumps({"question": VACCINE_Q}).encode()
    for route in ("/v1/ask", "/v1/chat/completions"):
        for ctype in ("text/plain", None):
            headers = {"content-type": ctype} if ctype else {}
            r = client.post(route, content=raw, headers=headers)
            assert "send the body as application/json" in _error(r, 415), (route, ctype)
    ok = client.post("/v1/ask", content=raw, headers={"content-type": "application/json"})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"model": "gpt-4o"}, 404, "model 'gpt-4o' does not exist; the only model is 'rag'"),
        ({"n": 3}, 400, "n is 3; only n=1 is supported"),
        (
            {"messages": [{"role": "wizard", "content": VACCINE_Q}]},
            400,
            "messages.0.role: Input should be 'system', 'developer', 'user' or 'assistant'",
        ),
    ],
)
def test_chat_requests_it_cannot_honour_are_rejected(
    client: TestClient, change: dict, status: int, message: str
) -> None:
    body = {"model": "rag", "messages": [{"role": "user", "content": VACCINE_Q}], **change}
    assert message in _error(client.post("/v1/chat/completions", json=body), status)


def test_source_filters_ignore_case(writable: TestClient) -> None:
    doc = {"text": LIBRARY, "title": "Library opens", "source": "Harbour Times"}
    assert writable.post("/v1/documents", json={"documents": [doc]}).status_code == 200
    q = "How many books did the Willowmere Library open with?"
    for sources in (["harbour times"], ["HARBOUR TIMES "], ["Harbour Times"]):
        r = writable.post("/v1/ask", json={"question": q, "filters": {"sources": sources}})
        assert r.json()["text"] == "12,500", (sources, r.json())
    other = writable.post("/v1/ask", json={"question": q, "filters": {"sources": ["CNN"]}})
    assert other.json()["refused"] and "No article in the chosen" in other.json()["text"]


@pytest.mark.parametrize("command", ["serve", "ui"])
def test_a_mistyped_rag_index_dir_is_not_a_new_index(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from rag import pipeline as pipeline_module
    from rag.cli import main
    from rag.errors import RagError

    def no_pipeline(*args: object, **kwargs: object) -> None:
        raise RagError("a pipeline was built")  # instead of serving a new, seed-only index

    monkeypatch.setattr(pipeline_module.Pipeline, "__init__", no_pipeline)
    typo = tmp_path / "idx-typo"
    monkeypatch.setenv("RAG_INDEX_DIR", str(typo))
    assert main([command, "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"no index at {typo} (RAG_INDEX_DIR)" in err, err
    assert "rag ingest" in err and not typo.exists()


def test_uploading_a_file_again_updates_its_articles(
    writable: TestClient, fresh_index_dir: Path
) -> None:
    def upload(text: bytes) -> httpx.Response:
        return writable.post("/v1/documents", files=[("files", ("harbour.md", text, "text/plain"))])

    first = upload(b"# Harbour reopens\n\nThe Quenby harbour reopened after 14 months.").json()
    second = upload(b"# Harbour reopens\n\nThe Quenby harbour reopened after 16 months.").json()
    assert (len(second["added"]), len(second["updated"])) == (0, 1), second
    listed = writable.get("/v1/documents").json()["documents"]
    assert [d["title"] for d in listed].count("Harbour reopens") == 1
    assert _error(writable.get(f"/v1/documents/{first['added'][0]}"), 404)
    (doc_id,) = second["updated"]
    assert "16 months" in writable.get(f"/v1/documents/{doc_id}").json()["text"]
    assert [p.name for p in (fresh_index_dir / "uploads").glob("harbour*")] == ["harbour.md"]
    # a new version that cannot be read leaves the old one in place
    broken = upload(b"\xff\xfe not text")
    assert "harbour.md: not UTF-8" in _error(broken, 400)
    assert "the earlier version stays" in broken.json()["error"]["message"]
    assert "16 months" in writable.get(f"/v1/documents/{doc_id}").json()["text"]
    assert "16 months" in (fresh_index_dir / "uploads" / "harbour.md").read_text()
