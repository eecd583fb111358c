"""Build the index of a corpus (documents -> chunks -> vectors -> store) and keep it fresh."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import chunking, documents, spelling, store
from . import vectors as vectors_
from .config import Config
from .embedding import get_embedder
from .embedding_cache import Embedding, EmbeddingCache, Progress
from .errors import CorpusError, IndexCorruptError, IndexMismatchError
from .retrieval import build_bm25
from .sources import TEXTS, UPLOADS, corpus_files, roots_for, settings, staleness, uploads_dir
from .types import Chunk, Document

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What one indexing run did; documents are counted by what happened to them."""

    index_dir: str
    documents: int = 0
    chunks: int = 0
    sentences: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    sentences_embedded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    built: bool = True
    reason: str = ""


@dataclass
class Bundle:
    """One document's share of the index, so unchanged documents are carried over without re-embedding."""

    record: dict[str, Any]
    file: dict[str, Any]
    chunks: list[Chunk]  # ``first_sentence`` counts from this bundle's first sentence
    spans: np.ndarray  # (n, 2) start, end
    vectors: np.ndarray  # (n, dimension)
    ids: np.ndarray | None = None  # stable vector-store ids; None until first published


def _chunk(doc: Document, config: Config) -> tuple[list[Chunk], np.ndarray]:
    """A document's chunks plus its table of unique sentences, which the chunks index into."""
    chunks: list[Chunk] = []
    ids: dict[tuple[int, int], int] = {}
    for chunk in chunking.chunk_document(doc, config.chunk_tokens, config.chunk_overlap):
        for span in chunk.sentences:
            ids.setdefault(span, len(ids))
        chunks.append(dataclasses.replace(chunk, first_sentence=ids[chunk.sentences[0]]))
    return chunks, np.asarray(list(ids), dtype=np.int64).reshape(-1, 2)


def passage_text(chunk: Chunk, heading: str | None) -> str:
    """What lexical search sees of a chunk: its words, after the document's heading and a comment's label."""
    return "\n".join([h for h in (heading, chunk.label) if h] + [chunk.text])


def _old_bundles(data: store.IndexData) -> dict[str, Bundle]:
    """Split a loaded index back into per-document bundles."""
    by_source: dict[str, list[Chunk]] = {}
    for c in data.chunks:
        by_source.setdefault(c.source, []).append(c)
    out = {}
    for d, record in enumerate(data.documents):
        rows = np.flatnonzero(data.sentence_spans[:, 0] == d)
        first = int(rows[0]) if len(rows) else 0
        chunks = [
            dataclasses.replace(c, first_sentence=c.first_sentence - first) for c in by_source.get(record["source"], [])
        ]
        out[record["source"]] = Bundle(
            record=record,
            file=data.manifest["files"][record["source"]],
            chunks=chunks,
            spans=data.sentence_spans[rows, 1:],
            vectors=np.asarray(data.sentence_vectors[rows], dtype=np.float32),
            ids=data.sentence_ids[rows],
        )
    return out


def _sentence_texts(bundle: Bundle) -> list[str]:
    """The text of each of a bundle's sentences, read back from its chunks."""
    texts: dict[int, str] = {}
    for c in bundle.chunks:
        for j, (a, b) in enumerate(c.sentences):
            texts.setdefault(c.first_sentence + j, c.text[a - c.start : b - c.start])
    return [texts[i] for i in range(len(bundle.spans))]


def _reusable(
    config: Config, index_dir: Path, report: BuildReport, cache: EmbeddingCache
) -> tuple[dict[str, Bundle], store.IndexData | None]:
    """The current build's documents as bundles, and the build itself, when it can be built upon.

    When only the chunker changed, the old sentence vectors still seed ``cache``: re-chunked
    text is not embedded again.
    """
    try:
        data = store.read(index_dir, config)
    except IndexCorruptError as e:
        log.warning("rebuilding from scratch: %s", e)
        return {}, None
    if data is None:
        return {}, None
    have, want = data.manifest.get("settings", {}), settings(config)
    if have != want:
        report.reason = report.reason or "settings changed"
        if all(have.get(k) == want[k] for k in ("embedder", "embedding_model")):
            for b in _old_bundles(data).values():
                cache.add(_sentence_texts(b), b.vectors)
        log.info("settings changed since the last build; every document is indexed again")
        return {}, None
    return _old_bundles(data), data


