"""Scale of the vector index: build time, memory, disk, latency and recall, from 10k to 4M vectors.

Vectors are shaped like real ones: perturbed copies of real sentence embeddings of the
squad_v2_dev25 articles (uniform random vectors are a worst case no corpus has), and the
queries are real questions from the same dataset, embedded by the real model; recall@10 is
against exact search over the same vectors. Each index is built in one process and served from
disk by a fresh one as the product serves it (IVF lists memory-mapped, the float16 vectors for
re-scoring read with pread), after one warm-up pass over the queries, so latency and resident
memory are those of a server that has run a while. Each served index sweeps ``--probes`` x
``--refines`` beside the shipped setting (marked *); ``--pq-at`` sizes are also built as IVF-PQ
(with ``--pq-bytes`` and ``--train-sizes`` variants). Incremental cost: add 1% more vectors, and
delete one document's vectors, against building it all again.

Our index holds one vector per sentence; a 160-token passage has about four, so "1M passages"
is the 4M row (--sizes 1000000 4000000).

    python eval/bench_scale.py [--sizes 10000 100000 1000000] [--queries 300] [--probes 32 128] [--refines 16]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATASET = ROOT.parent / "shared" / "data" / "squad_v2_dev25"


def real_vectors(queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Sentence vectors of the squad articles (from the eval index, built if needed) and question vectors."""
    from rag import load_config
    from rag.embedding import get_embedder
    from rag.pipeline import get_pipeline

    config = load_config(corpus=str(DATASET / "documents"), index_dir=str(ROOT / ".cache" / "eval" / DATASET.name))
    pipeline = get_pipeline(config)
    base = np.asarray(pipeline.data.sentence_vectors, dtype=np.float32)
    rows = [json.loads(line) for line in (DATASET / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    rng = np.random.default_rng(1)
    picked = [rows[i]["question"] for i in rng.choice(len(rows), queries, replace=False)]
    return base, get_embedder(config).embed(picked, "query")


def synthetic(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 200_000):
        m = min(200_000, n - start)
        x = base[rng.integers(0, len(base), m)] + rng.normal(0, 0.05, (m, base.shape[1])).astype(np.float32)
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    import faiss

    return faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)[1]


def build(
    n: int, base: np.ndarray, vectors: np.ndarray, folder: Path, kind: str, pq_bytes: int | None, train: int | None
) -> dict:
    import faiss

    from rag import load_config
    from rag.vectors import FaissStore, choose, training_size

    config = load_config(env={}, index_type=kind)
    ids = np.arange(n, dtype=np.int64)
    kind = choose(config, n)
    started = time.perf_counter()
    size = min(n, train or training_size(n))
    sample = vectors if size == n else vectors[np.sort(np.random.default_rng(0).choice(n, size, replace=False))]
    store = FaissStore.create(config, vectors.shape[1], kind, sample, n, pq_bytes=pq_bytes)
    for start in range(0, n, 500_000):
        store.add(ids[start : start + 500_000], vectors[start : start + 500_000])
    build_s = time.perf_counter() - started
    store.persist(folder)
    ivf = faiss.extract_index_ivf(store.index) if kind.startswith("ivf") else None
    label = kind + (f"{store.index.pq.M}" if kind == "ivfpq" else "") + (f"/{ivf.nlist}" if ivf else "")
    out = {"n": n, "kind": kind, "label": label, "build_s": build_s}
    if n == 100_000 or kind != "flat":
        extra = synthetic(base, n // 100, seed=7)
        started = time.perf_counter()
        store.add(np.arange(n, n + len(extra), dtype=np.int64), extra)
        out["add_1pct_s"] = time.perf_counter() - started
        started = time.perf_counter()
        store.delete(np.arange(500, 505, dtype=np.int64))  # one document: about five sentences
        out["delete_doc_s"] = time.perf_counter() - started
    return out


SERVE = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, {root!r})
from rag import load_config
from rag.vectors import FaissStore, VectorFile
import faiss
folder, kind, data = Path({folder!r}), {kind!r}, Path({data!r})
store = FaissStore.load(folder, kind, load_config(env={{}}))
exact = VectorFile(data / "vectors.npy")
store.attach(exact, np.arange(len(exact), dtype=np.int64))
queries, truth = np.load(data / "queries.npy"), np.load(data / "truth.npy")
out = []
for nprobe, refine in {probes!r} if kind.startswith("ivf") else [(0, 0)]:
    if nprobe:
        faiss.extract_index_ivf(store.index).nprobe = nprobe
        store.refine = refine
    for q in queries:  # a server that has run a while: its index pages are warm
        store.search(q, 10)
    times, hits = [], []
    for q, t in zip(queries, truth):
        started = time.perf_counter()
        _, ids = store.search(q, 10)
        times.append((time.perf_counter() - started) * 1000)
        hits.append(len(set(ids.tolist()) & set(t.tolist())) / 10)
    rss = int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) * 1024
    out.append({{"nprobe": nprobe, "refine": refine, "p50_ms": float(np.percentile(times, 50)),
                "p99_ms": float(np.percentile(times, 99)),
                "recall_at_10": float(np.mean(hits)), "rss_bytes": rss}})
