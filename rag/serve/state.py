"""What every route shares: the loaded pipeline, limits, queue, metrics and readiness."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field

from rag.errors import RagError
from rag.pipeline import Pipeline
from rag.serve.config import ServeConfig
from rag.serve.limits import GenerationQueue
from rag.serve.metrics import Metrics
from rag.ui.uploads import UploadStore


@dataclass
class ServeState:
    pipeline: Pipeline
    config: ServeConfig
    queue: GenerationQueue
    metrics: Metrics
    uploads: UploadStore  # the same folder and rules as the UI's
    ingest_lock: threading.Lock = field(default_factory=threading.Lock)
    ready: threading.Event = field(default_factory=threading.Event)
    not_ready_reason: str = "models are loading"

    def warm_up(self) -> None:
        """Loads the generator and runs one retrieval (which also fills an empty index with
        the seed articles), so /readyz turns 200 only once a question can be answered."""
        try:
            self.pipeline.warm()
            self.pipeline.retrieve("warm up", k=1)
        except RagError as exc:
            self.not_ready_reason = str(exc)
            return
        except Exception as exc:  # the reason goes to /readyz; the server stays up
            self.not_ready_reason = f"warm-up failed: {exc.__class__.__name__}: {exc}"
            return
        self.ready.set()

    def start_warm_up(self) -> None:
        with contextlib.suppress(RuntimeError):
            threading.Thread(target=self.warm_up, name="rag-warm-up", daemon=True).start()

    def index_size(self) -> tuple[int, int]:
        try:
            s = self.pipeline.stats()
        except RagError:
            return (0, 0)
        return (s.documents, s.chunks)
