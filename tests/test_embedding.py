"""Embedder backends and numeric paths: every path computes the same vectors (to cosine 0.99), the
automatic choice follows the CPU, and an index built on one path is searched from another."""

from __future__ import annotations

import numpy as np
import pytest

from rag import load_config
from rag.chunking import sentences
from rag.config import ROOT
from rag.embedding import choose_precision, get_embedder, numeric_path, onnx_unsupported, vector_family
from rag.errors import ConfigError, ModelLoadError, UnknownNameError

TEXTS = [
    "Who chairs the NHS Alliance?",
    "Dr Michael Dixon, chair of the NHS Alliance and a GP in Cullompton, Devon.",
    "The ferry leaves at dawn.",
    "x " * 400,
]


def _seed_sentences(n: int = 200) -> list[str]:
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").iterdir()))
    return [text[a:b] for a, b in sentences(text, 0, len(text)) if b - a > 20][:n]


def test_onnx_backends_match_pytorch() -> None:
    reference = get_embedder(load_config(env={}, precision="fp32")).embed(TEXTS, "document")
    exported = get_embedder(load_config(env={}, embedder="onnx")).embed(TEXTS, "document")
    quantised = get_embedder(load_config(env={}, embedder="onnx-int8")).embed(TEXTS, "document")
    assert exported.shape == reference.shape == (4, 384)
    assert np.abs(exported - reference).max() < 1e-4
    assert (quantised * reference).sum(axis=1).min() > 0.95
    assert np.allclose(np.linalg.norm(quantised, axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_every_path_keeps_the_vectors(precision: str) -> None:
    texts = _seed_sentences()
    reference = get_embedder(load_config(env={}, precision="fp32")).embed(texts, "document")
    embedder = get_embedder(load_config(env={}, precision=precision))
    assert embedder.precision == precision
    vectors = embedder.embed(texts, "document")
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.mean() >= 0.99, f"{precision}: mean cosine {cosine.mean():.4f} to fp32"
    assert cosine.min() >= 0.95
    queries = embedder.embed(["Who chairs the NHS Alliance?"], "query")
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-4)


AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8"})
ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni"})
ALDER = frozenset({"avx2", "avx_vnni"})
AVX2 = frozenset({"avx2", "fma"})
OLD = frozenset({"sse4_2"})


@pytest.mark.parametrize(
    ("flags", "expected"),
    [(AMX, "bf16"), (ZEN4, "int8"), (ALDER, "int8"), (AVX2, "int8"), (OLD, "fp32"), (frozenset(), "fp32")],
)
def test_auto_follows_the_cpu(flags: frozenset[str], expected: str) -> None:
    path = choose_precision("auto", flags)
    assert path.precision == expected
    assert path.reason.startswith("auto: ")


def test_a_setting_overrides_the_cpu() -> None:
    assert choose_precision("fp32", AMX).precision == "fp32"
    assert choose_precision("int8", OLD).precision == "int8"
    forced = choose_precision("bf16", AVX2)
    assert forced.precision == "bf16" and "emulated" in forced.reason
    with pytest.raises(ConfigError, match="auto, fp32, bf16, int8"):
        load_config(env={"RAG_PRECISION": "int4"})
    assert load_config(env={"RAG_PRECISION": "bf16"}).precision == "bf16"


def test_a_model_the_onnx_path_cannot_run_stays_on_pytorch(tmp_path) -> None:
    (tmp_path / "tokenizer.json").write_text("{}")
    modules = '[{"type": "sentence_transformers.models.Transformer"}, {"type": "sentence_transformers.models.Pooling"}]'
    (tmp_path / "modules.json").write_text(modules)
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert "mean" in (onnx_unsupported(str(tmp_path)) or "")
    config = load_config(env={}, embedding_model=str(tmp_path))
    assert numeric_path(config, ZEN4).precision == "bf16"
    assert numeric_path(config, AVX2).precision == "fp32"
    assert numeric_path(config, AMX).precision == "bf16"
    with pytest.raises(ModelLoadError, match="int8 needs the onnx path"):
        numeric_path(config.replace(precision="int8"), ZEN4)
    assert onnx_unsupported("sentence-transformers/all-MiniLM-L6-v2") is None


def test_backends_share_one_index_family() -> None:
    assert {vector_family(n) for n in ("sentence-transformers", "onnx", "onnx-int8")} == {"sentence-transformers"}
    assert vector_family("my-embedder") == "my-embedder"


def test_truncation_agrees() -> None:
    long = "word " * 1000
    assert get_embedder(load_config(env={}, embedder="onnx")).truncate(long) == get_embedder(
        load_config(env={}, precision="fp32")
    ).truncate(long)


def test_unknown_embedder() -> None:
    with pytest.raises(UnknownNameError, match="onnx-int8"):
        get_embedder(load_config(env={}, embedder="word2vec"))
