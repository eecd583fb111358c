"""Speed of the core pipeline, side by side for dense-only, BM25-only and hybrid retrieval.

Prints two tables: index build time by stage (measured on the corpus, default seeds/), and
``ask()`` latency over every gold question (warm, after one untimed pass) with the quality
each configuration buys, all measured in one run on this machine.

    python eval/bench.py [--corpus seeds] [--gold eval/gold.jsonl] [--repeat 3] [--limit N]

``--limit`` takes a sample of N gold questions (as ``rag eval --limit``): a check that the script runs,
not a measurement.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import chunking, documents, evaluation, indexing, sources  # noqa: E402
from rag import vectors as vectors_  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.embedding import get_embedder, numeric_path  # noqa: E402
from rag.pipeline import get_pipeline  # noqa: E402
from rag.retrieval import build_bm25  # noqa: E402


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    value = fn(*args, **kwargs)
    return value, time.perf_counter() - started


def flat_store(config, vectors: np.ndarray) -> vectors_.FaissStore:
    built = vectors_.FaissStore.create(config, vectors.shape[1], "flat", vectors, len(vectors))
    built.add(np.arange(len(vectors), dtype=np.int64), vectors)
    return built


def build_stages(corpus: Path, repeat: int) -> list[tuple[str, float]]:
    config = load_config(env={}, corpus=str(corpus))
    embedder = get_embedder(config)
    rows: dict[str, list[float]] = {}
    for _ in range(repeat):
        files = sources.corpus_files([corpus])
        docs, t_parse = timed(lambda fs: [documents.load(p) for p in fs], files)
        chunks, t_chunk = timed(
            lambda ds: [c for d in ds for c in chunking.chunk_document(d, config.chunk_tokens, config.chunk_overlap)],
            docs,
        )
        sentences = list(dict.fromkeys((c.source, a, b) for c in chunks for a, b in c.sentences))
        by_source = {d.source: d for d in docs}
        texts = [by_source[s].text[a:b] for s, a, b in sentences]
        vectors, t_embed = timed(embedder.embed, texts, "document")
        _, t_faiss = timed(flat_store, config, vectors)
        _, t_bm25 = timed(build_bm25, [c.text for c in chunks])
        with tempfile.TemporaryDirectory() as tmp:
            _, t_total = timed(indexing.build, load_config(env={}, corpus=str(corpus), index_dir=tmp))
        for name, t in [
            ("parse", t_parse),
            ("chunk", t_chunk),
            ("embed sentences (dense)", t_embed),
            ("faiss index (dense)", t_faiss),
            ("bm25 index (lexical)", t_bm25),
            ("whole build, written to disk", t_total),
        ]:
            rows.setdefault(name, []).append(t)
    print(
        f"\nIndex build of {corpus} ({len(docs)} documents, {len(chunks)} chunks, {len(sentences)} sentences), "
        f"median of {repeat}:"
    )
    print(f"{'stage':32}{'seconds':>10}")
    out = [(name, statistics.median(ts)) for name, ts in rows.items()]
    for name, t in out:
        print(f"{name:32}{t:10.3f}")
    return out


def latency_table(corpus: Path, gold: Path, repeat: int, limit: int | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = load_config(env={}, corpus=str(corpus), index_dir=tmp)
        items = evaluation.select(evaluation.load_gold(gold), limit=limit)
        rows = {}
        runs = [(mode, base.replace(retrieval=mode)) for mode in ("dense", "bm25", "hybrid")]
        path = numeric_path(base).precision
        if path != "int8":  # the portable path (precision=int8) beside the one this CPU picks, side by side
            runs.append(("hybrid-int8", base.replace(precision="int8")))
        for name, config in runs:
            pipeline = get_pipeline(config)
            for item in items:  # warm-up pass, untimed
                pipeline.ask(item.question, list(item.history), config)
            times: list[float] = []
            results = []
            for _ in range(repeat):
                results = evaluation.run(
                    items,
                    lambda i: pipeline.ask(i.question, list(i.history), config),  # noqa: B023
                    pipeline.data.chunks,
                    text_of=pipeline.source_text,
                )
                times.extend(r.seconds * 1000 for r in results)
            figures = evaluation.score(results)
            figures["p50_ms"] = float(np.percentile(times, 50))
            figures["p95_ms"] = float(np.percentile(times, 95))
            rows[name] = figures
    print(f"\nask() over {len(items)} gold questions x {repeat} (warm, one process, same index; auto = {path}):")
    print(evaluation.format_table(rows, ["p50_ms", "p95_ms", "accuracy", "containment", "recall_at_5", "mrr"]))
    ratio = rows["hybrid"]["p50_ms"] / rows["dense"]["p50_ms"]
    print(f"hybrid p50 / dense p50 = {ratio:.2f}")
    if "hybrid-int8" in rows:
        print(f"hybrid p50, {path} / int8 = {rows['hybrid']['p50_ms'] / rows['hybrid-int8']['p50_ms']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default=str(ROOT / "seeds"))
    ap.add_argument("--gold", default=str(ROOT / "eval" / "gold.jsonl"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--limit", type=int, default=None, help="a sample of N gold questions (a smoke run)")
    args = ap.parse_args()
    build_stages(Path(args.corpus).resolve(), args.repeat)
    latency_table(Path(args.corpus).resolve(), Path(args.gold), args.repeat, args.limit)


if __name__ == "__main__":
    main()
