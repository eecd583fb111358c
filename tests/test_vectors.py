"""Vector index types: the same answers from flat and HNSW, IVF-PQ recall with exact re-scoring, in-place updates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag import ask, indexing, store
from rag.config import Config
from rag.pipeline import Pipeline
from rag.vectors import FaissStore, VectorFile, choose


def test_auto_choice_follows_size(seed_config: Config) -> None:
    assert choose(seed_config, 1_000) == "flat"
    assert choose(seed_config, 5_000_000) == "ivfpq"
    assert choose(seed_config.replace(index_type="ivfpq"), 500) == "flat"  # too few to train on
    assert choose(seed_config.replace(index_type="hnsw"), 500) == "hnsw"


def test_hnsw_index_answers_like_the_exact_one(seed_config: Config, tmp_path) -> None:
    hnsw = seed_config.replace(index_type="hnsw", index_dir=str(tmp_path / "hnsw"))
    for q in ("Who chairs the NHS Alliance?", "How many PCTs did Pulse approach?", "What did Vinci Ho say?"):
        assert ask(q, config=hnsw).citations == ask(q, config=seed_config).citations
    assert store.read_manifest(hnsw.index_path)["index_type"] == "hnsw"  # type: ignore[index]


def clouds(pipeline: Pipeline, n: int, seed: int = 0) -> np.ndarray:
    """Vectors shaped like real ones: perturbed copies of the seed sentences' embeddings."""
    base = np.asarray(pipeline.data.sentence_vectors, dtype=np.float32)
    rng = np.random.default_rng(seed)
    x = base[rng.integers(0, len(base), n)] + rng.normal(0, 0.04, (n, base.shape[1])).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_ivfpq_with_exact_rescoring_keeps_recall(pipeline: Pipeline, seed_config: Config) -> None:
    x = clouds(pipeline, 30_000)
    ids = np.arange(30_000, dtype=np.int64) * 2 + 7
    row_of = np.full(int(ids.max()) + 1, -1, np.int64)
    row_of[ids] = np.arange(len(ids))
    exact = FaissStore.create(seed_config, 384, "flat", x, len(x))
    exact.add(ids, x)
    approx = FaissStore.create(seed_config, 384, "ivfpq", x, len(x))
    approx.add(ids, x)
    approx.attach(x.astype(np.float16), row_of)
    queries = clouds(pipeline, 100, seed=1)
    recall = np.mean([len(set(exact.search(q, 10)[1]) & set(approx.search(q, 10)[1])) / 10 for q in queries])
    assert recall >= 0.9  # near-duplicate clouds are the hard case; eval/bench_scale.py measures realistic ones
    gone = ids[:5000]
    approx.delete(gone)
    assert approx.ntotal == 25_000
    assert not set(approx.search(x[0], 10)[1]) & set(gone.tolist())


def test_updates_touch_only_changed_vectors(corpus_config: Config, corpus) -> None:
    indexing.build(corpus_config)
    before = store.read(corpus_config.index_path)
    assert before is not None
    (corpus / "extra.txt").write_text("The ferry to Hoy now sails at dawn on Sundays.", encoding="utf-8")
    indexing.build(corpus_config)
    after = store.read(corpus_config.index_path)
    assert after is not None
    assert set(before.sentence_ids.tolist()) < set(after.sentence_ids.tolist())  # old ids are kept, new appended
    assert after.dense.ntotal == len(after.sentence_ids)
    (corpus / "extra.txt").unlink()
    indexing.build(corpus_config)
    final = store.read(corpus_config.index_path)
    assert set(final.sentence_ids.tolist()) == set(before.sentence_ids.tolist())  # type: ignore[union-attr]
    with pytest.raises(Exception):  # noqa: B017 - ids of removed sentences are gone from the vector index
        final.dense.index.reconstruct(int(after.sentence_ids.max()))  # type: ignore[union-attr]


def test_vector_file_reads_rows_on_demand(tmp_path) -> None:
    rows = np.random.default_rng(0).normal(size=(5_000, 16)).astype(np.float16)
    np.save(tmp_path / "v.npy", rows)
    disk = VectorFile(tmp_path / "v.npy")
    assert len(disk) == 5_000 and disk.shape == (5_000, 16)
    for picked in ([7], [4_999, 0, 3, 3, 4, 2_500, -1], [*range(100, 300), 5, 99], []):
        assert np.array_equal(disk[picked], rows[picked])
    assert np.array_equal(disk[10:20], rows[10:20]) and np.array_equal(disk[7], rows[7])
    assert np.array_equal(np.asarray(disk, dtype=np.float32), rows.astype(np.float32))
    with pytest.raises(IndexError):
        disk[[5_000]]


def test_a_served_index_keeps_its_vectors_on_disk(pipeline: Pipeline) -> None:
    assert isinstance(pipeline.data.sentence_vectors, VectorFile)
    pipeline.data.sentence_vectors[[0, 1, 2]]
    maps = Path("/proc/self/maps").read_text()  # the rows are read with pread: no mapping of the file exists
    assert "sentence_vectors.npy" not in maps
