"""``rag eval --dataset``: a corpus a user brings, in the public layout, through the whole pipeline."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rag import answering, ask, calibration, evaluation, load_config
from rag.config import ROOT
from rag.errors import DatasetError

DOCUMENTS = {
    "lighthouse.txt": (
        "The Kestrel Bay lighthouse was built in 1871 by the engineer Margaret Olsen. "
        "It stands 34 metres tall, and its lamp can be seen from 22 nautical miles away.\n\n"
        "The keeper's cottage beside it became a maritime museum in 1998. "
        "Its collection includes the original Fresnel lens, which was removed in 1962."
    ),
    "orchard.txt": (
        "The Hallam orchard grows 40 varieties of apple on the south slope of the valley. "
        "Its oldest tree, a Bramley, was planted in 1903.\n\n"
        "Every October the orchard holds a cider festival that draws about 5,000 visitors. "
        "The juice is pressed on site by volunteers from the village."
    ),
}
QUESTIONS = [
    ("q1", "Who built the Kestrel Bay lighthouse?", ["Margaret Olsen"], "lighthouse.txt"),
    ("q2", "How tall is the Kestrel Bay lighthouse?", ["34 metres"], "lighthouse.txt"),
    ("q3", "When did the keeper's cottage become a museum?", ["1998"], "lighthouse.txt"),
    ("q4", "How many varieties of apple does the Hallam orchard grow?", ["40"], "orchard.txt"),
    ("q5", "How many visitors come to the cider festival?", ["about 5,000", "5,000"], "orchard.txt"),
    ("q6", "What is the name of the volcano on Kestrel Bay's island?", [], None),
    ("q7", "Who invented the rotary cider press?", [], None),
]


def write_dataset(folder: Path, rows: list[dict] | None = None) -> Path:
    (folder / "documents").mkdir(parents=True)
    for name, text in DOCUMENTS.items():
        (folder / "documents" / name).write_text(text, encoding="utf-8")
    if rows is None:
        rows = [
            {
                "id": qid,
                "question": question,
                "answers": answers,
                "document": doc,
                "answer_start": [DOCUMENTS[doc].index(a) for a in answers] if doc else None,
                "source_document": doc or ("lighthouse.txt" if "Kestrel" in question else "orchard.txt"),
            }
            for qid, question, answers, doc in QUESTIONS
        ]
    (folder / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "split.json").write_text(json.dumps({"tune": sorted(DOCUMENTS)}), encoding="utf-8")
    return folder


def rag_eval(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_eval_on_a_dataset_compares_configurations_and_writes_a_report(
    tmp_path: Path, figure_keys: tuple[str, ...]
) -> None:
    dataset = write_dataset(tmp_path / "harbour")
    figures, report = tmp_path / "figures.json", tmp_path / "report"
    args = ["--dataset", str(dataset), "--index-dir", str(tmp_path / "index"), "--json", str(figures)]
    out = rag_eval([*args, "--compare", "--report", str(report)])
    assert out.returncode == 0, out.stderr

    data = json.loads(figures.read_text())
    for key in figure_keys:
        assert isinstance(data[key], int | float), key
    assert data["n"] == len(QUESTIONS)
    assert data["citation_validity"] == 1.0
    assert data["recall_at_5"] == 1.0 and data["mrr"] > 0.5, "gold spans were located in the indexed text"
    assert data["containment"] >= 0.6
    assert 0 < data["p50_ms"] <= data["p95_ms"]

    table = out.stdout.splitlines()
    assert table[0].split() == ["figure", "bm25", "dense", "hybrid", "hybrid+rerank"]
    compared = json.loads((report / "figures.json").read_text())
    assert set(compared) == {"bm25", "dense", "hybrid", "hybrid+rerank"}
    assert compared["hybrid"]["recall_at_5"] == data["recall_at_5"]
    assert (report / "quality_vs_latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    misses = (report / "misses.md").read_text()
    assert misses.startswith("# harbour") and "## Worst misses: hybrid+rerank" in misses

    shipped = json.loads((ROOT / "rag" / "models" / "extractive.json").read_text())["threshold"]
    assert f"abstention threshold {shipped:.2f} (answerer default)" in out.stdout

    calibrated = rag_eval([*args[:4], "--calibrate"])
    assert calibrated.returncode == 0, calibrated.stderr
    best = re.search(r"best on this split: RAG_ABSTAIN_THRESHOLD=(\d\.\d\d)", calibrated.stdout)
    assert best, calibrated.stdout
    assert not (tmp_path / "index" / "calibration.json").exists(), "only --save keeps it"

    saved = rag_eval([*args[:4], "--calibrate", "--save"])
    assert saved.returncode == 0, saved.stderr
    kept = json.loads((tmp_path / "index" / "calibration.json").read_text())
    assert f"{kept['abstain_threshold']:.2f}" == best.group(1) and kept["questions"] == len(QUESTIONS)
    again = rag_eval(args[:4])
    assert f"abstention threshold {best.group(1)} (calibrated" in again.stdout
    overridden = rag_eval([*args[:4], "--abstain-threshold", "0.5"])
    assert "abstention threshold 0.50 (setting)" in overridden.stdout


def test_calibration_is_never_saved_from_test_questions(tmp_path: Path) -> None:
    dataset = write_dataset(tmp_path / "d")
    for split in ("test", "all"):
        out = rag_eval(["--dataset", str(dataset), "--index-dir", str(tmp_path / "i"), "--calibrate", "--save",
                        "--split", split])  # fmt: skip
        assert out.returncode == 2 and "fitted on test questions" in out.stderr, out.stderr
    assert not (tmp_path / "i" / "calibration.json").exists()
    out = rag_eval(["--dataset", str(dataset), "--index-dir", str(tmp_path / "i"), "--calibrate", "--save"])
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "i" / "calibration.json").read_text())["labelled_by"] == "d, split tune"


def test_save_needs_calibrate(tmp_path: Path) -> None:
    out = rag_eval(["--dataset", str(write_dataset(tmp_path / "d")), "--save"])
    assert out.returncode != 0 and "use it with --calibrate" in out.stderr and "Traceback" not in out.stderr


def test_a_calibration_travels_with_its_index_and_only_with_its_models(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dataset = write_dataset(tmp_path / "harbour")
    config = load_config(env={}, corpus=str(dataset / "documents"), index_dir=str(tmp_path / "index"))
    question = "Who built the Kestrel Bay lighthouse?"
    first = ask(question, config=config)
    assert not first.abstained and "Margaret Olsen" in first.text

    calibration.save(config, 0.999, answering.models_path(config), {"questions": 1})
    assert ask(question, config=config).abstained, "the saved threshold is in force for this index"
    assert not ask(question, config=config, abstain_threshold=0.0).abstained, "a setting wins over it"
    other = load_config(env={}, corpus=str(dataset / "documents"), index_dir=str(tmp_path / "other"))
    assert not ask(question, config=other).abstained, "another index keeps its own"

    path = config.index_path / calibration.FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), "models": "0" * 16}))
    with caplog.at_level(logging.WARNING, logger="rag.calibration"):
        assert not ask(question, config=config).abstained
    assert "made for other answerer models" in caplog.text
    path.write_text("{broken")
    assert not ask(question, config=config).abstained


BASE = {"id": "x", "question": "Who built the lighthouse?", "answers": ["Margaret Olsen"]}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("{not json", "is not valid JSON"),
        ([{**BASE, "document": "lighthouse.txt", "answer_start": [3]}], "does not point at 'Margaret Olsen'"),
        ([{**BASE, "document": "lighthouse.txt", "answer_start": [1, 2]}], "one offset (or null) per answer"),
        ([{**BASE, "document": "missing.txt"}], "is not a file under"),
        ([{**BASE, "document": "../questions.jsonl"}], "is not a file under"),
        ([{**BASE, "question": "", "document": None}], "'question' is missing"),
        ([{**BASE, "answers": "Margaret Olsen", "document": "lighthouse.txt"}], "list of non-empty strings"),
        ([], "holds no questions"),
    ],
)
def test_a_malformed_dataset_is_refused_with_the_line_and_the_fix(
    tmp_path: Path, rows: list[dict] | str, message: str
) -> None:
    folder = write_dataset(tmp_path / "bad", rows if isinstance(rows, list) else [])
    if isinstance(rows, str):
        (folder / "questions.jsonl").write_text(rows + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=r"questions\.jsonl") as info:
        evaluation.load_dataset(folder)
    assert message in str(info.value)


def test_offsets_may_be_unknown(tmp_path: Path) -> None:
    rows = [{**BASE, "document": "lighthouse.txt", "answer_start": None}, {**BASE, "id": "y", "document": None}]
    items = evaluation.load_dataset(write_dataset(tmp_path / "ok", rows))
    assert [i.answerable for i in items] == [True, False]
    assert items[0].spans == () and items[1].answers == ()


def test_the_cli_turns_a_bad_dataset_into_one_line(tmp_path: Path) -> None:
    out = rag_eval(["--dataset", str(tmp_path / "nowhere")])
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a dataset" in lines[0] and "Traceback" not in out.stderr
