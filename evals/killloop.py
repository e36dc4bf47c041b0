"""Crash safety at scale: SIGKILL an index writer at random moments and check what is left.

    python -m evals.killloop                # 50 kills in a temporary folder
    python -m evals.killloop --kills 5 --index /tmp/k --seed 3 --max-delay 2

A worker process (`--worker`) loops over random writes — add articles, replace one, delete
one, merge every segment into one — and prints each generation it commits (a merge keeps
the generation). Its merge policy is tiny (segments of a few chunks, merged past three), so
the kills land in segment writes, tombstone writes and merges alike. The parent kills it
with SIGKILL after a random delay, then opens the index itself and checks:

- it opens (no `IndexUnavailableError`), at the last generation the worker reported or the
  one after it (the write in flight either committed or did not);
- it is whole: vectors, chunk rows and full-text rows are the same set of ids, every article
  has its chunks and is one of the texts the worker wrote;
- no leftovers pile up: besides what the manifest names, at most the files of the one write
  or merge that was killed remain (a segment and a tombstone file, or a merge's output),
  and the next write clears them.

Exit status 0 when every kill passed; one line per failure on stderr otherwise.
"""

from __future__ import annotations

import argparse
import os
import random
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

WORDS = (
    "harbour council bridge budget river festival election storm vaccine school railway "
    "minister market strike museum airport hospital drought court treaty"
).split()


def article(doc_id: str, version: int) -> str:
    """Deterministic text, so the checker knows every text the worker may have written."""
    rng = random.Random(f"{doc_id}/{version}")
    sentences = [
        f"Story {doc_id} version {version} reports on the {rng.choice(WORDS)} "
        f"and the {rng.choice(WORDS)} near the {rng.choice(WORDS)} in sentence {i}."
        for i in range(rng.randint(3, 40))
    ]
    return " ".join(sentences)


# ---- the worker ---------------------------------------------------------------------------


def worker(index_dir: Path, seed: int) -> None:
    """Random writes forever; prints `gen N` after each commit (the parent kills it)."""
    from embeddings.embedder import Embedder
    from embeddings.index import Index
    from embeddings.types import Document

    rng = random.Random(seed)
    embedder = Embedder()
    embedder.encode(["warm up"])  # so the kill lands in writes, not in loading the model
    from embeddings.segments import MergePolicy

    index = Index(index_dir, embedder)
    store = index.store
    store.policy = MergePolicy(coalesce_below=8, max_segments=3)  # type: ignore[attr-defined]
    store.background_merge = False  # type: ignore[attr-defined]  # merges are an op below
    print(f"ready {index.generation}", flush=True)
    while True:
        docs = index.documents()
        op = rng.choice(["add", "add", "update", "delete", "merge"] if docs else ["add"])
        if op == "add":
            new = []
            for _ in range(rng.randint(1, 3)):
                doc_id = f"d{rng.randrange(10**9)}"
                new.append(Document(doc_id, doc_id, article(doc_id, 0)))
            index.ingest(new)
        elif op == "update":
            old = rng.choice(docs)
            version = int(old.text.split()[3]) + 1  # "Story dN version V ..."
            index.ingest([Document(old.doc_id, old.doc_id, article(old.doc_id, version))])
        elif op == "delete":
            index.delete(rng.choice(docs).doc_id)
        else:
            segments = store.vectors.segments  # type: ignore[attr-defined]
            store.merge([s.name for s in segments])  # type: ignore[attr-defined]
        print(f"gen {index.generation} {op}", flush=True)


# ---- the checker --------------------------------------------------------------------------


@dataclass(frozen=True)
class KillResult:
    kill: int
    delay: float
    reported: int  # last generation the worker said it committed
    opened: int  # generation the index opened at
    last_op: str
    leftovers: tuple[str, ...]
    problem: str | None


def check_index(index_dir: Path, embedder: object, reported: int) -> tuple[int, list[str]]:
    """Opens the index and returns (generation, problems)."""

    from embeddings.errors import IndexUnavailableError
    from embeddings.index import Index

    try:
        index = Index(index_dir, embedder)  # type: ignore[arg-type]
    except IndexUnavailableError as exc:
        return -1, [f"does not open: {exc}"]
    problems = []
    generation = int(index.generation or 0)
    if generation not in (reported, reported + 1):
        problems.append(f"opened at generation {generation}, worker had reported {reported}")
    db = index.db
    chunk_ids = {r[0] for r in db.execute("SELECT id FROM chunks")}
    fts_ids = {r[0] for r in db.execute("SELECT rowid FROM chunks_fts")}
    vectors = index.store.vectors  # type: ignore[attr-defined]  # the FAISS backend
    faiss_ids = {int(i) for i in vectors.ids()}
    if not chunk_ids == fts_ids == faiss_ids:
        problems.append(
            f"ids differ: {len(chunk_ids)} chunks, {len(fts_ids)} text rows, "
            f"{len(faiss_ids)} vectors"
        )
    documents = index.documents()
    if len({d.doc_id for d in documents}) != len(documents):
        problems.append("an article is listed twice (an old version still visible)")
    for doc in documents:
        n = db.execute("SELECT count(*) FROM chunks WHERE doc_id=?", (doc.doc_id,)).fetchone()[0]
        words = doc.text.split()
        if n == 0:
            problems.append(f"{doc.doc_id} has no chunks")
        elif len(words) < 4 or doc.text != article(doc.doc_id, int(words[3])):
            problems.append(f"{doc.doc_id} holds text the worker never wrote")
    index.close()
    return generation, problems


