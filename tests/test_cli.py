"""The ``rag`` command, run as a user runs it: a real process, real output, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag.config import ROOT, Config


def rag(args: list[str], config: Config, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RAG_CORPUS": str(config.corpus), "RAG_INDEX_DIR": str(config.index_path)}
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_ask_prints_answer_and_citations(pipeline, seed_config: Config) -> None:
    out = rag(["ask", "How many PCTs did Pulse approach?"], seed_config)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "152" in lines[0] and "[1]" in lines[0]
    assert any(line.startswith("[1] seeds/002_241d7df232c0b7ae.txt:") for line in lines)
    assert any("Pulse approached all 152 PCTs" in line for line in lines)


def test_ask_json(pipeline, seed_config: Config) -> None:
    out = rag(["ask", "--json", "Who chairs the NHS Alliance?"], seed_config)
    data = json.loads(out.stdout)
    c = data["citations"][0]
    assert (ROOT / c["source"]).read_text(encoding="utf-8")[c["start"] : c["end"]] == c["quote"]
    span = data["span"]
    assert "Michael Dixon" in span["quote"] and c["start"] <= span["start"] < span["end"] <= c["end"]
    assert out.stdout and data["text"].startswith(span["quote"])


def test_ask_takes_a_chat_saved_as_messages_for_its_history(pipeline, seed_config: Config, tmp_path) -> None:
    first = rag(["ask", "--json", "Who chairs the NHS Alliance?"], seed_config)
    turns = [
        {"role": "user", "content": "Who chairs the NHS Alliance?"},
        {"role": "assistant", "content": json.loads(first.stdout)["text"]},
    ]
    (tmp_path / "chat.json").write_text(json.dumps(turns), encoding="utf-8")
    out = rag(["ask", "--json", "--history", str(tmp_path / "chat.json"), "Where does he work as a GP?"], seed_config)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert "Michael Dixon" in data["standalone_question"] and "Cullompton" in data["text"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "   "], "empty"),
        (["ask", "--top-k", "0", "hello"], "top_k=0"),
        (["ask", "--answerer", "oracle", "hello"], "valid names: extractive"),
        (["ask", "--history", "/no/such.json", "hello"], "--history"),
    ],
)
def test_errors_are_one_clean_line(pipeline, seed_config: Config, args: list[str], message: str) -> None:
    out = rag(args, seed_config)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rag: error:") and message in lines[0]
    assert "Traceback" not in out.stderr


def test_index_json_and_up_to_date(pipeline, seed_config: Config) -> None:
    out = rag(["index"], seed_config)
    assert out.returncode == 0 and "up to date" in out.stdout
    out = rag(["index", "--json", str(ROOT / "seeds")], seed_config)
    report = json.loads(out.stdout)
    assert report["documents"] == 5 and report["chunks"] > 0


def test_chat_keeps_the_conversation(pipeline, seed_config: Config) -> None:
    """Each answer is read on its own: the text between one prompt and the next."""
    script = "Who chairs the NHS Alliance?\nWhere does he work as a GP?\n/new\nWhere does he work as a GP?\n/quit\n"
    out = rag(["chat"], seed_config, stdin=script)
    assert out.returncode == 0, out.stderr
    turns = out.stdout.split("you> ")[1:]
    first, follow_up, _, fresh = (t.strip() for t in turns[:4])
    assert "Michael Dixon" in first
    assert "Cullompton" in follow_up.splitlines()[0], follow_up
    assert "[1] seeds/" in follow_up
    assert "The documents don't say" in fresh.splitlines()[0], "after /new, 'he' refers to nobody"


def test_eval_writes_numeric_json(pipeline, seed_config: Config, tmp_path: Path, figure_keys: tuple[str, ...]) -> None:
    target = tmp_path / "report.json"
    out = rag(["eval", "--split", "dev", "--limit", "10", "--json", str(target)], seed_config)
    assert out.returncode == 0, out.stderr
    figures = json.loads(target.read_text())
    for key in figure_keys:
        assert isinstance(figures[key], (int, float)), key
    assert figures["n"] == 10
    assert "recall_at_5" in out.stdout
