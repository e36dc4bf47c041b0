"""The wheel a deployment installs carries every module and data file the product needs.

The wheel is built once, with pip (`pip wheel --no-deps`, setuptools fetched into pip's
isolated build environment as for any install), from a clean copy of the source tree, and
only its file list is checked here; `.ci/wheel_check.sh` installs it into a fresh virtualenv
and runs it. Nothing is skipped: a build that cannot run fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_ROOTS = ("rag", "embeddings", "evals")
IGNORED = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*_cache", ".bench")


def _copy_source(target: Path) -> None:
    """The files a checkout would build from: tracked and new (not ignored) files, symlinks
    kept as symlinks (rag/seeds is one)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist)
        shutil.copytree(ROOT, target, symlinks=True, ignore=shutil.ignore_patterns(*IGNORED))
        return
    for name in filter(None, listed.split("\0")):
        source, dest = ROOT / name, target / name
        if not source.is_symlink() and not source.exists():
            continue  # deleted in the working tree, not yet in git
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), dest)
        else:
            shutil.copy2(source, dest)


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    src = tmp_path_factory.mktemp("src")
    dist = tmp_path_factory.mktemp("dist")
    _copy_source(src)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, f"pip wheel failed:\n{build.stdout}\n{build.stderr}"
    wheels = list(dist.glob("rag_news-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as whl:
        return set(whl.namelist())


def test_wheel_has_the_http_api(wheel_files: set[str]) -> None:
    serve = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "rag" / "serve").glob("*.py"))
    assert "rag/serve/__init__.py" in serve and "rag/serve/app.py" in serve
    missing = [name for name in serve if name not in wheel_files]
    assert not missing, f"rag/serve modules missing from the wheel: {missing}"


def test_wheel_has_the_seed_article_and_data_files(wheel_files: set[str]) -> None:
    seeds = sorted(p.name for p in (ROOT / "seeds").glob("*.txt"))
    assert seeds, "the repository's seeds/ folder has no article"
    for name in seeds:
        assert f"rag/seeds/{name}" in wheel_files, f"seed article {name} missing from the wheel"
    data = (
        "rag/ui/style.css",
        "rag/reader/ranker.json",
        "evals/seed/questions.jsonl",
        "evals/seed/dataset.json",
    )
    for name in data:
        assert name in wheel_files, f"{name} missing from the wheel"


def test_wheel_has_every_module(wheel_files: set[str]) -> None:
    """Discovery cannot forget a subpackage: every .py under the package folders ships."""
    modules = {
        p.relative_to(ROOT).as_posix()
        for top in PACKAGE_ROOTS
        for p in (ROOT / top).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert not sorted(modules - wheel_files)
    assert not [n for n in wheel_files if n.startswith(("tests/", "seeds/", ".ci/"))]


def test_seeds_dir_is_the_packaged_folder() -> None:
    """In a checkout, SEEDS_DIR resolves through rag/seeds (the symlink) to seeds/."""
    from rag.pipeline import SEEDS_DIR

    assert (ROOT / "seeds").resolve() == SEEDS_DIR
    assert (ROOT / "rag" / "seeds").is_symlink()
