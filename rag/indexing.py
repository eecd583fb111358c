"""Build the index of a corpus (documents -> chunks -> vectors -> store) and keep it fresh."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import chunking, documents, store
from .config import ROOT, Config
from .embedding import Embedder, get_embedder
from .errors import CorpusError, IndexCorruptError, IndexMismatchError
from .retrieval import build_bm25
from .types import Chunk, Document

log = logging.getLogger(__name__)

PARSER_VERSION = 3
BATCH = 128

Progress = Callable[[str, int, int], None]


@dataclass
class BuildReport:
    index_dir: str
    documents: int = 0
    chunks: int = 0
    sentences: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    built: bool = True
    reason: str = ""


def default_roots() -> list[Path]:
    return [ROOT / "seeds"]


def roots_for(config: Config, manifest: dict[str, Any] | None = None) -> list[Path]:
    """An explicit corpus wins; otherwise the folders the index was built from; otherwise ``seeds/``."""
    if config.corpus:
        return [Path(p).expanduser().resolve() for p in config.corpus.split(os.pathsep) if p]
    if manifest and manifest.get("roots"):
        return [documents.resolve_source(r) for r in manifest["roots"]]
    return default_roots()


def settings(config: Config) -> dict[str, Any]:
    """What must match between a stored index and the running configuration."""
    return {
        "format": store.FORMAT_VERSION,
        "parser": PARSER_VERSION,
        "embedder": config.embedder,
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
    roots = roots_for(config, manifest)
    if sorted(documents.display_source(r) for r in roots) != sorted(manifest.get("roots", [])):
        return "the corpus folder changed"
    files = {documents.display_source(p): p for p in corpus_files(roots)}
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


def _parse_all(files: Sequence[Path], max_bytes: int, report: BuildReport, progress: Progress | None) -> list[Document]:
    docs = []
    for i, path in enumerate(files):
        try:
            docs.append(documents.load(path, max_bytes))
        except CorpusError as e:
            log.warning("skipped %s", e)
            report.skipped.append((documents.display_source(path), str(e)))
        if progress:
            progress("reading", i + 1, len(files))
    return docs


def _chunk_all(docs: Sequence[Document], config: Config) -> tuple[list[Chunk], np.ndarray]:
    """Chunks plus the table of unique sentences (document row, start, end) that they index into."""
    chunks: list[Chunk] = []
    spans: list[tuple[int, int, int]] = []
    for d, doc in enumerate(docs):
        ids: dict[tuple[int, int], int] = {}
        for chunk in chunking.chunk_document(doc, config.chunk_tokens, config.chunk_overlap, len(chunks)):
            for span in chunk.sentences:
                if span not in ids:
                    ids[span] = len(spans)
                    spans.append((d, *span))
            chunks.append(dataclasses.replace(chunk, first_sentence=ids[chunk.sentences[0]]))
    return chunks, np.asarray(spans, dtype=np.int64).reshape(-1, 3)


def passage_text(chunk: Chunk, doc: Document) -> str:
    """What lexical search sees of a chunk: its words, after the document's heading and a comment's label."""
    header = [h for h in (doc.heading, chunk.label) if h]
    return "\n".join([*header, chunk.text])


def _embed(embedder: Embedder, texts: list[str], stage: str, progress: Progress | None) -> np.ndarray:
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    for i in range(0, len(texts), BATCH):
        out[i : i + BATCH] = embedder.embed(texts[i : i + BATCH], "document")
        if progress:
            progress(stage, min(i + BATCH, len(texts)), len(texts))
    return out


def build(
    config: Config,
    paths: Sequence[Path] | None = None,
    progress: Progress | None = None,
    reason: str = "requested",
    if_stale: bool = False,
) -> BuildReport:
    """Index ``paths`` (default: the configured corpus) into ``config.index_dir``, replacing what was there.

    With ``if_stale`` the check is repeated under the lock, so concurrent callers build once.
    """
    started = time.perf_counter()
    index_dir = config.index_path
    with store.locked(index_dir):
        if if_stale:
            reason = staleness(config) or ""
            if not reason:
                return BuildReport(index_dir=str(index_dir), built=False, reason="up to date")
        roots = (
            [Path(p).expanduser().resolve() for p in paths]
            if paths
            else roots_for(config, _manifest_or_none(index_dir))
        )
        files = corpus_files(roots)
        report = BuildReport(index_dir=str(index_dir), reason=reason)
        log.info("building the index of %d file(s) in %s (%s)", len(files), index_dir, reason)
        docs = _parse_all(files, int(config.max_file_mb * 1e6), report, progress)
        if not docs:
            where = ", ".join(str(r) for r in roots)
            raise CorpusError(f"no readable .txt/.md documents in {where}; add UTF-8 text files there")
        chunks, spans = _chunk_all(docs, config)
        embedder = get_embedder(config)
        by_source = {d.source: d for d in docs}
        sentence_texts = [docs[d].text[a:b] for d, a, b in spans]
        sentence_vectors = _embed(embedder, sentence_texts, "embedding sentences", progress)
        per_source = Counter(c.source for c in chunks)
        manifest = {
            "settings": settings(config),
            "dimension": embedder.dimension,
            "roots": [documents.display_source(r) for r in roots],
            "files": {
                d.source: {
                    "sha256": d.sha256,
                    **_stat(documents.resolve_source(d.source)),
                    "chunks": per_source[d.source],
                }
                for d in docs
            },
            "skipped": {
                source: {"reason": why, **_stat(documents.resolve_source(source))} for source, why in report.skipped
            },
            "counts": {"documents": len(docs), "chunks": len(chunks), "sentences": len(spans)},
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        data = store.IndexData(
            manifest=manifest,
            documents=[_doc_record(d) for d in docs],
            chunks=chunks,
            dense=store.flat_index(sentence_vectors),
            sentence_spans=spans,
            sentence_vectors=sentence_vectors,
            bm25=build_bm25([passage_text(c, by_source[c.source]) for c in chunks]),
        )
        store.write(index_dir, data)
    report.documents, report.chunks, report.sentences = len(docs), len(chunks), len(spans)
    report.seconds = time.perf_counter() - started
    log.info(
        "indexed %d documents, %d chunks, %d sentences in %.1f s",
        report.documents,
        report.chunks,
        report.sentences,
        report.seconds,
    )
    return report


def _stat(path: Path) -> dict[str, int]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _manifest_or_none(index_dir: Path) -> dict[str, Any] | None:
    try:
        return store.read_manifest(index_dir)
    except IndexCorruptError:
        return None


def _doc_record(doc: Document) -> dict[str, Any]:
    return {
        "source": doc.source,
        "title": doc.title,
        "display_title": doc.display_title,
        "author": doc.author,
        "date": doc.date,
        "sha256": doc.sha256,
        "sections": [[s.start, s.end, s.kind, s.label] for s in doc.sections],
    }


def ensure(config: Config, progress: Progress | None = None) -> store.IndexData:
    """Load the index, first building it when it is missing or stale and ``auto_index`` allows."""
    reason = staleness(config)
    if reason is not None:
        if not config.auto_index:
            raise IndexMismatchError(
                f"the index in {config.index_path} is out of date ({reason}); run `rag index` to rebuild it"
            )
        log.info("index needs building: %s", reason)
        build(config, progress=progress, if_stale=True)
    data = store.read(config.index_path)
    if data is None:
        raise IndexCorruptError(f"the index in {config.index_path} vanished while loading; {store.REBUILD_HINT}")
    return data