def _unchanged(path: Path, old: Bundle | None) -> bool:
    if old is None:
        return False
    stat = path.stat()
    if (stat.st_size, stat.st_mtime_ns) == (old.file["size"], old.file["mtime_ns"]):
        return True
    return hashlib.sha256(path.read_bytes()).hexdigest() == old.file["sha256"]


def _store_text(config: Config, doc: Document) -> str:
    """Extracted text lives with the index, named by its hash, so every build can share it."""
    folder = config.index_path / TEXTS
    folder.mkdir(parents=True, exist_ok=True)
    name = doc.sha256 + ".txt"
    if not (folder / name).exists():
        tmp = folder / (name + ".tmp")
        tmp.write_text(doc.text, encoding="utf-8")
        os.replace(tmp, folder / name)
    return name


def _collect_texts(config: Config, documents_: Sequence[dict[str, Any]]) -> None:
    """Drop stored texts that no document of the published index uses any more."""
    folder = config.index_path / TEXTS
    used = {d.get("text_file") for d in documents_}
    for path in folder.glob("*.txt") if folder.is_dir() else ():
        if path.name not in used:
            path.unlink(missing_ok=True)


@dataclass
class Parsed:
    """One file as the reading thread hands it over: kept as it was, parsed afresh, or skipped."""

    source: str
    kept: bool = False
    doc: Document | None = None
    entry: dict[str, Any] | None = None
    chunks: list[Chunk] | None = None
    spans: np.ndarray | None = None
    skipped: str | None = None


