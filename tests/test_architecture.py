"""The layers the folder listing promises, checked by import-linter's contracts in
pyproject.toml: evals -> rag -> embeddings, and the answer path (reader, English knowledge,
models, pipeline) never importing the command line, the HTTP API or the UI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("import-linter is a test dependency: pip install -e '.[test]'")
    return subprocess.run(
        [exe, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent)},
    )


def test_the_layers_hold() -> None:
    run = _lint_imports()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_a_reader_module_importing_the_ui_breaks_a_contract(tmp_path: Path) -> None:
    """The contract is live: a config that forbids what the code does import is reported."""
    config = tmp_path / "contract.ini"
    config.write_text(
        "[importlinter]\nroot_packages =\n    rag\n    embeddings\n"
        "[importlinter:contract:probe]\nname = probe\ntype = forbidden\n"
        "source_modules =\n    rag.pipeline\nforbidden_modules =\n    rag.reader\n"
    )
    run = _lint_imports("--config", str(config))
    assert run.returncode != 0 and "rag.pipeline is not allowed to import rag.reader" in run.stdout
