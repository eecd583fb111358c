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
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelLoadError

log = logging.getLogger(__name__)

READER_DIR = Path(__file__).parent / "models" / "reader"


class Reader:
    def __init__(self, folder: Path = READER_DIR) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if not (folder / "reader.onnx").is_file():
            raise ModelLoadError(
                f"no answer reader in {folder}; train one with eval/train_reader.py --export {folder}, "
                "or set RAG_READER_CANDIDATES=0 to answer without it"
            )
        try:
            settings = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
            self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            options = ort.SessionOptions()
            options.intra_op_num_threads = min(4, os.cpu_count() or 1)
            options.log_severity_level = 3
            self._session = ort.InferenceSession(
                str(folder / "reader.onnx"), options, providers=["CPUExecutionProvider"]
            )
        except (OSError, ValueError, RuntimeError) as e:
            raise ModelLoadError(
                f"the answer reader in {folder} could not be loaded ({e}); reinstall the package"
            ) from None
        self._tokenizer.enable_truncation(int(settings["max_length"]), strategy="only_second")
        self._tokenizer.enable_padding()
        self.null_logit = float(settings.get("null_logit", 0.0))
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()
        log.info("loaded the answer reader from %s", folder)

    def score(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """One logit per sentence, relative to the "no sentence answers" logit."""
        if not sentences:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            encoded = self._tokenizer.encode_batch([(question, s) for s in sentences])
        feed = {
            "input_ids": np.asarray([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.asarray([e.type_ids for e in encoded], dtype=np.int64),
        }
        (logits,) = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        return logits.reshape(-1).astype(np.float32) - self.null_logit


@functools.cache
def get_reader(folder: str = str(READER_DIR)) -> Reader:
    return Reader(Path(folder))
