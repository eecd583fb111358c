"""The on-disk index: FAISS vectors, BM25 postings, chunk records and a manifest.

Each build is written into its own folder and published by atomically replacing the
one-line ``CURRENT`` pointer, so a reader always sees a complete build and an
interrupted writer leaves the previous index untouched.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import vectors
from .config import Config
from .errors import IndexBusyError, IndexCorruptError, IndexWriteError
from .types import Chunk
from .vectors import VectorStore

if TYPE_CHECKING:
    from .spelling import Speller

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
POINTER = "CURRENT"
WORDS = "words.json"
LOCK = ".lock"
REBUILD_HINT = "rebuild it with `rag index --rebuild` (or delete the folder; the next question rebuilds it)"


@dataclass
class IndexData:
    """Everything a build produces, in memory."""

    manifest: dict[str, Any]
    documents: list[dict[str, Any]]
    chunks: list[Chunk]
    dense: VectorStore  # over sentence vectors: sentence-level matching finds answers better than whole chunks
    sentence_spans: np.ndarray
    sentence_vectors: np.ndarray | vectors.VectorFile  # a loaded index reads its rows from disk on demand
    bm25: Any
    sentence_ids: np.ndarray  # stable id of each sentence row, as the vector store knows it
    words: dict[str, int] | None = None  # the corpus's words and counts (rag/spelling.py); None: not stored

    def __post_init__(self) -> None:
        self.row_of = np.full(int(self.sentence_ids.max()) + 1 if len(self.sentence_ids) else 0, -1, np.int64)
        self.row_of[self.sentence_ids] = np.arange(len(self.sentence_ids))

    @functools.cached_property
    def speller(self) -> Speller:
        """The corpus's words, for reading a question's slips: built on the first question that needs it."""
        from .spelling import Speller, count_words

        return Speller(self.words if self.words is not None else count_words(c.text for c in self.chunks))

    @functools.cached_property
    def chunks_of(self) -> dict[str, list[int]]:
        """Each source's chunks in reading order: built on the first question that needs a whole article."""
        out: dict[str, list[int]] = {}
        for i, c in enumerate(self.chunks):
            out.setdefault(c.source, []).append(i)
        for ids in out.values():
            ids.sort(key=lambda i: self.chunks[i].start)
        return out

    @functools.cached_property
    def heading_of(self) -> dict[str, str]:
        """Each source's own title (or a file name made of words), "" where it has none: not the display
        title, which falls back to the opening words or the path."""
        return {d["source"]: (d.get("heading") or "").strip() for d in self.documents}

    @functools.cached_property
    def head_of(self) -> dict[str, int]:
        """Each source's first chunk, where its byline and dateline sit: built on the first question about
        a piece itself ("who wrote…"), not at every load."""
        return {source: ids[0] for source, ids in self.chunks_of.items()}


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())


def chunk_to_record(chunk: Chunk) -> dict[str, Any]:
    return {
        "source": chunk.source,
        "start": chunk.start,
        "end": chunk.end,
        "text": chunk.text,
        "kind": chunk.kind,
        "label": chunk.label,
        "n_tokens": chunk.n_tokens,
        "sentences": [list(s) for s in chunk.sentences],
        "first_sentence": chunk.first_sentence,
        "page": chunk.page,
    }


def record_to_chunk(i: int, r: dict[str, Any]) -> Chunk:
    return Chunk(
        id=i,
        source=r["source"],
        start=r["start"],
        end=r["end"],
        text=r["text"],
        kind=r["kind"],
        label=r["label"],
        n_tokens=r["n_tokens"],
        sentences=tuple((a, b) for a, b in r["sentences"]),
        first_sentence=r["first_sentence"],
        page=r.get("page"),
    )


_HELD = threading.local()


@contextlib.contextmanager
def locked(index_dir: Path, wait_s: float = 600.0) -> Iterator[None]:
    """One writer at a time per index folder; others wait, then see the finished build. A thread that
    holds the lock may take it again (adding uploads, then building, is one locked step)."""
    held: set[str] = _HELD.__dict__.setdefault("dirs", set())
    key = str(index_dir.resolve())
    if key in held:
        yield
        return
    with _exclusive(index_dir, wait_s):
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)


