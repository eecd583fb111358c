"""Embedding a build's sentences: in batches of similar length while the next files are still being
parsed, with the vectors already computed kept in a cache that is checkpointed to disk, so a stopped or
killed build resumes where it was."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence

import numpy as np

from .config import Config
from .embedding import Embedder, describe, get_embedder, vector_family

log = logging.getLogger(__name__)

BATCH = 128

Progress = Callable[[str, int, int], None]


def _key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).hexdigest().encode()


class EmbeddingCache:
    """Vectors already computed, keyed by sentence text: carried over from changed documents, and
    checkpointed to disk while a long build runs, so a stopped or killed build resumes where it was."""

    CHECKPOINT = 2048

    def __init__(self, config: Config) -> None:
        family = f"{vector_family(config.embedder)}|{config.embedding_model}"
        model = hashlib.sha1(family.encode()).hexdigest()[:12]
        self.folder = config.index_path / "cache" / f"embeddings-{model}"
        self.every_s = config.checkpoint_s
        self.vectors: dict[bytes, np.ndarray] = {}
        self.resumed = 0
        for partial in self.folder.glob("partial-*.npz") if self.folder.is_dir() else ():
            partial.unlink(missing_ok=True)  # a shard being written when the build was killed
        for shard in sorted(self.folder.glob("shard-*.npz")) if self.folder.is_dir() else ():
            try:
                with np.load(shard, allow_pickle=False) as data:
                    self.vectors.update(zip(data["keys"].tolist(), data["vectors"], strict=True))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                shard.unlink(missing_ok=True)

    def add(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.vectors.update(zip((_key(t) for t in texts), vectors, strict=True))

    def checkpoint(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        if not len(texts):
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"{time.time_ns()}.npz"
            tmp = self.folder / f"partial-{name}"  # never matches "shard-*": a half-written shard is never read
            np.savez(tmp, keys=np.array([_key(t) for t in texts], dtype="S40"), vectors=vectors)
            os.replace(tmp, self.folder / f"shard-{name}")
        except OSError as e:
            log.warning("could not checkpoint embeddings (%s); a stopped build would start over", e)

    def clear(self) -> None:
        shutil.rmtree(self.folder.parent, ignore_errors=True)

    def get(self, text: str, dimension: int) -> np.ndarray | None:
        hit = self.vectors.get(_key(text))
        return hit if hit is not None and len(hit) == dimension else None


class Embedding:
    """The sentences of freshly parsed documents, embedded in batches of similar length while the next
    files are still being parsed; vectors already in ``cache`` are not computed again."""

    def __init__(self, config: Config, cache: EmbeddingCache, progress: Progress | None) -> None:
        self.config, self.cache, self.progress = config, cache, progress
        self.vectors: list[np.ndarray] = []
        self.missing: list[int] = []  # per document: sentences still to embed
        self.passages: list[int] = []
        self.pending: list[tuple[int, int, str]] = []  # (document, row, text)
        self.unsaved: list[tuple[str, np.ndarray]] = []
        self.computed = self.done = self.total = 0
        self.last_save = time.monotonic()
        self._embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        """Loaded on first use: a build with nothing new to embed never loads a model."""
        if self._embedder is None:
            self._embedder = get_embedder(self.config)
            log.info("embedding with %s on the %s", self.config.embedding_model, describe(self.config))
        return self._embedder

    def add(self, texts: Sequence[str], passages: int) -> int:
        """Queue one document's sentences; returns its slot in what :meth:`finish` returns."""
        slot, dimension = len(self.vectors), self.embedder.dimension
        out = np.zeros((len(texts), dimension), dtype=np.float32)
        misses = 0
        for row, text in enumerate(texts):
            hit = self.cache.get(text, dimension)
            if hit is None:
                self.pending.append((slot, row, text))
                misses += 1
            else:
                out[row] = hit
        self.vectors.append(out)
        self.missing.append(misses)
        self.passages.append(passages)
        self.total += passages
        self._finished(slot)
        while len(self.pending) >= 2 * BATCH:
            self._run(2 * BATCH)
        return slot

    def finish(self) -> list[np.ndarray]:
        while self.pending:
            self._run(2 * BATCH)
        self._save(force=True)
        return self.vectors

    def _run(self, n: int) -> None:
        batch, self.pending = self.pending[:n], self.pending[n:]
        vectors = self.embedder.embed([t for _, _, t in batch], "document")
        for (slot, row, text), vector in zip(batch, vectors, strict=True):
            self.vectors[slot][row] = vector
            self.unsaved.append((text, vector))
            self.missing[slot] -= 1
            self._finished(slot)
        self.computed += len(batch)
        self._save()

    def _finished(self, slot: int) -> None:
        if self.missing[slot] == 0:
            self.missing[slot] = -1
            self.done += self.passages[slot]
            if self.progress:
                self.progress("embedding passages", self.done, self.total)

    def _save(self, force: bool = False) -> None:
        due = len(self.unsaved) >= EmbeddingCache.CHECKPOINT or time.monotonic() - self.last_save >= self.cache.every_s
        if self.unsaved and (due or force):
            texts = [t for t, _ in self.unsaved]
            self.cache.checkpoint(texts, np.stack([v for _, v in self.unsaved]))
            self.unsaved, self.last_save = [], time.monotonic()
