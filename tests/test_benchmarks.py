"""The benchmark scripts still run against the current library and print their tables."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rag.config import ROOT


def _bench(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """A benchmark script as a user runs it: its own process, no RAG_* settings from the test run."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    out = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    return out


def test_bench_prints_build_stages_and_ask_latency() -> None:
    out = _bench("eval/bench.py", "--repeat", "1", "--limit", "24")
    assert "faiss index (dense)" in out.stdout and "whole build, written to disk" in out.stdout
    header = next(line for line in out.stdout.splitlines() if line.startswith("figure"))
    from rag.config import load_config
    from rag.embedding import numeric_path

    portable = [] if numeric_path(load_config(env={})).precision == "int8" else ["hybrid-int8"]
    assert header.split() == ["figure", "dense", "bm25", "hybrid", *portable]
    p50 = next(line for line in out.stdout.splitlines() if line.startswith("p50_ms")).split()[1:]
    assert all(float(v) > 0 for v in p50)
    assert "ask() over 24 gold questions x 1" in out.stdout


@pytest.mark.slow
def test_bench_scale_prints_its_table() -> None:
    out = _bench("eval/bench_scale.py", "--sizes", "12000", "--pq-at", "12000", "--queries", "20", timeout=900)
    rows = [r for r in (line.split() for line in out.stdout.splitlines()) if r[:1] == ["12000"] and r[1] != "vectors"]
    kinds = {r[1].split("/")[0] for r in rows}
    assert kinds == {"flat", "ivfpq96"}, out.stdout
    assert all(0.5 <= float(r[-1]) <= 1.0 for r in rows)
