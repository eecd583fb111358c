"""An optional answer-sentence reader: a small cross-encoder that reads a question and a sentence together.

``eval/train_reader.py`` fine-tunes MiniLM to tell which retrieved sentence answers a
question (with "none of them" competing) and exports it int8-quantised for onnxruntime.
Its folder also carries the answerer models fitted on its scores (``extractive.json``).
It is off by default: measured here it helped on held-out SQuAD articles but not on our
news gold set, and cost about 70 ms a question on two cores (README, "The reader").
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelLoadError
from .rerank import OnnxCrossEncoder

log = logging.getLogger(__name__)

READER_DIR = Path(__file__).parent / "models" / "reader"


class Reader:
    def __init__(self, folder: Path = READER_DIR) -> None:
        if not (folder / "reader.onnx").is_file():
            raise ModelLoadError(
                f"no answer reader in {folder}; train one with eval/train_reader.py --export {folder}, "
                "or set RAG_READER_CANDIDATES=0 to answer without it"
            )
        try:
            settings = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
            self._model = OnnxCrossEncoder(folder, int(settings["max_length"]), model_file="reader.onnx")
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise ModelLoadError(
                f"the answer reader in {folder} could not be loaded ({e}); reinstall the package"
            ) from None
        self.null_logit = float(settings.get("null_logit", 0.0))
        log.info("loaded the answer reader from %s", folder)

    def score(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """One logit per sentence, relative to the "no sentence answers" logit."""
        return self._model.score(question, sentences) - self.null_logit


@functools.cache
def get_reader(folder: str = str(READER_DIR)) -> Reader:
    return Reader(Path(folder))
