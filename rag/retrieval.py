"""Find passages for a question: dense (FAISS) and lexical (BM25) search, fused by reciprocal rank.

Dense search runs over sentences and scores each chunk by its best sentence, which finds
the answer-bearing passage more often than one vector per chunk. Readers' comments rank
below the article's own text (their fused score is scaled by ``comment_weight``) unless
the question asks about comments or names the commenter.
"""

from __future__ import annotations

import functools
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import bm25s
import numpy as np
import Stemmer

from .config import Config
from .direct import asks_definition, asks_expansion, asks_of_article, attribution, definitions, expansion
from .errors import UnknownNameError
from .rerank import get_reranker
from .store import IndexData
from .types import COMMENT, Passage

MODES = ("hybrid", "dense", "bm25")
DEFINITION_CHUNKS = 200  # an article defines an abbreviation near its start; a long PDF is not read whole
LEXICAL_VERSION = 2  # bump when tokenize() changes: BM25 postings must be rebuilt to match
STOPWORDS = "en"
CREDITS_KEPT = 256  # articles' credit lines kept for "…, according to X?"
SPELLING_ARTICLES = 8  # the first articles using an abbreviation that are read for where it is spelt out
SPELT_KEPT = 1024
SHORT_FORM = re.compile(r"\b[A-Z][A-Z0-9&]*[A-Z]s?\b")  # LMCs, NHS, IPCC
ASKS_ABOUT_COMMENTS = re.compile(r"\b(?:comments?|commenters?|commented|readers?)\b", re.IGNORECASE)


@functools.cache
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def fold(text: str) -> str:
    """Accents and compatibility forms folded, so "Besancon" finds "Besançon" and "ﬁle" finds "file"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_TERMS: dict[str, tuple[str, ...]] = {}
_TERMS_LIMIT = 100_000


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased, accent-folded, stemmed terms without stopwords: the lexical view of BM25 and the answerer.
    Each text's terms are kept (up to ``_TERMS_LIMIT`` texts): every question re-reads the same candidate
    sentences, and folding and stemming them again was a tenth of ``ask()`` outside the models."""
    known = {t: _TERMS.get(t) for t in texts}
    missing = [t for t, terms in known.items() if terms is None]
    if missing:
        made = bm25s.tokenize(
            [fold(t) for t in missing], stopwords=STOPWORDS, stemmer=_stemmer(), return_ids=False, show_progress=False
        )
        known.update((t, tuple(terms)) for t, terms in zip(missing, made, strict=True))
        if len(missing) <= _TERMS_LIMIT:  # a whole corpus tokenised at once is not kept
            if len(_TERMS) + len(missing) > _TERMS_LIMIT:
                _TERMS.clear()
            _TERMS.update((t, known[t]) for t in missing)
    return [list(known[t]) for t in texts]


def build_bm25(texts: Sequence[str]) -> bm25s.BM25:
    tokens = bm25s.tokenize([fold(t) for t in texts], stopwords=STOPWORDS, stemmer=_stemmer(), show_progress=False)
    model = bm25s.BM25()
    model.index(tokens, show_progress=False)
    return model


@dataclass(frozen=True)
class Query:
    text: str
    vector: np.ndarray
    terms: tuple[str, ...]
    # the question with its abbreviations spelt out ("Local Medical Committees" for "LMCs"): searched beside it, each
    # passage scoring the better of the two, when the question as asked finds no answer
    search: Query | None = None


@functools.lru_cache(maxsize=256)
def credited_terms(question: str) -> frozenset[str]:
    """The terms of whom an "according to …" clause credits that the rest of the question does not use."""
    found = attribution(question)
    if found is None:
        return frozenset()
    who, rest = found
    return frozenset(tokenize([who])[0]) - set(tokenize([rest])[0])


@functools.lru_cache(maxsize=4096)
def commenter_terms(label: str | None) -> frozenset[str]:
    """The terms of the name a comment's label gives ("Reader's comment by Vinci Ho"), else none."""
    name = label.partition(" by ")[2] if label else ""
    return frozenset(tokenize([name])[0]) if name else frozenset()


