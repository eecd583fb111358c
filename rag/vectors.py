"""The vector store: sentence vectors under stable ids, searchable by inner product.

The FAISS default picks its index by size: exact (flat) while small, then an inverted file
(IVF) of full vectors, memory-mapped from disk; for the very largest, IVF with product
quantisation at a byte per four dimensions, whose candidates are re-scored exactly against the
float16 vectors kept on disk (read on demand, never mapped), so recall stays high while resident
memory stays a fraction of the vectors' size. Every vector keeps a stable id, so an update removes
and adds just the vectors that changed, reusing the trained quantiser instead of rebuilding.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import weakref
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from .config import Config
from .errors import RagError, UnknownNameError

log = logging.getLogger(__name__)

INDEX_TYPES = ("auto", "flat", "ivfflat", "ivfpq", "hnsw")
FILE = "dense.faiss"


class VectorStore(Protocol):
    kind: str

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def delete(self, ids: np.ndarray) -> None: ...

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Scores and ids of the ``k`` nearest vectors (among ``allowed`` ids, when given), best first."""
        ...

    def persist(self, folder: Path) -> None: ...

    def publish(self) -> None:
        """The build holding this store is now the current one."""
        ...

    def discard(self) -> None:
        """The build that made this store will never be published."""
        ...


MIN_IVF = 10_000  # clustering and product quantisation need thousands of vectors to train on


def choose(config: Config, n: int) -> str:
    """Exact search while it is fast enough, then IVF, then IVF-PQ; an IVF on too few vectors stays flat."""
    if config.vector_store not in VECTOR_STORES:
        raise UnknownNameError("vector store", config.vector_store, VECTOR_STORES)
    if config.vector_store == "milvus":
        return "milvus"
    if config.index_type not in INDEX_TYPES:
        raise UnknownNameError("index type", config.index_type, INDEX_TYPES)
    if config.index_type.startswith("ivf") and n < MIN_IVF:
        log.warning("%d vectors are too few to train an IVF index (%d needed); using an exact index", n, MIN_IVF)
        return "flat"
    if config.index_type != "auto":
        return config.index_type
    if n <= config.flat_max:
        return "flat"
    return "ivfflat" if n <= config.ivfflat_max else "ivfpq"


def ivf_lists(total: int) -> int:
    return max(16, min(65536, int(4 * math.sqrt(max(1, total)))))


def training_size(total: int) -> int:
    """Vectors to train an IVF on: k-means wants about 39 per list, and the lists grow as 4 sqrt(n)."""
    return min(total, max(100_000, 39 * ivf_lists(total)))


