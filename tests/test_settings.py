"""One settings object: every documented variable, flags over the environment, one-line
errors naming the variable, and `--print-settings` with its secrets masked."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cli_run import ROOT, rag

from rag.settings import VARS, SettingsError, load_settings

SECRETS = {
    "RAG_API_KEYS": "apikey-one,apikey-two",
    "RAG_MILVUS_TOKEN": "milvususer:milvus-pass",
    "OPENAI_API_KEY": "sk-openai-secret",
    "RAG_UI_AUTH": "alice:ui-pass",
}


def test_every_variable_reaches_the_part_that_uses_it(tmp_path: Path) -> None:
    s = load_settings(
        {
            "RAG_INDEX_DIR": str(tmp_path),
            "RAG_GENERATOR": "openai",
            "RAG_MODEL": "qwen",
            "RAG_BASE_URL": "http://127.0.0.1:9/v1",
            "RAG_EMBEDDER": "/models/minilm",
            "RAG_STORE": "Milvus",
            "RAG_MILVUS_URI": "http://milvus:19530",
            "RAG_MILVUS_TOKEN": "root:pw",
            "RAG_MILVUS_COLLECTION": "news",
            "RAG_SERVE_HOST": "0.0.0.0",
            "RAG_SERVE_PORT": "8080",
            "RAG_SERVE_WORKERS": "3",
            "RAG_API_KEYS": "a, b,",
            "RAG_SERVE_MAX_BODY_BYTES": "2000",
            "RAG_SERVE_MAX_UPLOAD_MB": "5",
            "RAG_SERVE_MAX_UPLOAD_BODY_MB": "20",
            "RAG_SERVE_MAX_MESSAGES": "7",
            "RAG_SERVE_CONCURRENCY": "2",
            "RAG_SERVE_QUEUE_SIZE": "0",
            "RAG_SERVE_TIMEOUT_S": "2.5",
            "RAG_SERVE_UI": "false",
            "RAG_THREADS": "0",  # has always meant one thread
            "RAG_MODEL_CACHE": str(tmp_path / "cache"),
            "RAG_EMBEDDER_BACKEND": "torch",
            "RAG_API_KEY": "k1",
            "OPENAI_API_KEY": "k2",  # RAG_API_KEY wins
            "RAG_CHAT_TEMPLATE": str(tmp_path / "t.jinja"),
            "RAG_SCORE_CANDIDATES": "0",
            "RAG_UI_AUTH": "alice:pw",
        }
    )
    r, st, sv, rt = s.reader, s.store, s.serve, s.runtime
    assert (r.index_dir, r.generator, r.model) == (tmp_path, "openai", "qwen")
    assert (r.base_url, r.embedder_path) == ("http://127.0.0.1:9/v1", "/models/minilm")
    assert (st.kind, st.milvus_uri, st.milvus_token, st.milvus_collection) == (
        "milvus",
        "http://milvus:19530",
        "root:pw",
        "news",
    )
    assert (sv.host, sv.port, sv.workers, sv.api_keys) == ("0.0.0.0", 8080, 3, ("a", "b"))
    assert (sv.max_body_bytes, sv.max_upload_mb, sv.max_upload_body_mb) == (2000, 5, 20)
    assert (sv.max_messages, sv.concurrency, sv.queue_size) == (7, 2, 0)
    assert (sv.timeout_s, sv.ui) == (2.5, False)
    assert sv.checked() is sv  # keys are set, so binding beyond loopback is allowed
    assert (rt.threads, rt.model_cache, rt.embedder_backend) == (1, tmp_path / "cache", "torch")
    assert (rt.api_key, rt.chat_template) == ("k1", tmp_path / "t.jinja")
    assert (rt.score_candidates, rt.ui_auth) == (False, "alice:pw")
    assert load_settings({"OPENAI_API_KEY": "k2"}).runtime.api_key == "k2"


def test_defaults_and_empty_variables_change_nothing() -> None:
    empty = load_settings({v.env: "" for v in VARS})
    assert empty == load_settings({})
    assert (empty.serve.port, empty.store.kind, empty.reader.generator) == (
        8000,
        "faiss",
        "llama-cpp",
    )
    assert set(empty.origins) == set()


def test_flags_override_the_environment_and_say_so() -> None:
    s = load_settings(
        {"RAG_SERVE_PORT": "9000", "RAG_MODEL": "env.gguf"},
        flags={"port": 9100, "model": None, "ui": False},
    )
    assert (s.serve.port, s.reader.model, s.serve.ui) == (9100, "env.gguf", False)
    assert (s.origin("RAG_SERVE_PORT"), s.origin("RAG_MODEL")) == ("flag", "env")
    assert s.origin("RAG_SERVE_UI") == "flag" and s.origin("RAG_SERVE_HOST") == "default"
    # what a uvicorn worker is given rebuilds the same values
    assert load_settings(s.to_env()).serve == s.serve
    assert load_settings(s.to_env()).reader == s.reader


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAG_SERVE_PORT": "eighty"}, "RAG_SERVE_PORT must be a whole number, not 'eighty'"),
        ({"RAG_SERVE_TIMEOUT_S": "soon"}, "RAG_SERVE_TIMEOUT_S must be a number, not 'soon'"),
        ({"RAG_SERVE_UI": "maybe"}, "RAG_SERVE_UI must be 1 or 0"),
        ({"RAG_THREADS": "many"}, "RAG_THREADS must be a whole number"),
        ({"RAG_STORE": "qdrant"}, "RAG_STORE must be one of faiss, milvus, not 'qdrant'"),
        ({"RAG_GENERATOR": "gpt"}, "RAG_GENERATOR must be one of llama-cpp, transformers"),
        ({"RAG_EMBEDDER_BACKEND": "tpu"}, "RAG_EMBEDDER_BACKEND must be one of onnx, torch"),
        ({"RAG_SCORE_CANDIDATES": "sometimes"}, "RAG_SCORE_CANDIDATES must be 1 or 0"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_cli_reports_a_bad_variable_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    monkeypatch.setenv("RAG_SERVE_WORKERS", "two")
    assert main(["serve", "--print-settings"]) == 2
    err = capsys.readouterr().err
    assert err == "error: RAG_SERVE_WORKERS must be a whole number, not 'two'\n"


def test_print_settings_shows_values_and_origins_with_secrets_masked(tmp_path: Path) -> None:
    run = rag(
        "serve",
        "--print-settings",
        "--port",
        "8124",
        "--index",
        str(tmp_path / "no-such-index"),  # printing needs no index
        extra_env={**SECRETS, "RAG_SERVE_CONCURRENCY": "2", "RAG_API_KEY": ""},
    )
    assert run.returncode == 0, run.stderr
    rows = {line.split()[0]: line for line in run.stdout.splitlines()}
    assert re.search(r"RAG_SERVE_PORT +8124 +flag --port$", rows["RAG_SERVE_PORT"])
    assert re.search(r"RAG_SERVE_CONCURRENCY +2 +env$", rows["RAG_SERVE_CONCURRENCY"])
    assert re.search(r"RAG_SERVE_QUEUE_SIZE +8 +default$", rows["RAG_SERVE_QUEUE_SIZE"])
    assert f"{tmp_path / 'no-such-index'}" in rows["RAG_INDEX_DIR"]
    assert re.search(r"\*\*\*\* \(2 keys\) +env$", rows["RAG_API_KEYS"])
    assert re.search(r"RAG_API_KEY +\*\*\*\* +env OPENAI_API_KEY$", rows["RAG_API_KEY"])
    assert "alice:****" in rows["RAG_UI_AUTH"] and "****" in rows["RAG_MILVUS_TOKEN"]
    for secret in ("apikey-one", "apikey-two", "milvus-pass", "sk-openai", "ui-pass", "milvususer"):
        assert secret not in run.stdout, secret
    assert {v.env for v in VARS} - {"OPENAI_API_KEY"} == set(rows)


def test_the_readme_tables_name_only_variables_that_are_read() -> None:
    """A variable the configuration tables (rag/README.md) document but nothing reads would
    silently do nothing."""
    readme = "\n".join(
        (ROOT / name).read_text(encoding="utf-8") for name in ("README.md", "rag/README.md")
    )
    documented = set(re.findall(r"^\|[^|\n]*`((?:RAG|OPENAI)_[A-Z_]+)`", readme, re.M))
    documented |= set(re.findall(r"^\|[^|\n]*/ `(RAG_[A-Z_]+)`", readme, re.M))
    assert documented >= {"RAG_STORE", "RAG_SERVE_PORT", "RAG_THREADS"}, documented
    assert documented <= {v.env for v in VARS}, documented - {v.env for v in VARS}


def test_rag_config_shows_what_any_command_would_run_with(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rag.cli import main

    monkeypatch.setenv("RAG_MODEL", "env.gguf")
    monkeypatch.setenv("RAG_MILVUS_TOKEN", "milvususer:milvus-pass")
    assert main(["config", "--model", "flag.gguf", "--generator", "transformers"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert re.search(r"flag\.gguf +flag --model$", rows["RAG_MODEL"])
    assert re.search(r"transformers +flag --generator$", rows["RAG_GENERATOR"])
    assert re.search(r"RAG_MILVUS_TOKEN +\*\*\*\* +env$", rows["RAG_MILVUS_TOKEN"])