@contextlib.contextmanager
def _exclusive(index_dir: Path, wait_s: float) -> Iterator[None]:
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        handle = open(index_dir / LOCK, "a+")  # noqa: SIM115 - held open for the whole ``with`` below
    except OSError as e:
        raise IndexWriteError(
            f"cannot write the index at {index_dir}: {e.strerror or e}; "
            "set RAG_INDEX_DIR (or --index-dir) to a writable folder, or fix its permissions"
        ) from None
    deadline = time.monotonic() + wait_s
    with handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexBusyError(
                        f"the index at {index_dir} has been locked by another build for over {wait_s:.0f} s; "
                        "wait for it to finish, or stop that process"
                    ) from None
                time.sleep(0.2)
        for stale in index_dir.glob("build-*.tmp"):  # left by a writer that was killed; none runs now
            shutil.rmtree(stale, ignore_errors=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def current_build(index_dir: Path) -> Path | None:
    pointer = index_dir / POINTER
    if not pointer.exists():
        return None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise IndexCorruptError(f"the index pointer {pointer} cannot be read ({e}); {REBUILD_HINT}") from None
    build = index_dir / name
    if not name or "/" in name or not build.is_dir():
        raise IndexCorruptError(f"the index pointer {pointer} names a missing build {name!r}; {REBUILD_HINT}")
    return build


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    build = current_build(index_dir)
    if build is None:
        return None
    try:
        return json.loads((build / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexCorruptError(f"the index manifest in {build} is unreadable ({e}); {REBUILD_HINT}") from None


def write(index_dir: Path, data: IndexData) -> Path:
    """Write a complete build beside the current one, then publish it atomically. Call under ``locked``."""
    import bm25s  # noqa: F401 - imported for its save format

    name = time.strftime("build-%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:8]
    tmp = index_dir / (name + ".tmp")
    try:
        tmp.mkdir(parents=True)
        _write_json(tmp / "documents.json", data.documents)
        with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
            for chunk in data.chunks:
                f.write(json.dumps(chunk_to_record(chunk), ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        data.dense.persist(tmp)
        np.save(tmp / "sentence_ids.npy", data.sentence_ids)
        np.save(tmp / "sentence_spans.npy", data.sentence_spans)
        np.save(tmp / "sentence_vectors.npy", data.sentence_vectors.astype(np.float16))
        data.bm25.save(str(tmp / "bm25"), show_progress=False)
        if data.words is not None:
            _write_json(tmp / WORDS, data.words)
        _write_json(tmp / "manifest.json", data.manifest)
        _fsync_dir(tmp)
        final = index_dir / name
        os.replace(tmp, final)
        pointer_tmp = index_dir / (POINTER + ".tmp")
        pointer_tmp.write_text(name + "\n", encoding="utf-8")
        with open(pointer_tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(pointer_tmp, index_dir / POINTER)
        _fsync_dir(index_dir)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise IndexWriteError(
            f"cannot write the index at {index_dir}: {e.strerror or e}; "
            "set RAG_INDEX_DIR (or --index-dir) to a writable folder with free space"
        ) from None
    for old in index_dir.glob("build-*"):
        if old.name != name and not old.name.endswith(".tmp"):
            shutil.rmtree(old, ignore_errors=True)
    log.info("published index build %s in %s", name, index_dir)
    return final


def read(index_dir: Path, config: Config | None = None) -> IndexData | None:
    """Load the current build, or ``None`` when there is none; a damaged build raises ``IndexCorruptError``."""
    import bm25s

    build = current_build(index_dir)
    if build is None:
        return None
    try:
        manifest = json.loads((build / "manifest.json").read_text(encoding="utf-8"))
        documents = json.loads((build / "documents.json").read_text(encoding="utf-8"))
        with open(build / "chunks.jsonl", encoding="utf-8") as f:
            chunks = [record_to_chunk(i, json.loads(line)) for i, line in enumerate(f)]
        dense = vectors.load(build, manifest.get("index_type", "flat"), config or Config(), manifest["dimension"])
        sentence_ids = np.load(build / "sentence_ids.npy", allow_pickle=False)
        sentence_spans = np.load(build / "sentence_spans.npy", allow_pickle=False)
        sentence_vectors = vectors.VectorFile(build / "sentence_vectors.npy")
        bm25 = bm25s.BM25.load(str(build / "bm25"), show_progress=False, verbosity=0)
        words = json.loads((build / WORDS).read_text(encoding="utf-8")) if (build / WORDS).exists() else None
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
        raise IndexCorruptError(f"the index in {build} is damaged ({type(e).__name__}: {e}); {REBUILD_HINT}") from None
    if not len(sentence_spans) == len(sentence_vectors) == dense.ntotal:
        raise IndexCorruptError(f"the index in {build} has mismatched parts; {REBUILD_HINT}")
    data = IndexData(manifest, documents, chunks, dense, sentence_spans, sentence_vectors, bm25, sentence_ids, words)
    dense.attach(sentence_vectors, data.row_of)
    return data
