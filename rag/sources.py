"""Which files make the corpus, whether the index is up to date with them, and the texts it indexes.

Kept apart from building (``rag.indexing``): every question asks whether the index is fresh, and the CLI
and UI read documents back, without building anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import chunking, documents, store
from . import vectors as vectors_
from .config import ROOT, Config
from .embedding import vector_family
from .errors import CorpusError
from .retrieval import LEXICAL_VERSION

PARSER_VERSION = 22
UPLOADS = "uploads"
TEXTS = "texts"  # extracted text of HTML, PDF and Word sources, beside the index


def default_roots() -> list[Path]:
    return [ROOT / "seeds"]


def uploads_dir(config: Config) -> Path:
    """Files added through the UI live with the index, as part of its corpus."""
    return config.index_path / UPLOADS


def roots_for(config: Config, manifest: dict[str, Any] | None = None) -> list[Path]:
    """An explicit corpus wins; otherwise the folders the index was built from; otherwise ``seeds/``.

    The index's uploads folder is always part of the corpus once it exists.
    """
    if config.corpus:
        roots = [Path(p).expanduser().resolve() for p in config.corpus.split(os.pathsep) if p]
    elif manifest and manifest.get("roots"):
        roots = [documents.resolve_source(r) for r in manifest["roots"]]
    else:
        roots = default_roots()
    uploads = uploads_dir(config).resolve()
    if uploads.is_dir() and uploads not in roots:
        roots.append(uploads)
    return roots


def settings(config: Config) -> dict[str, Any]:
    """What must match between a stored index and the running configuration."""
    return {
        "format": store.FORMAT_VERSION,
        "parser": PARSER_VERSION,
        "lexical": LEXICAL_VERSION,
        "embedder": vector_family(config.embedder),
        "embedding_model": config.embedding_model,
        "encoding": chunking.ENCODING,
        "chunk_tokens": config.chunk_tokens,
        "chunk_overlap": config.chunk_overlap,
    }


def corpus_files(roots: Sequence[Path]) -> list[Path]:
    return list(dict.fromkeys(p.resolve() for p in documents.iter_files(roots)))


def staleness(config: Config) -> str | None:
    """Why the index must be (re)built, or ``None`` when it is up to date."""
    index_dir = config.index_path
    manifest = store.read_manifest(index_dir)
    if manifest is None:
        return f"no index in {index_dir}"
    wanted, have = settings(config), manifest.get("settings", {})
    changed = [k for k in wanted if wanted[k] != have.get(k)]
    if changed:
        return "settings changed: " + ", ".join(f"{k} {have.get(k)!r} -> {wanted[k]!r}" for k in changed)
    n = int(manifest.get("counts", {}).get("sentences", 0))
    if vectors_.choose(config, n) != manifest.get("index_type", "flat"):
        return f"vector index type {manifest.get('index_type', 'flat')!r} -> {vectors_.choose(config, n)!r}"
    roots = roots_for(config, manifest)
    if sorted(documents.display_source(r) for r in roots) != sorted(manifest.get("roots", [])):
        return f"the corpus changed from {os.pathsep.join(manifest.get('roots', []))} to {config.corpus}"
    excluded = set(manifest.get("excluded", []))
    files = {documents.display_source(p): p for p in corpus_files(roots)}
    files = {s: p for s, p in files.items() if s not in excluded}
    recorded = manifest.get("files", {})
    for source, path in files.items():
        entry = recorded.get(source)
        stat = path.stat()
        skipped = manifest.get("skipped", {}).get(source)
        if entry is None:
            if skipped is None or (stat.st_size, stat.st_mtime_ns) != (skipped["size"], skipped["mtime_ns"]):
                return f"new file {source}"
            continue
        if (stat.st_size, stat.st_mtime_ns) == (entry["size"], entry["mtime_ns"]):
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            return f"changed file {source}"
    gone = set(recorded) - set(files)
    if gone:
        return f"removed file {sorted(gone)[0]}"
    return None


def text_path(config: Config, source: str, record: dict[str, Any] | None) -> Path:
    """Where the text that a document's offsets index lives: the file itself, or its stored extraction."""
    if record and record.get("text_file"):
        return config.index_path / TEXTS / record["text_file"]
    return documents.resolve_source(source)


def listing(config: Config) -> list[dict[str, Any]]:
    """The indexed documents' records, each with its chunk count."""
    manifest = store.read_manifest(config.index_path)
    if manifest is None:
        raise CorpusError(f"there is no index in {config.index_path}; run `rag index` first")
    build = store.current_build(config.index_path)
    records = json.loads((build / "documents.json").read_text(encoding="utf-8"))  # type: ignore[operator]
    return [{**r, "chunks": manifest["files"].get(r["source"], {}).get("chunks", 0)} for r in records]


def document_text(config: Config, source: str) -> tuple[str, dict[str, Any]]:
    """An indexed document's text and record, looked up by its source (as listed) or its path."""
    build = store.current_build(config.index_path)
    if build is None:
        raise CorpusError(f"there is no index in {config.index_path}; run `rag index` first")
    records = {d["source"]: d for d in json.loads((build / "documents.json").read_text(encoding="utf-8"))}
    key = source if source in records else documents.display_source(Path(source))
    if key not in records:
        raise CorpusError(f"{source} is not in the index in {config.index_path}; `rag ls` lists what is")
    return text_path(config, key, records[key]).read_text(encoding="utf-8"), records[key]
