from __future__ import annotations

from pathlib import Path

import pytest

from rag import Config, load_config
from rag.errors import ConfigError


def test_defaults_point_at_the_repo() -> None:
    config = load_config(env={})
    assert config.corpus is None or config.corpus
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
