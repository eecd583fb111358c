"""Find passages for a question: dense (FAISS) and lexical (BM25) search, fused by reciprocal rank.

Readers' comments rank below the article's own text: their fused score is scaled by
``comment_weight``.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer

from .config import Config
from .errors import UnknownNameError
from .store import IndexData
from .types import COMMENT, Passage

MODES = ("hybrid", "dense", "bm25")
STOPWORDS = "en"


@functools.cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, stemmed terms without stopwords: the lexical view shared by BM25 and the answerer."""
    return bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=_stemmer(), return_ids=False, show_progress=False)


def build_bm25(texts: Sequence[str]) -> bm25s.BM25:
    tokens = bm25s.tokenize(list(texts), stopwords=STOPWORDS, stemmer=_stemmer(), show_progress=False)
    model = bm25s.BM25()
    model.index(tokens, show_progress=False)
    return model


@dataclass(frozen=True)
class Query:
    text: str
    vector: np.ndarray
    terms: tuple[str, ...]


class Retriever:
    def __init__(self, data: IndexData) -> None:
        self.data = data
        self.titles = {d["source"]: d["display_title"] for d in data.documents}
        self._lock = threading.Lock()
        scores = data.bm25.scores
        self._df = np.diff(np.asarray(scores["indptr"]))
        self._n_docs = int(scores["num_docs"])
        self._vocab = data.bm25.vocab_dict

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency over chunks; unseen terms count as rare."""
        i = self._vocab.get(term)
        df = int(self._df[i]) if i is not None and i < len(self._df) else 0
        return math.log(1 + (self._n_docs - df + 0.5) / (df + 0.5))

    def bm25_scores(self, terms: Sequence[str]) -> np.ndarray:
        if not terms or not any(t in self._vocab for t in terms):
            return np.zeros(len(self.data.chunks), dtype=np.float32)
        with self._lock:
            return np.asarray(self.data.bm25.get_scores(list(terms)), dtype=np.float32)

    def dense_search(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.data.dense.ntotal)
        if k == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores, ids = self.data.dense.search(vector.reshape(1, -1).astype(np.float32), k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def search(self, query: Query, config: Config) -> list[Passage]:
        if config.retrieval not in MODES:
            raise UnknownNameError("retrieval mode", config.retrieval, MODES)
        n = len(self.data.chunks)
        k = min(config.candidates, n)
        bm25_all = self.bm25_scores(query.terms)
        fused: dict[int, float] = {}
        dense_by_id: dict[int, float] = {}
        if config.retrieval in ("hybrid", "dense"):
            d_scores, d_ids = self.dense_search(query.vector, k)
            weight = config.dense_weight if config.retrieval == "hybrid" else 1.0
            for rank, (i, s) in enumerate(zip(d_ids.tolist(), d_scores.tolist(), strict=True)):
                dense_by_id[i] = s
                fused[i] = fused.get(i, 0.0) + weight / (config.rrf_k + rank + 1)
        if config.retrieval in ("hybrid", "bm25"):
            order = np.argsort(-bm25_all, kind="stable")[:k]
            weight = config.bm25_weight if config.retrieval == "hybrid" else 1.0
            for rank, i in enumerate(order.tolist()):
                if bm25_all[i] <= 0:
                    break
                fused[i] = fused.get(i, 0.0) + weight / (config.rrf_k + rank + 1)
        for i in fused:
            if self.data.chunks[i].kind == COMMENT:
                fused[i] *= config.comment_weight
        best = sorted(fused, key=lambda i: (-fused[i], i))[: config.top_k]
        passages = []
        for rank, i in enumerate(best):
            chunk = self.data.chunks[i]
            dense = dense_by_id.get(i)
            if dense is None:
                dense = float(self.data.dense.reconstruct(i) @ query.vector)
            passages.append(
                Passage(
                    chunk=chunk,
                    title=self.titles.get(chunk.source, chunk.source),
                    score=fused[i],
                    rank=rank + 1,
                    dense_score=dense,
                    bm25_score=float(bm25_all[i]),
                )
            )
        return passages
