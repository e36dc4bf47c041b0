"""Running `rag` as a user does, from this checkout: plain pipes, or stderr on a terminal."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
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


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (tests serve nowhere else)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running_server(
    args: list[str], env: dict[str, str], *, ready: str = "/readyz", timeout_s: float = 180
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`rag ARGS --port P` as a user starts it, until `ready` answers 200; stopped (SIGTERM)
    on leaving. Yields the base URL and the process (its return code is set afterwards)."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [*RAG, *args, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{url}{ready}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read() if proc.stderr else "server exited")
            if time.monotonic() > deadline:
                raise AssertionError(f"server not ready in {timeout_s:.0f} s")
            time.sleep(0.1)
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(60)