def leftovers(index_dir: Path) -> tuple[str, ...]:
    """Folders and store files the current manifest does not name."""
    import json

    path = index_dir / "manifest.json"
    manifest = json.loads(path.read_text()) if path.exists() else {}
    current = manifest.get("generation_dir")
    extra = [
        p.name
        for p in index_dir.iterdir()
        if (p.name.startswith("gen-") and p.name != current) or p.name.startswith(".tmp-gen-")
    ]
    named = {e["file"] for e in manifest.get("segments") or [{"file": "vectors.faiss"}]}
    named |= {manifest.get("deleted"), "chunks.sqlite", "chunks.sqlite-journal"}
    if current and (index_dir / current).is_dir():
        extra += [
            f"{current}/{p.name}" for p in (index_dir / current).iterdir() if p.name not in named
        ]
    return tuple(sorted(extra))


def _read_lines(proc: subprocess.Popen[bytes], until: float) -> list[str]:
    """Lines the worker printed, waiting at most until `until` (monotonic)."""
    assert proc.stdout is not None
    out: list[str] = []
    fd = proc.stdout.fileno()
    buf = b""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
    out.extend(line for line in buf.decode().splitlines() if line)
    return out


def run(
    index_dir: Path, kills: int, seed: int, max_delay: float, *, log: bool = True
) -> list[KillResult]:
    """`kills` rounds of start worker, wait, SIGKILL, check; returns one result per kill."""
    from embeddings.embedder import Embedder

    rng = random.Random(seed)
    embedder = Embedder()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    results: list[KillResult] = []
    reported = 0
    for kill in range(1, kills + 1):
        worker_seed = str(rng.randrange(10**9))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "evals.killloop",
                "--worker",
                str(index_dir),
                "--seed",
                worker_seed,
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        assert proc.stdout is not None
        first = proc.stdout.readline().decode().split()
        if not first or first[0] != "ready":
            proc.kill()
            proc.wait()
            raise RuntimeError(f"worker did not start (printed {first!r})")
        reported = int(first[1])
        delay = rng.uniform(0.0, max_delay)
        lines = _read_lines(proc, time.monotonic() + delay)
        proc.send_signal(signal.SIGKILL)
        lines += _read_lines(proc, time.monotonic() + 0.5)  # flushed before the signal landed
        proc.wait()
        proc.stdout.close()
        last_op = "none"
        for line in lines:
            parts = line.split()
            if parts[0] == "gen":
                reported, last_op = int(parts[1]), parts[2]
        generation, problems = check_index(index_dir, embedder, reported)
        extra = leftovers(index_dir) if generation >= 0 else ()
        if len(extra) > 2:  # a killed write's segment and tombstone files, at most
            problems.append(f"{len(extra)} leftover files: {', '.join(extra)}")
        result = KillResult(
            kill,
            round(delay, 3),
            reported,
            generation,
            last_op,
            extra,
            "; ".join(problems) or None,
        )
        results.append(result)
        if log:
            status = "ok" if result.problem is None else f"FAIL {result.problem}"
            print(
                f"kill {kill:3d} after {delay:5.2f}s: reported gen {reported}, opened "
                f"gen {generation}, {len(lines)} commits this round, leftovers "
                f"{list(extra)}: {status}",
                flush=True,
            )
        reported = max(reported, generation)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.killloop", description=__doc__)
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--index", type=Path, help="index folder (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-delay", type=float, default=3.0, help="seconds after start")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.seed)
        return 0
    with tempfile.TemporaryDirectory(prefix="killloop-") as tmp:
        index_dir = args.index or Path(tmp) / "index"
        started = time.monotonic()
        results = run(index_dir, args.kills, args.seed, args.max_delay)
        failed = [r for r in results if r.problem]
        committed = sum(1 for r in results if r.opened == r.reported + 1)
        print(
            f"{len(results)} kills in {time.monotonic() - started:.0f} s: {len(failed)} failed; "
            f"{committed} landed between a write's save and its report (opened at the new "
            f"generation), final generation {results[-1].opened if results else 0}"
        )
        for r in failed:
            print(f"kill {r.kill}: {r.problem}", file=sys.stderr)
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
