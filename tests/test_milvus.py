"""The Milvus vector store against a real Milvus API (Milvus Lite, started by pymilvus in a local file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag import ask, evaluation, indexing, store
from rag.config import ROOT, Config
from rag.pipeline import get_pipeline

from .conftest import has_module, require


@pytest.fixture(autouse=True, scope="module")
def _milvus_present() -> None:
    for module in ("pymilvus", "milvus_lite"):
        require(has_module(module), module, "run `make install` (the milvus extra)")


@pytest.fixture(scope="module")
def milvus_config(seed_config: Config, tmp_path_factory: pytest.TempPathFactory) -> Config:
    return seed_config.replace(vector_store="milvus", index_dir=str(tmp_path_factory.mktemp("milvus-index")))


def test_same_top_k_as_faiss_on_the_gold_set(milvus_config: Config, seed_config: Config) -> None:
    milvus, faiss_ = get_pipeline(milvus_config), get_pipeline(seed_config)
    assert milvus.data.manifest["index_type"] == "milvus" and faiss_.data.manifest["index_type"] == "flat"
    for item in evaluation.load_gold(ROOT / "eval" / "gold.jsonl"):
        for mode in ("dense", "hybrid"):
            a = [p.chunk.text for p in milvus.retrieve(item.question, milvus_config.replace(retrieval=mode))]
            b = [p.chunk.text for p in faiss_.retrieve(item.question, seed_config.replace(retrieval=mode))]
            assert a == b, (item.question, mode)


def test_answers_and_filters_match(milvus_config: Config, seed_config: Config) -> None:
    question = "Who chairs the NHS Alliance?"
    assert ask(question, config=milvus_config).citations == ask(question, config=seed_config).citations
    m, f = get_pipeline(milvus_config).data, get_pipeline(seed_config).data
    vector = get_pipeline(seed_config).query(question)[0].vector
    for data in (m, f):
        allowed = data.sentence_ids[data.sentence_spans[:, 0] == 4]  # the last seed only
        _, ids = data.dense.search(vector, 5, allowed=allowed)
        assert len(ids) == 5 and set(ids.tolist()) <= set(allowed.tolist())
    assert np.array_equal(
        m.dense.search(vector, 5, allowed=m.sentence_ids[:9])[1],
        f.dense.search(vector, 5, allowed=f.sentence_ids[:9])[1],
    )


def test_deletes_reach_milvus(milvus_config: Config, tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name in sorted(p.name for p in (ROOT / "seeds").iterdir())[:3]:
        (corpus / name).write_text((ROOT / "seeds" / name).read_text(encoding="utf-8"), encoding="utf-8")
    config = milvus_config.replace(corpus=str(corpus), index_dir=str(tmp_path / "index"))
    indexing.build(config)
    before = store.read(config.index_path, config)
    assert before is not None and before.dense.ntotal == len(before.sentence_ids)
    victim = sorted(corpus.iterdir())[0]
    indexing.remove(config, [str(victim)])
    after = store.read(config.index_path, config)
    assert after is not None
    assert after.dense.ntotal == len(after.sentence_ids) < len(before.sentence_ids)
    gone = np.setdiff1d(before.sentence_ids, after.sentence_ids)
    vector = np.asarray(before.sentence_vectors[0], dtype=np.float32)
    assert not set(after.dense.search(vector, 50)[1].tolist()) & set(gone.tolist())
