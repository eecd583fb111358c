"""Embedding throughput of each backend on this CPU, and the retrieval quality each one keeps.

Backends: sentence-transformers (PyTorch), the same model exported to ONNX and run by
onnxruntime, and that ONNX model quantised to int8. Throughput is measured on real text:
sentences of the squad_v2_dev25 articles (what the index embeds) and 256-token passages.
Quality is evidence recall@10 and @5 of dense retrieval over the gold set (seeds/) and over
a sample of squad_v2_dev25 `tune` questions, each corpus indexed by each backend.

    python eval/bench_embed.py [--sentences 2000] [--passages 200] [--questions 400]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import evaluation, load_config  # noqa: E402
from rag.chunking import encoding  # noqa: E402
from rag.embedding import EMBEDDERS, get_embedder  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402

DATASET = ROOT.parent / "shared" / "data" / "squad_v2_dev25"
BACKENDS = ["sentence-transformers", "onnx", "onnx-int8"]


def texts(n_sentences: int, n_passages: int) -> tuple[list[str], list[str]]:
    from rag.chunking import sentences

    docs = [p.read_text(encoding="utf-8") for p in sorted((DATASET / "documents").iterdir())]
    pool = [d[a:b] for d in docs for a, b in sentences(d, 0, len(d))]
    random.Random(0).shuffle(pool)
    enc = encoding()
    tokens = enc.encode_ordinary("\n\n".join(docs))
    passages = [enc.decode(tokens[i : i + 256]) for i in range(0, 256 * n_passages, 256)]
    return pool[:n_sentences], passages


def rate(backend: str, items: list[str], repeat: int = 2) -> float:
    embedder = get_embedder(load_config(env={}, embedder=backend))
    embedder.embed(items[:32], "document")
    best = 0.0
    for _ in range(repeat):
        started = time.perf_counter()
        embedder.embed(items, "document")
        best = max(best, len(items) / (time.perf_counter() - started))
    return best


def recall(backend: str, corpus: Path, items: list[evaluation.GoldItem]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(env={}, embedder=backend, corpus=str(corpus), index_dir=tmp, retrieval="dense", top_k=10)
        pipeline = Pipeline(config)
        by_source = collections.defaultdict(list)
        for c in pipeline.data.chunks:
            by_source[c.source].append(c.id)
        hits10, hits5 = [], []
        for item in items:
            relevant = evaluation.relevant_chunks(item, pipeline.data.chunks, by_source)
            if not relevant:
                continue
            got = [p.chunk.id for p in pipeline.retrieve(item.question, config)]
            hits10.append(bool(relevant & set(got[:10])))
            hits5.append(bool(relevant & set(got[:5])))
        return {"recall_at_10": float(np.mean(hits10)), "recall_at_5": float(np.mean(hits5))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=2000)
    ap.add_argument("--passages", type=int, default=200)
    ap.add_argument("--questions", type=int, default=400)
    args = ap.parse_args()
    assert set(BACKENDS) <= set(EMBEDDERS)
    sentences, passages = texts(args.sentences, args.passages)
    gold = [i for i in evaluation.load_gold(ROOT / "eval" / "gold.jsonl") if i.answerable and not i.history]
    split = {d: n for n, docs in json.loads((DATASET / "split.json").read_text()).items() for d in docs}
    squad = [i for i in evaluation.load_dataset(DATASET, split) if i.split == "tune" and i.answerable]
    squad = random.Random(0).sample(squad, min(args.questions, len(squad)))
    rows = {}
    for backend in BACKENDS:
        rows[backend] = {
            "sentences_per_s": rate(backend, sentences),
            "passages256_per_s": rate(backend, passages),
            **{f"gold_{k}": v for k, v in recall(backend, ROOT / "seeds", gold).items()},
            **{f"squad_{k}": v for k, v in recall(backend, DATASET / "documents", squad).items()},
        }
        print(backend, json.dumps(rows[backend]), flush=True)
    keys = list(next(iter(rows.values())))
    print(f"\n{'':24}" + "".join(f"{b:>22}" for b in rows))
    for k in keys:
        print(f"{k:24}" + "".join(f"{rows[b][k]:>22.3f}" for b in rows))
    base = rows["sentence-transformers"]["sentences_per_s"]
    for b in BACKENDS[1:]:
        print(f"{b}: {rows[b]['sentences_per_s'] / base:.2f}x the sentences/s of sentence-transformers")


if __name__ == "__main__":
    main()
