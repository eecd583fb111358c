"""Embedder backends: the ONNX export computes what sentence-transformers computes; int8 stays close."""

from __future__ import annotations

import numpy as np
import pytest

from rag import load_config
from rag.embedding import get_embedder
from rag.errors import UnknownNameError

TEXTS = [
    "Who chairs the NHS Alliance?",
    "Dr Michael Dixon, chair of the NHS Alliance and a GP in Cullompton, Devon.",
    "The ferry leaves at dawn.",
    "x " * 400,
]


def test_onnx_backends_match_pytorch() -> None:
    reference = get_embedder(load_config(env={})).embed(TEXTS, "document")
    exported = get_embedder(load_config(env={}, embedder="onnx")).embed(TEXTS, "document")
    quantised = get_embedder(load_config(env={}, embedder="onnx-int8")).embed(TEXTS, "document")
    assert exported.shape == reference.shape == (4, 384)
    assert np.abs(exported - reference).max() < 1e-4
    assert (quantised * reference).sum(axis=1).min() > 0.85  # int8 costs a little precision, most on long inputs
    assert np.allclose(np.linalg.norm(quantised, axis=1), 1.0, atol=1e-4)


def test_truncation_agrees() -> None:
    long = "word " * 1000
    assert get_embedder(load_config(env={}, embedder="onnx")).truncate(long) == get_embedder(
        load_config(env={})
    ).truncate(long)


def test_unknown_embedder() -> None:
    with pytest.raises(UnknownNameError, match="onnx-int8"):
        get_embedder(load_config(env={}, embedder="word2vec"))
