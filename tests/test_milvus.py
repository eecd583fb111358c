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


def seed_subset(milvus_config: Config, tmp_path: Path, n: int) -> tuple[Config, Path]:
    """The first ``n`` seed articles in a folder of their own, with a Milvus index beside it."""
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name in sorted(p.name for p in (ROOT / "seeds").iterdir())[:n]:
        (corpus / name).write_text((ROOT / "seeds" / name).read_text(encoding="utf-8"), encoding="utf-8")
    return milvus_config.replace(corpus=str(corpus), index_dir=str(tmp_path / "index")), corpus


def test_deletes_reach_milvus(milvus_config: Config, tmp_path: Path) -> None:
    config, corpus = seed_subset(milvus_config, tmp_path, 3)
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


def test_a_build_never_touches_the_live_collection_before_it_is_published(
    milvus_config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, corpus = seed_subset(milvus_config, tmp_path, 2)
    indexing.build(config)
    live = store.read(config.index_path, config)
    assert live is not None
    client = live.dense.client  # type: ignore[attr-defined]
    alias = live.dense.alias  # type: ignore[attr-defined]
    assert client.describe_alias(alias)["collection_name"] == live.dense.collection  # type: ignore[attr-defined]
    vector = np.asarray(live.sentence_vectors[0], dtype=np.float32)
    before = (live.dense.ntotal, live.dense.search(vector, 10)[1].tolist())

    sorted(corpus.iterdir())[0].unlink()  # the next build deletes a document's vectors ...
    (corpus / "new.txt").write_text("The harbour board raised mooring fees by four percent.\n", encoding="utf-8")

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(store, "write", fail)  # ... and fails before it is published
    with pytest.raises(OSError):
        indexing.build(config)
    monkeypatch.undo()
    assert (live.dense.ntotal, live.dense.search(vector, 10)[1].tolist()) == before
    assert client.describe_alias(alias)["collection_name"] == live.dense.collection  # type: ignore[attr-defined]
    assert set(client.list_collections()) == {live.dense.collection}, "the failed build left nothing"  # type: ignore[attr-defined]

    indexing.build(config)
    published = store.read(config.index_path, config)
    assert published is not None and published.dense.collection != live.dense.collection  # type: ignore[attr-defined]
    assert client.describe_alias(alias)["collection_name"] == published.dense.collection  # type: ignore[attr-defined]
    assert set(client.list_collections()) == {published.dense.collection}, "the old build was dropped after"  # type: ignore[attr-defined]
    assert published.dense.ntotal == len(published.sentence_ids)