class Retriever:
    def __init__(self, data: IndexData) -> None:
        self.data = data
        self.titles = {d["source"]: d["display_title"] for d in data.documents}
        self._lock = threading.Lock()
        scores = data.bm25.scores
        self._df = np.diff(np.asarray(scores["indptr"]))
        self._n_docs = int(scores["num_docs"])
        self._vocab = data.bm25.vocab_dict
        df = self._df.astype(np.float64)
        self._idf = np.log1p((self._n_docs - df + 0.5) / (df + 0.5)).tolist()  # per term id; a list reads fastest
        self._idf_unseen = math.log1p((self._n_docs + 0.5) / 0.5)
        pairs = sorted((c.first_sentence + j, c.id) for c in data.chunks for j in range(len(c.sentences)))
        self._sentence_chunk = np.asarray([cid for _, cid in pairs], dtype=np.int64)
        self._credits: dict[tuple[str, frozenset[str]], tuple[frozenset[str], str]] = {}
        self._spelt: dict[str, str | None] = {}
        self._sentence_ptr = np.searchsorted(
            np.asarray([sid for sid, _ in pairs], dtype=np.int64), np.arange(len(data.sentence_spans) + 1)
        )

    def credit(self, source: str, credited: frozenset[str]) -> tuple[frozenset[str], str]:
        """Which of the credited terms the article names anywhere, and the line that names most of them: the
        whole article speaks for whom it credits (a byline, a sign-off), not only the sentence that names
        them. Kept: retrieval and the answerer both ask it of the same question."""
        key = (source, credited)
        if key not in self._credits:
            if len(self._credits) >= CREDITS_KEPT:
                self._credits.clear()
            found: set[str] = set()
            best, line = 0, ""
            for cid in self.data.chunks_of.get(source, ()):
                chunk = self.data.chunks[cid]
                texts = [chunk.text[a - chunk.start : b - chunk.start].strip() for a, b in chunk.sentences]
                for text, terms in zip(texts, tokenize(texts), strict=True):
                    named = credited.intersection(terms)
                    found |= named
                    if len(named) > best:
                        best, line = len(named), text
            self._credits[key] = (frozenset(found), line)
        return self._credits[key]

    def spelt_out(self, short: str) -> str | None:
        """What the documents spell ``short`` out as ("Local Medical Committees" for "LMCs"), read from the
        first articles that use it, or ``None``: a question that says "LMCs" where the answer's sentence says
        "Local Medical Committees" shares no word with it there. A two-letter abbreviation counts only where
        it is defined in brackets ("United Nations (UN)"): too many names have its initials. Kept."""
        if short not in self._spelt:
            if len(self._spelt) >= SPELT_KEPT:
                self._spelt.clear()
            self._spelt[short] = self._find_spelling(short)
        return self._spelt[short]

    def _find_spelling(self, short: str) -> str | None:
        names = sum(c.isupper() for c in short) >= 3
        forms = {short, short[:-1]} if short.endswith("s") else {short}
        ids = sorted({i for form in forms for i in self.chunks_with_all(tokenize([form])[0])})
        for source in list(dict.fromkeys(self.data.chunks[i].source for i in ids))[:SPELLING_ARTICLES]:
            if found := self._defined_in(source, short, names):
                return found[1]
        return None

    def chunks_with_all(self, terms: Sequence[str] | set[str]) -> list[int]:
        """The chunks that hold every one of ``terms``, in corpus order (BM25's postings, rarest first)."""
        scores = self.data.bm25.scores
        postings = []
        for term in set(terms):
            t = self._vocab.get(term)
            if t is None or t >= len(self._df):
                return []
            postings.append(np.asarray(scores["indices"][scores["indptr"][t] : scores["indptr"][t + 1]]))
        if not postings:
            return []
        postings.sort(key=len)
        ids = postings[0]
        for other in postings[1:]:
            ids = np.intersect1d(ids, other, assume_unique=True)
        return sorted(int(i) for i in ids)

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency over chunks; unseen terms count as rare."""
        i = self._vocab.get(term)
        return self._idf[i] if i is not None and i < len(self._idf) else self._idf_unseen

    def bm25_scores(self, terms: Sequence[str]) -> np.ndarray:
        if not terms or not any(t in self._vocab for t in terms):
            return np.zeros(len(self.data.chunks), dtype=np.float32)
        with self._lock:
            return np.asarray(self.data.bm25.get_scores(list(terms)), dtype=np.float32)

    def dense_search(self, vector: np.ndarray, k: int) -> dict[int, float]:
        """The ``k`` best chunks by their best-matching sentence, with that sentence's cosine."""
        n = self.data.dense.ntotal
        if n == 0 or k <= 0:
            return {}
        want = min(n, max(4 * k, 64))
        while True:
            scores, ids = self.data.dense.search(vector, want)
            known = (ids >= 0) & (ids < len(self.data.row_of))  # a store may hold ids newer than this build
            best: dict[int, float] = {}
            for sid, score in zip(self.data.row_of[ids[known]].tolist(), scores[known].tolist(), strict=True):
                if sid < 0:
                    continue
                for cid in self._sentence_chunk[self._sentence_ptr[sid] : self._sentence_ptr[sid + 1]].tolist():
                    best.setdefault(cid, score)
            if len(best) >= k or want >= n:
                return dict(sorted(best.items(), key=lambda kv: -kv[1])[:k])
            want = min(n, want * 4)

    def chunk_dense_score(self, chunk_id: int, vector: np.ndarray) -> float:
        chunk = self.data.chunks[chunk_id]
        rows = self.data.sentence_vectors[chunk.first_sentence : chunk.first_sentence + len(chunk.sentences)]
        return float(np.max(np.asarray(rows, dtype=np.float32) @ vector)) if len(rows) else 0.0

    def search(self, query: Query, config: Config) -> list[Passage]:
        if config.retrieval not in MODES:
            raise UnknownNameError("retrieval mode", config.retrieval, MODES)
        n = len(self.data.chunks)
        k = min(config.candidates, n)
        bm25_all = self.bm25_scores(query.terms)
        if query.search is not None:
            bm25_all = np.maximum(bm25_all, self.bm25_scores(query.search.terms))
        fused: dict[int, float] = {}
        dense_by_id: dict[int, float] = {}
        if config.retrieval in ("hybrid", "dense"):
            dense_by_id = self.dense_search(query.vector, k)
            if query.search is not None:
                for i, score in self.dense_search(query.search.vector, k).items():
                    if score > dense_by_id.get(i, -2.0):
                        dense_by_id[i] = score
                dense_by_id = dict(sorted(dense_by_id.items(), key=lambda kv: -kv[1])[:k])
            weight = config.dense_weight if config.retrieval == "hybrid" else 1.0
            for rank, i in enumerate(dense_by_id):
                fused[i] = fused.get(i, 0.0) + weight / (config.rrf_k + rank + 1)
        if config.retrieval in ("hybrid", "bm25"):
            order = np.argsort(-bm25_all, kind="stable")[:k]
            weight = config.bm25_weight if config.retrieval == "hybrid" else 1.0
            for rank, i in enumerate(order.tolist()):
                if bm25_all[i] <= 0:
                    break
                fused[i] = fused.get(i, 0.0) + weight / (config.rrf_k + rank + 1)
        if not ASKS_ABOUT_COMMENTS.search(query.text):
            asked = set(query.terms)
            for i in fused:
                chunk = self.data.chunks[i]
                if chunk.kind == COMMENT and not commenter_terms(chunk.label) & asked:  # "What did Vinci Ho say?"
                    fused[i] *= config.comment_weight
        order = sorted(fused, key=lambda i: (-fused[i], i))
        if config.reranker and order:
            leaders = order[: max(config.rerank_candidates, config.top_k)]
            scores = get_reranker(config.reranker).score(query.text, [self.data.chunks[i].text for i in leaders])
            order = [leaders[j] for j in np.argsort(-scores, kind="stable")] + order[len(leaders) :]
        best = order[: config.top_k]
        if asks_of_article(query.text):
            best = self._with_heads(best, fused)[: config.top_k]
        elif acronym := asks_expansion(query.text):
            best = self._with_definitions(best, fused, acronym)[: config.top_k]
        elif credited := credited_terms(query.text):
            best = self._with_credited(best, fused, query.text, credited)[: config.top_k]
        elif (thing := asks_definition(query.text)) and (pattern := definitions(query.text)):
            best = self._with_defining(best, fused, thing, pattern)[: config.top_k]
        passages = []
        for rank, i in enumerate(best):
            chunk = self.data.chunks[i]
            dense = dense_by_id.get(i)
            if dense is None:
                dense = self.chunk_dense_score(i, query.vector)
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

    def _with_heads(self, best: list[int], fused: dict[int, float]) -> list[int]:
        """For "who wrote…" or "when was… published", each article's first chunk, where its byline and
        dateline sit: the question names what the piece is about, which a later passage matches ("Who
        wrote the piece about the lifeboat station?")."""
        return self._with_article_chunk(best, fused, self.data.head_of.get)

    def _with_definitions(self, best: list[int], fused: dict[int, float], acronym: str) -> list[int]:
        """For "what does LMC stand for?", the passage of each retrieved article that spells the acronym out:
        the definition shares no word with the question, and an article defines its abbreviations once,
        often far from where the question's words match."""

        def defining(source: str) -> int | None:
            found = self._defined_in(source, acronym)
            return found[0] if found else None

        return self._with_article_chunk(best, fused, defining)

    def _with_defining(
        self, best: list[int], fused: dict[int, float], thing: str, pattern: re.Pattern[str]
    ) -> list[int]:
        """For "What is Cargo?", the passage of each retrieved article whose sentence defines it ("Cargo is
        Rust’s build system and package manager."): where every passage of a manual names Cargo, the one
        that says what it is need not rank among the best."""
        word = thing.split()[0].lower()

        def defining(source: str) -> int | None:
            found = self._first_sentence(source, lambda s: word in s.lower() and pattern.match(s) is not None)
            return found[0] if found else None

        return self._with_article_chunk(best, fused, defining)

    def _defined_in(self, source: str, short: str, names: bool = True) -> tuple[int, str] | None:
        """The chunk of an article that spells ``short`` out, and the words it spells it out in."""

        def spelt(sentence: str) -> str | None:
            found = expansion(short, sentence, names=names)
            return sentence[found[0] : found[1]] if found else None

        return self._first_sentence(source, spelt)

    def _first_sentence(self, source: str, test: Callable[[str], Any]) -> tuple[int, Any] | None:
        """The chunk of an article's first sentence that ``test`` finds something in (up to
        ``DEFINITION_CHUNKS`` chunks), and what it found."""
        for j in self.data.chunks_of.get(source, ())[:DEFINITION_CHUNKS]:
            chunk = self.data.chunks[j]
            for a, b in chunk.sentences:
                if found := test(chunk.text[a - chunk.start : b - chunk.start]):
                    return j, found
        return None

    def _with_credited(
        self, best: list[int], fused: dict[int, float], question: str, credited: frozenset[str]
    ) -> list[int]:
        """For "…, according to X?", the passage that best matches the rest of the question in each retrieved
        article naming X: X's words pull in the passages that name X, while an opinion piece names its
        writer once, far from where it says what the question asks."""
        found = attribution(question)
        scores = self.bm25_scores(tokenize([found[1]])[0]) if found else None
        if scores is None:
            return best

        def matching(source: str) -> int | None:
            ids = self.data.chunks_of.get(source, [])
            if not ids or not self.credit(source, credited)[0]:
                return None
            j = max(ids, key=lambda i: scores[i])
            return j if scores[j] > 0 else None

        return self._with_article_chunk(best, fused, matching)

    def _with_article_chunk(
        self, best: list[int], fused: dict[int, float], pick: Callable[[str], int | None]
    ) -> list[int]:
        """``best`` with the chunk ``pick`` names for each retrieved article right after that article's best
        passage; a chunk found no other way takes its article's score."""
        out: list[int] = []
        picked: dict[str, int | None] = {}
        for i in best:
            if i not in out:
                out.append(i)
            source = self.data.chunks[i].source
            if source not in picked:
                picked[source] = pick(source)
            extra = picked[source]
            if extra is not None and extra not in out:
                fused.setdefault(extra, fused[i])
                out.append(extra)
        return out
