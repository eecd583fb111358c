from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag import Config, ask, load_config, store
from rag.config import ROOT
from rag.errors import ConfigError
from rag.pipeline import forget


def test_defaults_point_at_the_repo() -> None:
    config = load_config(env={})
    assert config.corpus is None, "unset: the index's own corpus, else seeds/"
    assert Path(config.index_dir).name == "index"
    assert config.answerer == "extractive" and config.top_k == 5


def test_layers_file_then_env_then_overrides(tmp_path: Path) -> None:
    file = tmp_path / "rag.toml"
    file.write_text('[rag]\ntop_k = 7\nanswerer = "extractive"\nindex_dir = "idx"\n', encoding="utf-8")
    config = load_config(file=file, env={})
    assert config.top_k == 7 and config.index_path == (tmp_path / "idx").resolve()
    config = load_config(file=file, env={"RAG_TOP_K": "3", "RAG_AUTO_INDEX": "false"})
    assert config.top_k == 3 and config.auto_index is False
    assert load_config(file=file, env={"RAG_TOP_K": "3"}, top_k=2).top_k == 2
    assert load_config(env={"RAG_CONFIG": str(file)}).top_k == 7


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RAG_TOP_K": "many"}, "RAG_TOP_K: top_k='many' is not a valid int"),
        ({"RAG_TOP_K": "0"}, "top_k=0 must be between 1 and 100"),
        ({"RAG_CHUNK_OVERLAP": "500"}, "chunk_overlap=500"),
        ({"RAG_CONFIG": "/no/such/file.toml"}, "does not exist"),
        ({"RAG_ABSTAIN_THRESHOLD": "2"}, "abstain_threshold=2.0 must be between 0 and 1"),
    ],
)
def test_bad_values_name_the_value_and_the_limit(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(env=env)


def test_unknown_keys_list_the_valid_ones(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("topk = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown setting.*topk.*valid: corpus"):
        load_config(file=file, env={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        file.write_text("top_k = = 3", encoding="utf-8")
        load_config(file=file, env={})


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.top_k = 3  # type: ignore[misc]
    assert config.replace(top_k="4").top_k == 4


HARBOUR = "Harbour news\n\nThe Kirkwall harbour master, Ewan Flett, banned jet skis from the inner basin in May.\n"


def run_rag(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args],
        env={**clean, **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_folder_you_indexed_is_the_folder_you_are_answered_from(tmp_path: Path) -> None:
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    docs.mkdir()
    (docs / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    built = run_rag("index", str(docs), "--index-dir", str(idx), "--json")
    assert built.returncode == 0, built.stderr
    asked = run_rag("ask", "--index-dir", str(idx), "--json", "Who banned jet skis?")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert "Ewan Flett" in answer["text"] and answer["citations"][0]["source"] == str(docs / "harbour.txt")
    assert "WARNING" not in asked.stderr, "nothing was rebuilt, so nothing is said"
    manifest = store.read_manifest(idx)
    assert manifest is not None and manifest["roots"] == [str(docs)], "the index still holds ~/docs, not seeds/"

    forget()
    via_python = ask("Who banned jet skis?", config=load_config(env={}, index_dir=str(idx)))
    assert "Ewan Flett" in via_python.text and via_python.citations[0].source == str(docs / "harbour.txt")


def test_a_different_corpus_is_taken_only_when_named_and_then_it_is_said(tmp_path: Path) -> None:
    docs, other, idx = tmp_path / "docs", tmp_path / "other", tmp_path / "idx"
    docs.mkdir()
    other.mkdir()
    (docs / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    (other / "museum.txt").write_text("The Stromness museum reopened after a storm in March.\n", encoding="utf-8")
    assert run_rag("index", str(docs), "--index-dir", str(idx)).returncode == 0
    named = run_rag("ask", "--index-dir", str(idx), "--corpus", str(other), "When did the museum reopen?")
    assert named.returncode == 0 and "March" in named.stdout
    said = [line for line in named.stderr.splitlines() if "was built from" in line]
    assert len(said) == 1 and str(docs) in said[0] and str(other) in said[0], named.stderr