class FaissStore:
    """FAISS with stable ids; ``exact`` holds full-precision vectors by row for re-scoring approximate hits."""

    def __init__(self, index: faiss.Index, kind: str, config: Config) -> None:
        self.index = index
        self.kind = kind
        self.refine = config.refine_factor
        self.exact: np.ndarray | None = None
        self.rows: np.ndarray | None = None
        if kind.startswith("ivf"):
            faiss.extract_index_ivf(index).nprobe = config.ivf_nprobe * (4 if kind == "ivfpq" else 1)
        if kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = config.hnsw_ef

    @classmethod
    def create(
        cls, config: Config, dimension: int, kind: str, sample: np.ndarray, total: int, pq_bytes: int | None = None
    ) -> FaissStore:
        """An empty index of ``kind``; IVF-PQ is trained on ``sample`` with about sqrt(``total``) lists."""
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        elif kind == "hnsw":
            index = faiss.IndexIDMap2(faiss.IndexHNSWFlat(dimension, config.hnsw_m, faiss.METRIC_INNER_PRODUCT))
        elif kind == "ivfflat":
            nlist = max(16, min(ivf_lists(total), len(sample) // 39))
            index = faiss.index_factory(dimension, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
            log.info("training IVF%d,Flat on %d vectors", nlist, len(sample))
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
        elif kind == "ivfpq":
            nlist = max(16, min(ivf_lists(total), len(sample) // 39))
            # a byte per four dimensions: at 384 dimensions, 96 bytes a vector (a quarter of int8)
            m = pq_bytes or next(m for m in range(max(1, dimension // 4), 0, -1) if dimension % m == 0)
            # "np": no polysemous training, which only serves Hamming-filtered search and costs minutes
            index = faiss.index_factory(dimension, f"IVF{nlist},PQ{m}np", faiss.METRIC_INNER_PRODUCT)
            log.info("training IVF%d,PQ%d on %d vectors", nlist, m, len(sample))
            index.train(np.ascontiguousarray(sample, dtype=np.float32))
        else:
            raise UnknownNameError("index type", kind, INDEX_TYPES)
        return cls(index, kind, config)

    @classmethod
    def load(cls, folder: Path, kind: str, config: Config) -> FaissStore:
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if kind.startswith("ivf") else 0
        return cls(faiss.read_index(str(folder / FILE), flags), kind, config)

    @classmethod
    def load_writable(cls, folder: Path, kind: str, config: Config) -> FaissStore:
        return cls(faiss.read_index(str(folder / FILE)), kind, config)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def delete(self, ids: np.ndarray) -> None:
        if len(ids):
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.ntotal)
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        want = min(self.ntotal, k * self.refine) if self.kind == "ivfpq" and self.exact is not None else k
        params = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
            params = (
                faiss.SearchParametersIVF(sel=selector)
                if self.kind.startswith("ivf")
                else faiss.SearchParameters(sel=selector)
            )
        scores, ids = self.index.search(q, want, params=params)
        scores, ids = scores[0], ids[0]
        keep = ids >= 0
        scores, ids = scores[keep], ids[keep]
        if want > k and self.exact is not None and self.rows is not None:
            rows = self.rows[ids]
            scores = np.asarray(self.exact[rows], dtype=np.float32) @ q[0]
            order = np.argsort(-scores, kind="stable")[:k]
            scores, ids = scores[order], ids[order]
        return scores[:k], ids[:k]

    def persist(self, folder: Path) -> None:
        faiss.write_index(self.index, str(folder / FILE))

    def attach(self, exact: np.ndarray, row_of: np.ndarray) -> None:
        """The stored vectors by row, and the row of each id, for exact re-scoring of approximate hits."""
        self.exact = exact
        self.rows = row_of

    def publish(self) -> None:
        """The index file lives in the build folder, which ``store.write`` publishes."""

    def discard(self) -> None:
        """An unpublished build folder is removed by ``store.write``."""


class VectorFile:
    """The rows of a 2-D ``.npy`` file, read on demand with ``pread``. Re-scoring touches a few
    random rows per query; a memory map would keep every page it ever touched resident, so a
    long-running server over millions of vectors would grow towards the file's size. Read this
    way, the rows live in the kernel's page cache, which is shared and reclaimable, not in the process."""

    def __init__(self, path: Path) -> None:
        with open(path, "rb") as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            self.offset = f.tell()
        if len(shape) != 2 or fortran:
            raise ValueError(f"{path} holds a {len(shape)}-d{' Fortran-order' if fortran else ''} array, not rows")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.shape[1] * self.dtype.itemsize
        self.fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self.fd)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: slice | int | np.ndarray | list[int]) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self._read(start, max(0, stop - start))
            key = np.arange(start, stop, step)
        if isinstance(key, int | np.integer):
            return self[[int(key)]][0]
        rows = np.asarray(key, dtype=np.int64).reshape(-1)
        rows = np.where(rows < 0, rows + len(self), rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"row out of range for {len(self)} vectors")
        if not len(rows):
            return np.empty((0, self.shape[1]), self.dtype)
        order = np.argsort(rows, kind="stable")
        ranked = rows[order]
        starts = np.flatnonzero(np.diff(ranked, prepend=-2) > 1)  # one read per run of consecutive rows
        firsts = ranked[starts]
        counts = np.diff(np.append(starts, len(ranked)))
        lasts = ranked[starts + counts - 1]
        sizes = lasts - firsts + 1
        pread, fd, size, offset = os.pread, self.fd, self.row_bytes, self.offset
        runs = zip(firsts.tolist(), sizes.tolist(), strict=True)
        blob = b"".join([pread(fd, n * size, offset + f * size) for f, n in runs])
        if len(blob) != int(sizes.sum()) * size:
            raise OSError("short read of vector rows (file truncated?)")
        block = np.frombuffer(blob, dtype=self.dtype).reshape(-1, self.shape[1])
        base = np.repeat(np.cumsum(sizes) - sizes - firsts, counts)
        out = np.empty((len(rows), self.shape[1]), self.dtype)
        out[order] = block[ranked + base]
        return out

    def _read(self, start: int, count: int) -> np.ndarray:
        want = count * self.row_bytes
        data = os.pread(self.fd, want, self.offset + start * self.row_bytes)
        if len(data) != want:
            raise OSError(f"short read of vector rows {start}..{start + count} (file truncated?)")
        return np.frombuffer(data, dtype=self.dtype).reshape(count, self.shape[1]).copy()

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        rows = self._read(0, len(self))
        return rows if dtype is None else rows.astype(dtype)

    def astype(self, dtype: np.dtype | type) -> np.ndarray:
        return self._read(0, len(self)).astype(dtype)


class MilvusStore:
    """Milvus (a server or cluster by URI, or Milvus Lite in a local file) behind the same protocol.

    Each build writes a collection of its own; ``publish`` then points the index's alias (the name
    other tools query) at it and drops the build before, so the live collection is never touched by
    a build that has not been published. Each published build keeps the name of its own collection,
    so a reader sees exactly the vectors its build wrote. Searches are exact (FLAT, inner product).
    """

    kind = "milvus"
    BATCH = 1000

    def __init__(self, config: Config, dimension: int, collection: str | None = None, new: bool = False) -> None:
        from pymilvus import MilvusClient
        from pymilvus.exceptions import MilvusException

        self.uri = config.milvus_uri or str(config.index_path / "milvus.db")
        self.alias = config.milvus_collection or "rag_" + _digest(str(config.index_path))
        self.collection = f"{self.alias}_{time.time_ns():x}" if new else collection or self.alias
        self.dimension = dimension
        self._errors = (MilvusException,)
        try:
            self.client = MilvusClient(self.uri)
            if new:
                params = self.client.prepare_index_params()
                params.add_index(field_name="vector", index_type="FLAT", metric_type="IP")
                self.client.create_collection(
                    self.collection,
                    dimension=dimension,
                    metric_type="IP",
                    auto_id=False,
                    primary_field_name="id",
                    vector_field_name="vector",
                    id_type="int",
                    consistency_level="Strong",
                    index_params=params,
                )
            elif not self.client.has_collection(self.collection):
                raise OSError(f"the collection {self.collection} is gone; run `rag index --rebuild`")
        except (MilvusException, OSError, ValueError) as e:
            raise RagError(
                f"cannot use Milvus at {self.uri} ({e}); check RAG_MILVUS_URI (a file path for Milvus Lite, "
                "or http://host:19530 for a server) or set RAG_VECTOR_STORE=faiss"
            ) from None

    def publish(self) -> None:
        """Point the alias at this build's collection, then drop every earlier build's collection."""
        names = set(self.client.list_collections())
        if self.alias in names:  # a collection of the layout before aliases holds the alias's name
            self.client.drop_collection(self.alias)
        if self.alias in self.client.list_aliases().get("aliases", []):
            self.client.alter_alias(self.collection, self.alias)
        else:
            self.client.create_alias(self.collection, self.alias)
        for name in names:
            if name.startswith(self.alias + "_") and name != self.collection:
                self.client.drop_collection(name)

    def discard(self) -> None:
        """A build that was not published leaves nothing behind."""
        with contextlib.suppress(*self._errors):
            self.client.drop_collection(self.collection)

    @property
    def ntotal(self) -> int:
        return int(self.client.get_collection_stats(self.collection)["row_count"])

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        for start in range(0, len(ids), self.BATCH):
            rows = [
                {"id": int(i), "vector": v.tolist()}
                for i, v in zip(ids[start : start + self.BATCH], vectors[start : start + self.BATCH], strict=True)
            ]
            self.client.upsert(self.collection, rows)

    def delete(self, ids: np.ndarray) -> None:
        for start in range(0, len(ids), self.BATCH):
            self.client.delete(self.collection, ids=[int(i) for i in ids[start : start + self.BATCH]])

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        where = "id in [" + ",".join(str(int(i)) for i in allowed) + "]" if allowed is not None else ""
        hits = self.client.search(
            self.collection,
            data=[np.asarray(query, dtype=np.float32).reshape(-1).tolist()],
            limit=min(k, 16384),
            filter=where,
            search_params={"metric_type": "IP"},
        )[0]
        return (
            np.asarray([h["distance"] for h in hits], dtype=np.float32),
            np.asarray([h["id"] for h in hits], dtype=np.int64),
        )

    def persist(self, folder: Path) -> None:
        self.client.flush(self.collection)
        where = {"uri": self.uri, "collection": self.collection, "alias": self.alias}
        (folder / MILVUS_FILE).write_text(json.dumps(where) + "\n")

    def attach(self, exact: np.ndarray, row_of: np.ndarray) -> None:
        """Milvus searches exactly; nothing to re-score."""


MILVUS_FILE = "milvus.json"
VECTOR_STORES = ("faiss", "milvus")


def load(folder: Path, kind: str, config: Config, dimension: int) -> VectorStore:
    """The vector store a published build names, opened for searching."""
    if kind == "milvus":
        where = json.loads((folder / MILVUS_FILE).read_text(encoding="utf-8"))
        config = config.replace(milvus_uri=where["uri"], milvus_collection=where.get("alias", where["collection"]))
        return MilvusStore(config, dimension, collection=where["collection"])
    return FaissStore.load(folder, kind, config)


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha1(text.encode()).hexdigest()[:12]
