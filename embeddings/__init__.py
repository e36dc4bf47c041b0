"""Articles in, searchable index out: loading, chunking, embedding and the FAISS store."""

from embeddings.types import Chunk, Document

__all__ = ["Chunk", "Document"]
