"""One frozen settings object, layered: defaults < TOML file < ``RAG_*`` environment < explicit overrides."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
ENV_PREFIX = "RAG_"
PRECISIONS = ("auto", "fp32", "bf16", "int8")  # the embedder's and reader's numeric path; auto picks by CPU


def _default_path(name: str) -> str:
    here = ROOT / name
    return str(here if (ROOT / "pyproject.toml").exists() else Path.cwd() / name)


@dataclass(frozen=True)
class Config:
    corpus: str | None = None  # unset: the folders this index was built from, else seeds/
    index_dir: str = _default_path("index")
    embedder: str = "sentence-transformers"
    embedding_model: str = DEFAULT_MODEL
    device: str = "cpu"
    precision: str = "auto"
    chunk_tokens: int = 160
    chunk_overlap: int = 32
    retrieval: str = "hybrid"
    top_k: int = 5
    candidates: int = 50
    rrf_k: int = 10
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    comment_weight: float = 0.5
    reranker: str | None = None
    rerank_candidates: int = 10
    answerer: str = "extractive"
    abstain_threshold: float | None = None
    reader_candidates: int | None = None
    reader_dir: str | None = None
    max_answer_sentences: int = 2
    spelling: bool = True  # a question's slips are read as the words the documents use (rag/spelling.py)
    generator: str = "openai"
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = field(default=None, repr=False)
    llm_timeout_s: float = 60.0
    llm_max_tokens: int = 256
    vector_store: str = "faiss"
    milvus_uri: str | None = None
    milvus_collection: str | None = None
    index_type: str = "auto"
    flat_max: int = 20_000
    ivfflat_max: int = 1_000_000  # past this IVF-Flat's mapped lists outgrow 2 GiB resident; IVF-PQ keeps ~100 B/vector
    ivf_nprobe: int = 16
    refine_factor: int = 16  # IVF-PQ candidates re-scored exactly: k x this (eval/bench_scale.py)
    hnsw_m: int = 32
    hnsw_ef: int = 96
    auto_index: bool = True
    checkpoint_s: float = 30.0
    max_file_mb: float = 20.0
    max_concurrent: int = 8  # answers the UI computes at once; past that it says "busy" at once

    def __post_init__(self) -> None:
        checks = [
            (
                self.precision in PRECISIONS,
                f"precision={self.precision!r} is not one of {', '.join(PRECISIONS)}; set RAG_PRECISION to one",
            ),
            (self.chunk_tokens >= 16, f"chunk_tokens={self.chunk_tokens} is below 16; use 16 or more"),
            (
                0 <= self.chunk_overlap < self.chunk_tokens,
                f"chunk_overlap={self.chunk_overlap} must be >= 0 and below chunk_tokens={self.chunk_tokens}",
            ),
            (1 <= self.top_k <= 100, f"top_k={self.top_k} must be between 1 and 100"),
            (1 <= self.max_concurrent <= 1024, f"max_concurrent={self.max_concurrent} must be between 1 and 1024"),
            (self.candidates >= self.top_k, f"candidates={self.candidates} must be >= top_k={self.top_k}"),
            (self.rrf_k >= 1, f"rrf_k={self.rrf_k} must be >= 1"),
            (0 < self.llm_timeout_s <= 3600, f"llm_timeout_s={self.llm_timeout_s} must be between 0 and 3600 seconds"),
            (16 <= self.llm_max_tokens <= 8192, f"llm_max_tokens={self.llm_max_tokens} must be between 16 and 8192"),
            (0 <= self.comment_weight <= 1, f"comment_weight={self.comment_weight} must be between 0 and 1"),
            (self.max_answer_sentences >= 1, f"max_answer_sentences={self.max_answer_sentences} must be >= 1"),
            (
                self.reader_candidates is None or 0 <= self.reader_candidates <= 50,
                f"reader_candidates={self.reader_candidates} must be between 0 (reader off) and 50",
            ),
            (
                self.abstain_threshold is None or 0 <= self.abstain_threshold <= 1,
                f"abstain_threshold={self.abstain_threshold} must be between 0 and 1 (or unset)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def index_path(self) -> Path:
        return Path(self.index_dir).expanduser().resolve()

    def replace(self, **overrides: object) -> Config:
        return dataclasses.replace(self, **_coerce_all(overrides, "override"))


FIELD_NAMES = tuple(f.name for f in fields(Config))


def _hints() -> dict[str, object]:
    return typing.get_type_hints(Config)


def _coerce(name: str, value: object, origin: str) -> object:
    hint = _hints()[name]
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none", "null"}):
        if type(None) in allowed:
            return None
        if value is None:
            raise ConfigError(f"{origin}: {name}=None is not allowed; give a {hint} value")
    target = next(t for t in allowed if t is not type(None))
    if isinstance(value, target) and not (target is int and isinstance(value, bool)):
        return value
    text = str(value).strip()
    try:
        if target is bool:
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(text)
        if target is int:
            return int(text)
        if target is float:
            return float(text)
        return text
    except ValueError:
        raise ConfigError(f"{origin}: {name}={value!r} is not a valid {target.__name__}") from None


def _coerce_all(values: dict[str, object], origin: str) -> dict[str, object]:
    unknown = sorted(set(values) - set(FIELD_NAMES))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in {origin}; valid: {', '.join(FIELD_NAMES)}")
    return {k: _coerce(k, v, origin) for k, v in values.items()}


def _from_file(path: Path) -> dict[str, object]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; create it or unset RAG_CONFIG") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} is not valid TOML ({e}); fix the file") from None
    section = data.get("rag", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [rag] must be a table")
    out = dict(section)
    base = path.parent
    for key in ("corpus", "index_dir"):
        if isinstance(out.get(key), str) and not Path(out[key]).expanduser().is_absolute():
            out[key] = str(base / out[key])
    return out


def _from_env(env: typing.Mapping[str, str]) -> dict[str, object]:
    return {name: env[ENV_PREFIX + name.upper()] for name in FIELD_NAMES if ENV_PREFIX + name.upper() in env}


def load_config(
    file: str | Path | None = None,
    env: typing.Mapping[str, str] | None = None,
    **overrides: object,
) -> Config:
    """Build the settings from every layer; ``RAG_CONFIG`` names a TOML file when ``file`` is not given."""
    env = os.environ if env is None else env
    values: dict[str, object] = {}
    file = file or env.get(ENV_PREFIX + "CONFIG")
    if file:
        values.update(_coerce_all(_from_file(Path(file).expanduser()), f"config file {file}"))
    for name, value in _from_env(env).items():
        values.update(_coerce_all({name: value}, f"environment variable {ENV_PREFIX}{name.upper()}"))
    values.update(_coerce_all({k: v for k, v in overrides.items() if v is not None}, "override"))
    return Config(**values)