print(json.dumps(out))
"""


def serve(folder: Path, kind: str, data: Path, probes: list[tuple[int, int]]) -> list[dict]:
    script = SERVE.format(root=str(ROOT), folder=str(folder), kind=kind, data=str(data), probes=probes)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def baseline_rss() -> int:
    script = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import numpy, faiss; from rag.vectors import FaissStore; "
        "print(int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) * 1024)"
    )
    return int(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--pq-at", type=int, nargs="*", default=[1_000_000], help="sizes also measured with IVF-PQ")
    ap.add_argument("--pq-bytes", type=int, nargs="*", default=[], help="IVF-PQ code sizes to try beside the default")
    ap.add_argument("--probes", type=int, nargs="*", default=[], help="nprobe values to sweep (default: shipped)")
    ap.add_argument("--train-sizes", type=int, nargs="*", default=[], help="IVF training sample sizes to try")
    ap.add_argument("--refines", type=int, nargs="*", default=[], help="IVF-PQ re-scoring factors to sweep")
    args = ap.parse_args()
    from rag import load_config

    base, queries = real_vectors(args.queries)
    print(f"{len(base)} real sentence vectors as seeds, {len(queries)} real questions as queries", flush=True)
    floor = baseline_rss()
    rows = []
    for n in args.sizes:
        variants = [("auto", None, None)]
        if n in args.pq_at:
            variants += [("ivfpq", None, None)] + [("ivfpq", b, None) for b in args.pq_bytes]
            variants += [("ivfpq", None, t) for t in args.train_sizes]
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp)
            vectors = synthetic(base, n, seed=n)
            np.save(data / "vectors.npy", vectors.astype(np.float16))
            np.save(data / "truth.npy", exact_top(vectors, queries))
            np.save(data / "queries.npy", queries)
            done = set()
            for wanted, pq_bytes, train in variants:
                folder = data / f"{wanted}-{pq_bytes}-{train}"
                folder.mkdir()
                built = build(n, base, vectors, folder, wanted, pq_bytes, train)
                if built["label"] in done:
                    continue
                done.add(built["label"])
                shipped = load_config(env={})
                default_probe = shipped.ivf_nprobe * (4 if built["kind"] == "ivfpq" else 1)
                refines = sorted({shipped.refine_factor, *args.refines}) if built["kind"] == "ivfpq" else [1]
                default = (default_probe, shipped.refine_factor if built["kind"] == "ivfpq" else 1)
                grid = {(p, r) for p in [default_probe, *args.probes] for r in refines}
                probes = sorted(grid | {default})
                disk = (folder / "dense.faiss").stat().st_size + (data / "vectors.npy").stat().st_size
                for served in serve(folder, built["kind"], data, probes):
                    rows.append(
                        {
                            **built,
                            **served,
                            "shipped": served["nprobe"] == 0 or (served["nprobe"], served["refine"]) == default,
                            "disk_bytes_per_vector": disk / n,
                            "index_bytes_per_vector": (folder / "dense.faiss").stat().st_size / n,
                            "rss_over_python_mb": (served["rss_bytes"] - floor) / 2**20,
                        }
                    )
                    print(json.dumps(rows[-1]), flush=True)
                shutil.rmtree(folder)
            del vectors
    print(
        f"\n{'vectors':>9} {'index':>8} {'nprobe':>6} {'refine':>6} {'build s':>8} {'RSS MB':>7} {'B/vec disk':>10} "
        f"{'B/vec idx':>9} {'p50 ms':>7} {'p99 ms':>7} {'recall@10':>9}"
    )
    for r in rows:
        print(
            f"{r['n']:>9} {r['label']:>8} {r['nprobe'] or '-':>6} {r['refine'] if r['kind'] == 'ivfpq' else '-':>6}"
            f"{'*' if r['shipped'] else ' '}"
            f"{r['build_s']:>8.1f} {r['rss_over_python_mb']:>7.0f} "
            f"{r['disk_bytes_per_vector']:>10.0f} {r['index_bytes_per_vector']:>9.0f} {r['p50_ms']:>7.2f} "
            f"{r['p99_ms']:>7.2f} {r['recall_at_10']:>9.3f}"
        )
    for r in rows:
        if "add_1pct_s" in r and r["kind"] != "flat" and r["shipped"]:
            print(
                f"\n{r['n']} vectors ({r['label']}): full build {r['build_s']:.2f} s; adding 1% took "
                f"{r['add_1pct_s']:.3f} s ({100 * r['add_1pct_s'] / r['build_s']:.1f}% of a build); "
                f"deleting one document {1000 * r['delete_doc_s']:.1f} ms"
            )
    print(
        "\n* the shipped setting. RSS MB is the serving process's resident memory above a bare Python with numpy "
        "and faiss loaded; the exact vectors for re-scoring are read from disk on demand, not mapped."
    )


if __name__ == "__main__":
    main()
