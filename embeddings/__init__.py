"""Articles in, searchable index out: loading, chunking, embedding and the FAISS store."""

import os

# Before torch loads: OpenMP threads that spin while waiting made one query embedding take
# 500 ms instead of 12 ms on a 2-core machine with one other busy process (measured).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from embeddings.types import Chunk, Document

__all__ = ["Chunk", "Document"]
