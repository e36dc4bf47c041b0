"""The two embedder backends give interchangeable vectors, and the default question path
never imports PyTorch (the cold-start cost it exists to avoid)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embeddings.embedder import Embedder
from embeddings.onnx_encoder import EncoderUnavailableError, onnx_model_path
from rag.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
SEED = next((ROOT / "seeds").glob("*.txt")).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return Embedder(backend="torch")


def test_onnx_and_torch_vectors_agree_and_rank_alike(
    embedder: Embedder, torch_embedder: Embedder
) -> None:
    assert embedder.backend == "onnx"  # the default with the packages installed
    sentences = [s.strip() for s in SEED.replace("\n", " ").split(". ") if len(s) > 20][:40]
    sentences.append("word " * 400)  # longer than the model's 256 word pieces: truncated alike
    a, b = embedder.encode(sentences), torch_embedder.encode(sentences)
    assert a.shape == b.shape == (len(sentences), 384)
    cosine = (a * b).sum(axis=1)
    assert cosine.min() > 0.998, cosine.min()
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    # a question embedded by one backend ranks the other backend's vectors the same way
    q = "How many vaccine doses has the US delivered abroad?"
    assert (
        np.argsort(-(b @ embedder.encode([q])[0]))[:5].tolist()
        == np.argsort(-(b @ torch_embedder.encode([q])[0]))[:5].tolist()
    )
    for text in (SEED[:2000], "Hello, world.", ""):
        assert embedder.count_tokens(text) == torch_embedder.count_tokens(text)


def test_article_chunks_take_the_int8_path_and_are_found_as_before(
    torch_embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_MODEL_CACHE", str(tmp_path))  # built here, as on a fresh machine
    embedder = Embedder(cache_dir=load_settings().runtime.model_cache)
    words = SEED.split()
    chunks = [" ".join(words[i : i + 90]) for i in range(0, len(words), 60)]
    fast, exact = embedder.encode(chunks, documents=True), torch_embedder.encode(chunks)
    assert [p.suffix for p in tmp_path.iterdir()] == [".onnx"], "one int8 copy, no leftovers"
    cosine = (fast * exact).sum(axis=1)
    assert 0.97 < cosine.min() < 0.9999, cosine.min()  # close, and not the exact path itself
    for q in (
        "How many vaccine doses has the US delivered abroad?",
        "Who is the US Secretary of State?",
        "Why did the US boycott the Beijing Olympics?",
    ):
        v = embedder.encode([q])[0]
        assert np.argsort(-(fast @ v))[:3].tolist() == np.argsort(-(exact @ v))[:3].tolist()


def test_a_damaged_int8_copy_falls_back_to_the_exact_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAG_MODEL_CACHE", str(tmp_path))
    source = onnx_model_path()
    assert source is not None
    damaged = tmp_path / f"minilm-l6-{source.stat().st_size}.int8-matmul.onnx"
    damaged.write_bytes(b"\x08\x07 not a model")
    fresh = Embedder(cache_dir=load_settings().runtime.model_cache)
    vectors = fresh.encode(["The summit took place in Jakarta."], documents=True)
    assert np.allclose(vectors, fresh.encode(["The summit took place in Jakarta."]))
    assert not damaged.exists(), "the next start makes a good copy"


def test_a_question_is_answered_without_importing_torch(
    seed_index_dir: Path, tmp_path: Path
) -> None:
    code = (
        "import sys; from rag.cli import main; "
        f"rc = main(['ask', 'How many vaccine doses has the US delivered abroad?', "
        f"'--index', {str(seed_index_dir)!r}]); "
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
        },
    )
    assert out.returncode == 0, out.stderr
    # nothing written outside the index but our model cache (the F16 copy of the generator):
    # no ONNX Runtime usage database in the home folder
    written = [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()]
    assert [p for p in written if p.parts[:3] != (".cache", "rag", "models")] == []
    assert "330 million" in out.stdout and out.stdout.strip().endswith("NO-TORCH"), out.stdout


def test_unknown_or_impossible_backend_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailableError, match="one of onnx, torch"):
        Embedder(backend="tpu")
    with pytest.raises(EncoderUnavailableError, match="packaged MiniLM only"):
        Embedder(tmp_path, backend="onnx")
