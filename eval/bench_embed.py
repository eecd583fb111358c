"""Embedding speed of each numeric path on this CPU, and the retrieval quality each keeps, side by side.

Paths: plain fp32 sentence-transformers (the baseline), bf16 in PyTorch, int8 on
onnxruntime (per-channel 7-bit weights), fp32 on onnxruntime, and which of them `auto` picks here.
Speed is the median of rounds that interleave the paths, on real text: sentences of the
squad_v2_dev25 articles (what the index embeds; a 160-token passage holds about four) and
256-token passages. Quality: mean and minimum cosine to fp32, and dense-only evidence recall@10 and
MRR@10 over the gold set (seeds/, answerable questions) and over squad_v2_dev25 `tune` questions, each
corpus indexed on each path; "mixed" is the int8 index searched with fp32 queries. Last, the build
time of the whole squad_v2_dev25 index with the automatic choice and with fp32.

    python eval/bench_embed.py [--sentences 1500] [--passages 120] [--rounds 3] [--questions 400]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import evaluation, indexing, load_config  # noqa: E402
from rag.chunking import encoding, sentences  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.embedding import cpu_flags, get_embedder, numeric_path  # noqa: E402
from rag.pipeline import Pipeline, forget  # noqa: E402

DATASET = ROOT.parent / "shared" / "data" / "squad_v2_dev25"
PATHS = {
    "fp32 (sentence-transformers)": {"precision": "fp32"},
    "bf16 (torch, bf16 weights)": {"precision": "bf16"},
    "int8 (onnxruntime)": {"precision": "int8"},
    "fp32 (onnxruntime)": {"embedder": "onnx"},
}


def texts(n_sentences: int, n_passages: int) -> tuple[list[str], list[str]]:
    docs = [p.read_text(encoding="utf-8") for p in sorted((DATASET / "documents").iterdir())]
    pool = [d[a:b] for d in docs for a, b in sentences(d, 0, len(d))]
    random.Random(0).shuffle(pool)
    enc = encoding()
    tokens = enc.encode_ordinary("\n\n".join(docs))
    passages = [enc.decode(tokens[i : i + 256]) for i in range(0, 256 * n_passages, 256)]
    return pool[:n_sentences], passages


def config(**overrides: object) -> Config:
    return load_config(env={}, **overrides)


def rates(items: list[str], rounds: int) -> dict[str, float]:
    """Items per second for each path: the median of ``rounds`` rounds, the paths interleaved in each."""
    embedders = {name: get_embedder(config(**o)) for name, o in PATHS.items()}
    for e in embedders.values():
        e.embed(items[:64], "document")
    seen: dict[str, list[float]] = collections.defaultdict(list)
    for _ in range(rounds):
        for name, e in embedders.items():
            started = time.perf_counter()
            e.embed(items, "document")
            seen[name].append(len(items) / (time.perf_counter() - started))
    return {name: statistics.median(v) for name, v in seen.items()}


def cosines(items: list[str]) -> dict[str, tuple[float, float]]:
    reference = get_embedder(config(precision="fp32")).embed(items, "document")
    out = {}
    for name, o in PATHS.items():
        c = (get_embedder(config(**o)).embed(items, "document") * reference).sum(axis=1)
        out[name] = (float(c.mean()), float(c.min()))
    return out


def quality(
    build: dict[str, object], query: dict[str, object], corpus: Path, items: list[evaluation.GoldItem], tmp: Path
) -> tuple[float, float]:
    """Dense evidence recall@10 and MRR@10 with an index built on one path and queries on another."""
    index_dir = tmp / f"{corpus.name}-{json.dumps(build, sort_keys=True)}"
    base = {"corpus": str(corpus), "index_dir": str(index_dir), "retrieval": "dense", "top_k": 10}
    indexing.build(config(**base, **build))
    forget()
    searcher = config(**base, **query)
    pipeline = Pipeline(searcher)
    by_source = collections.defaultdict(list)
    for c in pipeline.data.chunks:
        by_source[c.source].append(c.id)
    hits, ranks = [], []
    for item in items:
        relevant = evaluation.relevant_chunks(item, pipeline.data.chunks, by_source)
        if not relevant:
            continue
        got = [p.chunk.id for p in pipeline.retrieve(item.question, searcher)][:10]
        first = next((r for r, i in enumerate(got, 1) if i in relevant), None)
        hits.append(first is not None)
        ranks.append(1 / first if first else 0.0)
    return float(np.mean(hits)), float(np.mean(ranks))


def build_seconds(overrides: dict[str, object], tmp: Path) -> tuple[float, int]:
    index_dir = tmp / f"build-{json.dumps(overrides, sort_keys=True)}"
    started = time.perf_counter()
    report = indexing.build(config(corpus=str(DATASET / "documents"), index_dir=str(index_dir), **overrides))
    return time.perf_counter() - started, report.chunks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sentences", type=int, default=1500)
    ap.add_argument("--passages", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--questions", type=int, default=400)
    args = ap.parse_args()
    auto = numeric_path(config())
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8"})
    print(f"CPU flags that matter: {' '.join(flags) or '(none)'}; auto picks {auto.precision} ({auto.reason})")
    sents, passages = texts(args.sentences, args.passages)
    gold = [i for i in evaluation.load_gold(ROOT / "eval" / "gold.jsonl") if i.answerable and not i.history]
    split = {d: n for n, docs in json.loads((DATASET / "split.json").read_text()).items() for d in docs}
    squad = [i for i in evaluation.load_dataset(DATASET, split) if i.split == "tune" and i.answerable]
    squad = random.Random(0).sample(squad, min(args.questions, len(squad)))

    sentence_rate = rates(sents, args.rounds)
    passage_rate = rates(passages, args.rounds)
    cos = cosines(sents[:500])
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runs = [(name, o, o) for name, o in PATHS.items() if "embedder" not in o]
        runs.append(("mixed: int8 index, fp32 queries", {"precision": "int8"}, {"precision": "fp32"}))
        for name, built_on, asked_on in runs:
            g = quality(built_on, asked_on, ROOT / "seeds", gold, tmp)
            s = quality(built_on, asked_on, DATASET / "documents", squad, tmp)
            rows[name] = {"gold": g, "squad": s}
            print(name, json.dumps(rows[name]), flush=True)
        auto_s, chunks = build_seconds({}, tmp)
        fp32_s, _ = build_seconds({"precision": "fp32"}, tmp)

    base_s, base_p = sentence_rate["fp32 (sentence-transformers)"], passage_rate["fp32 (sentence-transformers)"]
    print(
        f"\n{'path':<32} {'sent/s':>7} {'x':>5} {'256-tok/s':>9} {'x':>5} {'cos mean':>8} {'cos min':>7} "
        f"{'gold R@10':>9} {'gold MRR':>8} {'squad R@10':>10} {'squad MRR':>9}"
    )
    for name in [*PATHS, "mixed: int8 index, fp32 queries"]:
        speed = (
            f"{sentence_rate[name]:>7.0f} {sentence_rate[name] / base_s:>5.2f} "
            f"{passage_rate[name]:>9.1f} {passage_rate[name] / base_p:>5.2f} "
            f"{cos[name][0]:>8.4f} {cos[name][1]:>7.3f}"
            if name in PATHS
            else f"{'':>7} {'':>5} {'':>9} {'':>5} {'':>8} {'':>7}"
        )
        q = rows.get(name)
        quality_cells = (
            f"{q['gold'][0]:>9.3f} {q['gold'][1]:>8.3f} {q['squad'][0]:>10.3f} {q['squad'][1]:>9.3f}"  # type: ignore[index]
            if q
            else f"{'(same vectors as the fp32 row)':>39}"
        )
        print(f"{name:<32} {speed} {quality_cells}")
    print(
        f"\nsquad_v2_dev25 index ({chunks} passages): built in {auto_s:.1f} s with auto ({auto.precision}), "
        f"{fp32_s:.1f} s with fp32: {fp32_s / auto_s:.2f}x; {chunks / auto_s:.1f} indexed passages/s with auto"
    )


if __name__ == "__main__":
    main()
