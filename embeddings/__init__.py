"""Articles in, searchable index out: loading, chunking, embedding and the FAISS store."""

import os

# Before torch loads: OpenMP threads that spin while waiting made one query embedding take
# 500 ms instead of 12 ms on a 2-core machine with one other busy process (measured).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from embeddings.types import Chunk, Document


def usable_cores() -> int:
    """The cores this process may run on (a container's cpuset, `taskset`), not the host's:
    thread pools sized to the host's cores fight over the few they are given."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 2


__all__ = ["Chunk", "Document", "usable_cores"]