def _parse(files: Sequence[Path], old: dict[str, Bundle], config: Config) -> Iterator[Parsed]:
    max_bytes = int(config.max_file_mb * 1e6)
    for path in files:
        source = documents.display_source(path)
        if _unchanged(path, old.get(source)):
            yield Parsed(source, kept=True)
            continue
        try:
            raw, stat = documents.read_bytes(path, max_bytes)
            doc = documents.load(path, max_bytes, raw)
        except CorpusError as e:
            yield Parsed(source, skipped=str(e))
            continue
        entry = {"sha256": hashlib.sha256(raw).hexdigest(), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        chunks, spans = _chunk(doc, config)
        yield Parsed(source, doc=doc, entry={**entry, "chunks": len(chunks)}, chunks=chunks, spans=spans)


def _ahead(items: Iterator[Parsed], depth: int = 16) -> Iterator[Parsed]:
    """Run ``items`` on a thread, ``depth`` ahead of the consumer, so parsing overlaps embedding
    (the model's matrix products release the GIL). Errors surface in the consumer; a consumer that
    stops early stops the thread."""
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        box.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            box.put(end)
        except BaseException as e:  # handed to the consumer, which raises it
            box.put(e)

    thread = threading.Thread(target=produce, name="rag-parse", daemon=True)
    thread.start()
    try:
        while (item := box.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _bundle(config: Config, parsed: Parsed, vectors: np.ndarray) -> Bundle:
    assert parsed.doc is not None and parsed.chunks is not None and parsed.spans is not None
    record = _doc_record(parsed.doc)
    if parsed.doc.extracted:
        record["text_file"] = _store_text(config, parsed.doc)
    return Bundle(record=record, file=parsed.entry or {}, chunks=parsed.chunks, spans=parsed.spans, vectors=vectors)


def _assemble(bundles: Sequence[Bundle], dimension: int) -> tuple[list[Chunk], np.ndarray, np.ndarray]:
    chunks: list[Chunk] = []
    spans, vectors = [], []
    offset = 0
    for d, b in enumerate(bundles):
        for c in b.chunks:
            chunks.append(dataclasses.replace(c, id=len(chunks), first_sentence=c.first_sentence + offset))
        spans.append(np.column_stack([np.full(len(b.spans), d, dtype=np.int64), b.spans]))
        vectors.append(b.vectors.reshape(-1, dimension))
        offset += len(b.spans)
    all_spans = np.concatenate(spans).astype(np.int64) if spans else np.zeros((0, 3), np.int64)
    all_vectors = np.concatenate(vectors).astype(np.float32) if vectors else np.zeros((0, dimension), np.float32)
    return chunks, all_spans, all_vectors


def build(
    config: Config,
    paths: Sequence[Path] | None = None,
    progress: Progress | None = None,
    reason: str = "requested",
    if_stale: bool = False,
    full: bool = False,
    readd: Sequence[Path] = (),
) -> BuildReport:
    """Bring the index of ``paths`` (default: the configured corpus) up to date in ``config.index_dir``.

    Only new and changed documents are parsed and embedded; unchanged ones are carried over
    from the current build, deleted ones dropped. ``full`` embeds everything again; files in ``readd``
    come back even if ``rag rm`` took them out before. With
    ``if_stale`` the staleness check is repeated under the lock, so concurrent callers build once.
    """
    started = time.perf_counter()
    index_dir = config.index_path
    with store.locked(index_dir):
        if if_stale:
            reason = staleness(config) or ""
            if not reason:
                return BuildReport(index_dir=str(index_dir), built=False, reason="up to date")
        previous = _manifest_or_none(index_dir) or {}
        roots = roots_for(config.replace(corpus=os.pathsep.join(str(p) for p in paths)) if paths else config, previous)
        _say_corpus_change(index_dir, previous, roots)
        named = {documents.display_source(p) for p in [*(paths or ()), *readd] if p.is_file()}
        excluded = set(previous.get("excluded", [])) - named
        files = [p for p in corpus_files(roots) if documents.display_source(p) not in excluded]
        report = BuildReport(index_dir=str(index_dir), reason=reason)
        cache = EmbeddingCache(config)
        old, previous_data = ({}, None) if full else _reusable(config, index_dir, report, cache)
        log.info("indexing %d file(s) into %s (%s)", len(files), index_dir, report.reason)
        kept: dict[str, Bundle] = {}
        fresh: list[tuple[Parsed, int]] = []
        embedding = Embedding(config, cache, progress)
        for i, parsed in enumerate(_ahead(_parse(files, old, config))):
            if parsed.kept:
                kept[parsed.source] = old[parsed.source]
            elif parsed.skipped is not None:
                log.info("skipped %s", parsed.skipped)  # in the report; `rag index` prints each once
                report.skipped.append((parsed.source, parsed.skipped))
            else:
                assert parsed.doc is not None and parsed.spans is not None and parsed.chunks is not None
                if parsed.source in old:  # a changed document keeps its unchanged sentences
                    cache.add(_sentence_texts(old[parsed.source]), old[parsed.source].vectors)
                texts = [parsed.doc.text[a:b] for a, b in parsed.spans]
                fresh.append((parsed, embedding.add(texts, len(parsed.chunks))))
            if progress:
                progress("reading", i + 1, len(files))
        vectors = embedding.finish() if fresh else []
        report.sentences_embedded = embedding.computed
        report.chunks_embedded = sum(len(p.chunks or ()) for p, _ in fresh)
        report.unchanged = len(kept)
        report.updated = sum(1 for p, _ in fresh if p.source in old)
        report.added = len(fresh) - report.updated
        report.removed = len(set(old) - set(kept) - {p.source for p, _ in fresh})
        if not kept and not fresh:
            where = ", ".join(str(r) for r in roots)
            raise CorpusError(f"no readable documents in {where}; add .txt, .md, .html, .pdf or .docx files there")
        if (
            old
            and not fresh
            and not report.removed
            and previous.get("roots") == [documents.display_source(r) for r in roots]
            and set(previous.get("skipped", {})) == {source for source, _ in report.skipped}
            and set(previous.get("excluded", [])) == excluded
        ):
            report.built, report.reason = False, "up to date"
            _fill_counts(report, list(kept.values()))
            return report
        new = {p.source: _bundle(config, p, vectors[slot]) for p, slot in fresh}
        bundles = [kept.get(documents.display_source(p)) or new.get(documents.display_source(p)) for p in files]
        _publish(config, roots, [b for b in bundles if b is not None], report, excluded, previous_data)
        cache.clear()
    report.seconds = time.perf_counter() - started
    log.info(
        "indexed %d documents (%d added, %d updated, %d removed, %d unchanged; %d chunks embedded) in %.1f s",
        report.documents,
        report.added,
        report.updated,
        report.removed,
        report.unchanged,
        report.chunks_embedded,
        report.seconds,
    )
    return report


def _say_corpus_change(index_dir: Path, previous: dict[str, Any], roots: Sequence[Path]) -> None:
    """An index answers from the folders it was built from; replacing them is said, never done silently."""
    uploads = documents.display_source(index_dir / UPLOADS)
    before = [r for r in previous.get("roots", []) if r != uploads]
    after = [documents.display_source(r) for r in roots if documents.display_source(r) != uploads]
    if before and sorted(before) != sorted(after):
        log.warning(
            "the index in %s was built from %s; it is now rebuilt from %s, the corpus named in the settings",
            index_dir,
            os.pathsep.join(before),
            os.pathsep.join(after),
        )


def _vector_store(
    config: Config, bundles: Sequence[Bundle], vectors: np.ndarray, ids: np.ndarray, previous: store.IndexData | None
) -> tuple[vectors_.VectorStore, str]:
    """Update the previous build's vector index in place of a rebuild when its kind still fits: only
    removed and new sentences touch it, and an IVF index keeps its trained quantiser."""
    kind = vectors_.choose(config, len(ids))
    if kind == "milvus":  # a new collection per build: the live one is never changed before publishing
        milvus = vectors_.MilvusStore(config, vectors.shape[1], new=True)
        try:
            milvus.add(ids, vectors)
        except BaseException:
            milvus.discard()
            raise
        return milvus, kind
    folder = store.current_build(config.index_path) if previous is not None else None
    if previous is not None and folder is not None and previous.manifest.get("index_type") == kind:
        try:
            dense = vectors_.FaissStore.load_writable(folder, kind, config)
        except RuntimeError as e:
            log.warning("could not reuse the vector index (%s); building it again", e)
        else:
            old_ids = previous.sentence_ids
            dense.delete(np.setdiff1d(old_ids, ids, assume_unique=True))
            fresh = ~np.isin(ids, old_ids, assume_unique=True)
            dense.add(ids[fresh], vectors[fresh])
            return dense, kind
    sample = vectors
    if kind.startswith("ivf") and len(vectors) > vectors_.training_size(len(ids)):
        size = vectors_.training_size(len(ids))
        sample = vectors[np.sort(np.random.default_rng(0).choice(len(vectors), size, replace=False))]
    dense = vectors_.FaissStore.create(config, vectors.shape[1], kind, sample, len(ids))
    dense.add(ids, vectors)
    return dense, kind


def _publish(
    config: Config,
    roots: Sequence[Path],
    bundles: Sequence[Bundle],
    report: BuildReport,
    excluded: set[str],
    previous: store.IndexData | None,
) -> None:
    """Assemble the bundles into one index and publish it. Call under the lock."""
    dimension = get_embedder(config).dimension
    next_id = int(previous.manifest.get("next_id", 0)) if previous is not None else 0
    for b in bundles:
        if b.ids is None or previous is None:
            b.ids = np.arange(next_id, next_id + len(b.spans), dtype=np.int64)
            next_id += len(b.spans)
    chunks, spans, vectors = _assemble(bundles, dimension)
    ids = np.concatenate([b.ids for b in bundles]).astype(np.int64) if bundles else np.zeros(0, np.int64)
    dense, kind = _vector_store(config, bundles, vectors, ids, previous)
    manifest = {
        "settings": settings(config),
        "dimension": dimension,
        "roots": [documents.display_source(r) for r in roots],
        "files": {b.record["source"]: b.file for b in bundles},
        "skipped": {
            source: {"reason": why, **_stat(documents.resolve_source(source))} for source, why in report.skipped
        },
        "excluded": sorted(excluded),
        "counts": {"documents": len(bundles), "chunks": len(chunks), "sentences": len(spans)},
        "index_type": kind,
        "next_id": next_id,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    headings = {b.record["source"]: b.record.get("heading") for b in bundles}
    data = store.IndexData(
        manifest=manifest,
        documents=[b.record for b in bundles],
        chunks=chunks,
        dense=dense,
        sentence_spans=spans,
        sentence_vectors=vectors,
        bm25=build_bm25([passage_text(c, headings[c.source]) for c in chunks]),
        sentence_ids=ids,
        words=spelling.count_words(c.text for c in chunks),
    )
    try:
        store.write(config.index_path, data)
    except BaseException:
        dense.discard()
        raise
    dense.publish()
    _collect_texts(config, data.documents)
    _fill_counts(report, bundles)


def remove(config: Config, sources: Sequence[str]) -> BuildReport:
    """Take documents out of the index. A file in the uploads folder is deleted; any other is excluded
    from later runs until it is named to ``rag index`` again."""
    started = time.perf_counter()
    index_dir = config.index_path
    with store.locked(index_dir):
        data = store.read(index_dir, config)
        if data is None:
            raise CorpusError(f"there is no index in {index_dir} to remove documents from")
        old = _old_bundles(data)
        wanted = [documents.display_source(Path(s)) if Path(s).exists() else s for s in sources]
        missing = [s for s in wanted if s not in old]
        if missing:
            raise CorpusError(f"{missing[0]} is not in the index in {index_dir}; `rag ls` lists what is")
        uploads = uploads_dir(config).resolve()
        excluded = set(data.manifest.get("excluded", []))
        for source in wanted:
            path = documents.resolve_source(source).resolve()
            if path.is_relative_to(uploads):
                path.unlink(missing_ok=True)
            else:
                excluded.add(source)
        report = BuildReport(index_dir=str(index_dir), reason="rag rm", removed=len(wanted))
        report.skipped = [(s, e["reason"]) for s, e in data.manifest.get("skipped", {}).items()]
        roots = [documents.resolve_source(r) for r in data.manifest.get("roots", [])]
        kept = [b for s, b in old.items() if s not in wanted]
        report.unchanged = len(kept)
        _publish(config, roots, kept, report, excluded, data)
    report.seconds = time.perf_counter() - started
    return report


def _fill_counts(report: BuildReport, bundles: Sequence[Bundle]) -> None:
    report.documents = len(bundles)
    report.chunks = sum(len(b.chunks) for b in bundles)
    report.sentences = sum(len(b.spans) for b in bundles)


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
        "heading": doc.heading,
        "display_title": doc.display_title,
        "author": doc.author,
        "date": doc.date,
        "sha256": doc.sha256,
        "sections": [[s.start, s.end, s.kind, s.label] for s in doc.sections],
        "pages": [list(p) for p in doc.pages],
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
        report = build(config, progress=progress, if_stale=True)
        for _, why in report.skipped:
            log.warning("skipped %s", why)
    data = store.read(config.index_path, config)
    if data is None:
        raise IndexCorruptError(f"the index in {config.index_path} vanished while loading; {store.REBUILD_HINT}")
    return data
