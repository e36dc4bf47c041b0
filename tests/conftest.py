"""Shared fixtures: the real models load once per session; indexes live in tmp folders."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest

from embeddings.embedder import Embedder
from rag.models.generate import Generator
from rag.models.llama import LlamaCppGenerator
from rag.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    e = Embedder()
    e.encode(["warm up"])
    return e


@pytest.fixture(scope="session")
def generator() -> Generator:
    return LlamaCppGenerator()


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Path:
    """A read-only seed index; copy it (`fresh_index_dir`) before changing anything."""
    path = tmp_path_factory.mktemp("seed-index")
    Pipeline(path, embedder=embedder).ingest([SEEDS])
    return path


@pytest.fixture(scope="session")
def seed_pipeline(seed_index_dir: Path, embedder: Embedder, generator: Generator) -> Pipeline:
    return Pipeline(seed_index_dir, embedder=embedder, generator=generator)


@pytest.fixture
def fresh_index_dir(tmp_path: Path, seed_index_dir: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(seed_index_dir, target)
    return target


@pytest.fixture
def make_pipeline(embedder: Embedder, generator: Generator):
    def make(index_dir: Path) -> Pipeline:
        return Pipeline(index_dir, embedder=embedder, generator=generator)

    return make
