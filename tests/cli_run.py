"""Running `rag` as a user does, from this checkout: plain pipes, or stderr on a terminal."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RAG = [sys.executable, "-m", "rag.cli"]


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **extra}


def rag(
    *args: str, cwd: Path | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RAG, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env(**(extra_env or {})),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class TtyRun:
    returncode: int | None  # None when stopped after `until` appeared
    stdout: str
    terminal: str  # everything written to stderr, which was a terminal


def rag_on_terminal(
    *args: str,
    until: str | None = None,
    cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> TtyRun:
    """Runs `rag` with stderr on a pseudo-terminal; stops it once `until` has been written."""
    master, slave = pty.openpty()
    # A fresh pty reports 0 x 0 characters, as `script` or some CI runners give: the bar
    # must show there too.
    proc = subprocess.Popen(
        [*RAG, *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=env(**(extra_env or {})),
        cwd=cwd,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    data = b""
                if not data:
                    break
                seen += data
                if until and until in seen.decode("utf-8", "replace"):
                    proc.kill()
                    proc.wait()
                    return TtyRun(None, "", seen.decode("utf-8", "replace"))
            elif proc.poll() is not None:
                break
        stdout = proc.communicate(timeout=600)[0].decode("utf-8", "replace")
        return TtyRun(proc.returncode, stdout, seen.decode("utf-8", "replace"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
