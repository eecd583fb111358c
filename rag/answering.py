"""Write an answer from retrieved passages. The default quotes the answer-bearing sentence verbatim.

The extractive answerer scores every sentence of the retrieved passages with a small
logistic model over evidence features (semantic and lexical match, expected answer
type, passage rank, a byline or definition that answers the question's form: ``rag.direct``)
and decides whether to answer at all with a second model over the best candidate's evidence.
Both models are learned from data by ``eval/train_answerer.py`` and shipped as JSON in
``rag/models/``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from . import calibration
from .config import Config
from .conversation import (
    SHORT_ANSWER_RE,
    about,
    carried,
    full_names,
    names_in_full,
    people,
    shifted,
    spliced,
    unshifted,
)
from .direct import asks_expansion, asks_of_article, direct_form, is_metadata, rest_of_list, said_as, trimmed
from .errors import UnknownNameError
from .reader import READER_DIR, Reader, get_reader, reader_precision
from .retrieval import Query, Retriever, commenter_terms, credited_terms, tokenize
from .store import IndexData
from .types import COMMENT, LEAD_SEP, Answer, Chunk, Citation, Passage

log = logging.getLogger(__name__)

MODEL_PATH = Path(__file__).parent / "models" / "extractive.json"
NOREADER_MODEL_PATH = Path(__file__).parent / "models" / "extractive-noreader.json"  # fitted without the reader
ABSTAIN_TEXT = "The documents don't say."

SENTENCE_FEATURES = (
    "dense_sentence",
    "dense_gap",
    "dense_passage",
    "inv_rank",
    "lex_recall",
    "lex_gap",
    "lex_recall_passage",
    "missing_idf",
    "missing_idf_passage",
    "novel",
    "type_match",
    "type_missing",
    "comment",
    "short",
    "direct",
)
RERANK_FEATURES = ("select_logit", "reader")
ANSWERABLE_FEATURES = (
    "select_logit",
    "select_margin",
    "reader",
    "reader_margin",
    "dense_sentence",
    "lex_recall",
    "dense_passage",
    "bm25_log",
    "missing_idf",
    "missing_idf_passage",
    "type_match",
    "type_missing",
    "direct",
)

_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|"
    "hundred|thousand|million|billion|trillion|dozen|half|third|quarter"
)
TYPE_PATTERNS = {
    "date": re.compile(
        rf"\b(?:1\d{{3}}|20\d{{2}})s?\b|\b(?:{_MONTHS})\b|\b\d{{1,2}}(?:st|nd|rd|th)\b|\bcentur(?:y|ies)\b|"
        r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today|tonight)\b",
        re.IGNORECASE,
    ),
    "number": re.compile(rf"\d|\b(?:{_NUMBER_WORDS})\b|%|£|\$|€", re.IGNORECASE),
    "name": re.compile(r"\b[A-Z][\w'’\-]*(?:\s+(?:of\s+|the\s+|de\s+|van\s+)?[A-Z][\w'’\-]*)*"),
}
QUESTION_TYPES = [
    ("date", re.compile(r"\bwhen\b|\bwhat (?:year|date|day|month|time|century|decade|period)\b", re.I)),
    (
        "number",
        re.compile(
            r"\bhow (?:many|much|long|old|far|large|big|high|tall|often|fast)\b|"
            r"\bwhat (?:number|percentage|proportion|share|amount|fraction|size)\b",
            re.I,
        ),
    ),
    ("name", re.compile(r"\bwho(?:m|se)?\b|\bwhere\b|\bwhich (?:person|company|organi[sz]ation|country|city)\b", re.I)),
]


# how much of a topic's words (idf-weighted) a sentence must hold to be quoted as what the documents say of it
TOPIC_COVERAGE = 0.6

WHO_RE = re.compile(r"^\W*who\b", re.I)
# how much less sure the reader may be of a person's name beside the sentence than of a span in it that
# names no one ("GP leader"), for the name to answer "who…?" (gold dev; eval/bench.py's held-out view)
WHO_SLACK = 3.0


class Answerer(Protocol):
    def answer(self, query: Query, passages: Sequence[Passage], exclude: Sequence[str] = ()) -> Answer:
        """Answer ``query`` from ``passages`` alone; ``exclude`` lists quotes already given in this chat."""
        ...


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    start: int
    end: int
    text: str
    features: dict[str, float]
    score: float = 0.0
    span: tuple[int, int] | None = None  # the reader's short answer inside the sentence (document offsets)
    support: tuple[int, int] | None = None  # the sentence the question matched, when the answer is its neighbour
    head: tuple[str, str, int] = ("", "", -1)  # its article's title and opening sentence, where that sentence ends


@dataclass(frozen=True)
class LogisticModel:
    names: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def logit(self, features: dict[str, float]) -> float:
        return self.bias + sum(w * features[n] for n, w in zip(self.names, self.weights, strict=True))


@dataclass(frozen=True)
class Models:
    select: LogisticModel
    rerank: LogisticModel
    answerable: LogisticModel
    threshold: float
    reader_candidates: int
    reader_spill: float | None = None  # how far a neighbour's span must beat the sentence's (None: never)


@functools.cache
def load_models(path: Path = MODEL_PATH) -> Models:
    """The sentence selector, the reranker over it and the reader, the answerability model and its threshold."""
    data = json.loads(path.read_text(encoding="utf-8"))
    expected = {"select": SENTENCE_FEATURES, "rerank": RERANK_FEATURES, "answerable": ANSWERABLE_FEATURES}
    models = {}
    for name, features in expected.items():
        if tuple(data[name]["features"]) != features:
            raise ValueError(f"{path} was trained on other features; retrain with eval/train_answerer.py")
        models[name] = LogisticModel(features, tuple(data[name]["weights"]), data[name]["bias"])
    return Models(
        threshold=float(data["threshold"]),
        reader_candidates=int(data["reader_candidates"]),
        reader_spill=None if data.get("reader_spill") is None else float(data["reader_spill"]),
        **models,
    )


def models_path(config: Config) -> Path:
    """A reader folder may carry the models fitted on its scores; those must travel with it. Without the
    reader (``reader_candidates=0``) the models fitted without one are used."""
    if config.reader_candidates == 0:
        return NOREADER_MODEL_PATH
    if config.reader_dir:
        bundled = Path(config.reader_dir).expanduser() / "extractive.json"
        if bundled.is_file():
            return bundled
    return MODEL_PATH


def question_type(question: str) -> str | None:
    for name, pattern in QUESTION_TYPES:
        if pattern.search(question):
            return name
    return None


def type_features(qtype: str | None, question: str, sentence: str) -> tuple[float, float]:
    """Whether the sentence offers something of the asked-for type that the question does not already say."""
    if qtype is None:
        return 0.0, 0.0
    asked = question.lower()
    for match in TYPE_PATTERNS[qtype].finditer(sentence):
        found = match.group(0)
        if qtype == "name" and (match.start() == 0 and " " not in found):
            continue
        if found.lower() not in asked:
            return 1.0, 0.0
    return 0.0, 1.0


def _weighted_recall(terms: set[str], have: set[str], idf: Callable[[str], float]) -> float:
    total = sum(idf(t) for t in terms)
    return sum(idf(t) for t in terms & have) / total if total else 0.0


def _missing_idf(terms: set[str], have: set[str], idf: Callable[[str], float], scale: float) -> float:
    """How rare the rarest question term absent from the text is: a missing rare term suggests a near miss."""
    return max((idf(t) for t in terms - have), default=0.0) / scale


def candidates(
    query: Query, passages: Sequence[Passage], data: IndexData, retriever: Retriever, question: str
) -> list[Candidate]:
    """Every distinct sentence of the passages, with its evidence features."""
    seen: dict[tuple[str, int], int] = {}
    spans: list[tuple[Passage, int, int, int]] = []
    for p in passages:
        for j, (a, b) in enumerate(p.chunk.sentences):
            key = (p.source, a)
            if key not in seen:
                seen[key] = len(spans)
                spans.append((p, a, b, p.chunk.first_sentence + j))
    texts = [p.chunk.text[a - p.chunk.start : b - p.chunk.start] for p, a, b, _ in spans]
    if not asks_of_article(question) and about(question) is None:  # a byline answers who wrote a piece (or of whom)
        kept = [i for i, t in enumerate(texts) if not is_metadata(t)]
        spans, texts = [spans[i] for i in kept], [texts[i] for i in kept]
        seen = {(p.source, a): i for i, (p, a, _, _) in enumerate(spans)}
    if not spans:
        return []
    vectors = np.asarray(data.sentence_vectors[[s[3] for s in spans]], dtype=np.float32)
    dense = vectors @ query.vector
    q_terms = set(query.terms)
    s_terms = [set(t) for t in tokenize(texts)]
    named = full_names(question)
    for i, (p, a, _, _) in enumerate(spans):
        if PRONOUN_LED_RE.match(texts[i]):
            s_terms[i] |= antecedents(p.chunk, a)
        if p.chunk.kind == COMMENT:  # its label names who wrote it: "Reader's comment by Vinci Ho"
            s_terms[i] |= commenter_terms(p.chunk.label)
        if named and (added := names_in_full(named, texts[i], p.chunk.text)):  # "Dr Dixon" is the Michael Dixon asked
            s_terms[i] |= set(tokenize([" ".join(x.text for x in added)])[0])
    p_terms = {
        p.chunk.id: set().union(*(s_terms[seen[(p.source, a)]] for a, _ in p.chunk.sentences if (p.source, a) in seen))
        for p in passages
    }
    forms = [direct_form(question, t) for t in texts]
    for i, form in enumerate(forms):
        if form and form.of_article:  # a byline is as good a match as its article's best sentence
            article = [p for p in passages if p.source == spans[i][0].source]
            s_terms[i] = set().union(*(p_terms[p.chunk.id] for p in article))
            rows = [seen[(p.source, a)] for p in article for a, _ in p.chunk.sentences if (p.source, a) in seen]
            dense[i] = dense[rows].max()
        elif form:  # a definition spells the abbreviation out: it says what the question names
            s_terms[i] |= set(tokenize([asks_expansion(question) or ""])[0])
    heads = {p.source: article_head(data, p) for p, _, _, _ in spans}  # one per article
    credited = credited_terms(question)
    if credited:
        credits = {source: retriever.credit(source, credited) for source in heads}
        for i, (p, _, _, _) in enumerate(spans):
            s_terms[i] |= credits[p.source][0]
        for source, (_, line) in credits.items():
            if line:
                heads[source] = (heads[source][0], line, -1)
    lex = [_weighted_recall(q_terms, t, retriever.idf) for t in s_terms]
    qtype = question_type(question)
    best_dense, best_lex = float(dense.max()), max(lex)
    scale = max(1.0, math.log(1 + len(data.chunks)))
    out = []
    for i, ((p, a, b, _), text) in enumerate(zip(spans, texts, strict=True)):
        match, missing = type_features(qtype, question, text)
        form = forms[i]
        features = {
            "dense_sentence": float(dense[i]),
            "dense_gap": float(dense[i]) - best_dense,
            "dense_passage": float(p.dense_score or 0.0),
            "inv_rank": 1.0 / p.rank,
            "lex_recall": lex[i],
            "lex_gap": lex[i] - best_lex,
            "lex_recall_passage": _weighted_recall(q_terms, p_terms[p.chunk.id], retriever.idf),
            "missing_idf": _missing_idf(q_terms, s_terms[i], retriever.idf, scale),
            "missing_idf_passage": _missing_idf(q_terms, p_terms[p.chunk.id], retriever.idf, scale),
            "novel": min(1.0, math.log1p(len(s_terms[i] - q_terms)) / math.log(30)),
            "type_match": match,
            "type_missing": missing,
            "comment": 1.0 if p.chunk.kind == COMMENT else 0.0,
            "short": 1.0 if len(text.split()) < 6 else 0.0,
            "direct": 1.0 if form else 0.0,
        }
        span = (a + form.start, a + form.end) if form else None
        out.append(Candidate(p, a, b, text, features, span=span, head=heads[p.source]))
    return out


# a sentence that opens with a word pointing back, or inside a quotation whose speaker it does not name: it
# does not stand alone as what the documents say of a topic
LEANS_BACK_RE = re.compile(r"^\W*(?:[‘'“\"]|(?:it|this|that|these|those|they|he|she|his|her|their|its|such)\b)", re.I)


def leans_back(sentence: str) -> bool:
    """Whether the sentence opens with a word pointing back or inside a quotation whose speaker it does not
    name (it opens with the quote mark, or only closes one: "…be in control of the polysystem agenda.'"),
    so it does not stand alone as what the documents say of a topic."""
    text = sentence.strip()
    closes = text.endswith(_CLOSING) and not any(q in text[:-1] for q in "‘“\"'")
    return bool(LEANS_BACK_RE.match(text)) or closes


_CLOSING = ("'", "’", "”", '"', ".'", ".’", '."', ".”")
PRONOUN_LED_RE = re.compile(r"^\W*(?:he|she|they|his|her|their|its)\b", re.I)
# not TYPE_PATTERNS["name"]: that one joins "of", "the", "de" and so takes "After the Revocation of the Edict…"
_NAME_RE = re.compile(r"\b[A-Z][\w'’\-]*(?:\s+[A-Z][\w'’\-]*)*")


def antecedents(chunk: Chunk, start: int) -> set[str]:
    """The names in the sentence before the one at ``start``: "He died in 1259 without a successor." is
    about the Möngke Khan the sentence before it names, and matches "When did Möngke Khan die?" as well."""
    before = [(a, b) for a, b in chunk.sentences if b <= start]
    if not before:
        return set()
    a, b = before[-1]
    sentence = chunk.text[a - chunk.start : b - chunk.start]
    names = [m.group(0) for m in _NAME_RE.finditer(sentence) if m.start() > 0 or " " in m.group(0)]
    return set(tokenize([" ".join(names)])[0]) if names else set()


def article_head(data: IndexData, passage: Passage) -> tuple[str, str, int]:
    """The title and opening sentence of the passage's article, and where that sentence ends. ``read``
    gives the reader the title always (a clipping is read with its headline) and the opening sentence
    when it holds a word of the question's that the reader's window lacks: a news piece often names whom
    it is by or about only there ("…, warns Dr Michelle Drage"), and the reader takes such a missing word
    as a sign that the window does not answer. Only then: an opening that restates the question draws
    the reader's attention to text it may not point at."""
    ids = data.chunks_of.get(passage.source)
    title = data.heading_of.get(passage.source, "")  # a title-less piece's lead words are no headline
    if not ids:
        return title, "", -1
    first = data.chunks[ids[0]]
    for a, b in first.sentences:
        sentence = first.text[a - first.start : b - first.start].strip()
        if sentence and sentence != title and len(sentence.split()) >= 4 and not is_metadata(sentence):
            return title, sentence, b
    return title, "", -1


def headline(asked: set[str], window: str, title: str, opening: str, opening_seen: bool) -> str:
    """What the reader reads before ``window`` (``article_head`` says why): the title unless the window
    holds it, and the opening sentence when the window does not reach it and it holds a term of the
    question's (``asked``) that the window lacks. Training reads its windows the same way
    (eval/train_reader.py --headlines)."""
    lacking = asked - set(tokenize([window])[0])
    wanted = opening and not opening_seen and lacking & set(tokenize([opening])[0])
    return "\n".join(t for t in (title if title not in window else "", opening if wanted else "") if t)


def answerable_features(ranked: Sequence[Candidate], passages: Sequence[Passage]) -> dict[str, float]:
    """Evidence for answering at all, read off the best candidate and how far it leads the rest. A leader
    the reader moved to its neighbour may now be the same sentence as the best: it is no rival, and
    counting it would make the best look unsure of itself."""
    top = ranked[0]
    others = [c for c in ranked[1:] if (c.passage.source, c.start) != (top.passage.source, top.start)]
    select = top.features["select_logit"]
    reader = top.features.get("reader", 0.0)
    read_others = [c.features["reader"] for c in others if "reader" in c.features]
    return {
        "select_logit": select,
        "select_margin": min(select - max((c.features["select_logit"] for c in others), default=select - 5.0), 5.0),
        "reader": reader,
        "reader_margin": min(reader - max(read_others, default=reader - 5.0), 5.0),
        "dense_sentence": top.features["dense_sentence"],
        "lex_recall": top.features["lex_recall"],
        "dense_passage": max(float(p.dense_score or 0.0) for p in passages),
        "bm25_log": math.log1p(max(float(p.bm25_score or 0.0) for p in passages)),
        "missing_idf": top.features["missing_idf"],
        "missing_idf_passage": top.features["missing_idf_passage"],
        "type_match": top.features["type_match"],
        "type_missing": top.features["type_missing"],
        "direct": top.features["direct"],
    }


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def _normalise(text: str) -> str:
    return " ".join(text.split()).lower()


class ExtractiveAnswerer:
    """Quote the sentence most likely to answer; abstain when the evidence is too weak."""

    name = "extractive"

    def __init__(self, config: Config, data: IndexData, retriever: Retriever) -> None:
        self.config = config
        self.data = data
        self.retriever = retriever
        self.models = load_models(models_path(config))
        self.threshold, _ = calibration.abstain_threshold(config, self.models.threshold, models_path(config))
        self.reader_candidates = (
            self.models.reader_candidates if config.reader_candidates is None else config.reader_candidates
        )

    def _selected(
        self, query: Query, passages: Sequence[Passage], excluded: Sequence[str], given: Sequence[str] = ()
    ) -> list[Candidate]:
        """Every candidate not already quoted in this chat (``excluded``, normalised), with the selector's
        logit, best first; a quoted sentence that holds a short answer ``given`` before (normalised) stays,
        since it may hold more: "What else does it plan?" after "… cut hospital activity by 10% … yet also
        plans a 10% cut in primary care spending" answered "hospital activity"."""
        cands = candidates(query, passages, self.data, self.retriever, query.text)
        cands = [
            c
            for c in cands
            if not any(_normalise(c.text) in e for e in excluded)
            or any(_normalise(g) in _normalise(c.text) for g in given)
        ]
        for i, c in enumerate(cands):  # "Who else?" after "community services": the rest of its list answers
            if rest := next((r for g in given if (r := rest_of_list(c.text, g))), None):
                cands[i] = dataclasses.replace(
                    c, span=(c.start + rest[0], c.start + rest[1]), features={**c.features, "direct": 1.0}
                )
        for c in cands:
            c.features["select_logit"] = self.models.select.logit(c.features)
        return sorted(cands, key=lambda c: (-c.features["select_logit"], c.passage.rank, c.start))

    def rank(self, query: Query, passages: Sequence[Passage], exclude: Sequence[str] = ()) -> list[Candidate]:
        """Candidates best first: the feature model orders them all, the reader rereads the leaders."""
        excluded = [_normalise(e) for e in exclude if e.strip()]
        given = [m.group(1).strip() for e in exclude if (m := SHORT_ANSWER_RE.match(e))]
        cands = self._selected(query, passages, excluded, given)
        leaders = cands[: self.reader_candidates]
        if leaders:
            reader = get_reader(self.config.reader_dir or str(READER_DIR), reader_precision(self.config))
            leaders = read(reader, query.text, leaders, self.models.reader_spill, excluded, given)
            leaders = sorted(
                (dataclasses.replace(c, score=self.models.rerank.logit(c.features)) for c in leaders),
                key=lambda c: (-c.score, c.passage.rank, c.start),
            )
        rest = [dataclasses.replace(c, score=c.features["select_logit"] - 100.0) for c in cands[len(leaders) :]]
        return [*leaders, *rest]

    def confidence(self, ranked: Sequence[Candidate], passages: Sequence[Passage]) -> float:
        if not ranked:
            return 0.0
        return _sigmoid(self.models.answerable.logit(answerable_features(ranked, passages)))

    def answer(self, query: Query, passages: Sequence[Passage], exclude: Sequence[str] = ()) -> Answer:
        if about(query.text) is not None:
            return self._about(query, passages, exclude)
        ranked = self.rank(query, passages, exclude)
        confidence = self.confidence(ranked, passages)
        if not ranked or confidence < self.threshold:
            return Answer(
                text=ABSTAIN_TEXT, abstained=True, confidence=confidence, passages=list(passages), answerer=self.name
            )
        chosen = self._chosen(ranked)
        citations = [citation(c.passage, c.start, c.end) for c in chosen]
        best = chosen[0]
        if best.support and self.config.max_answer_sentences > 1:
            citations.append(citation(best.passage, *best.support))
        span = None
        if best.span and best.span != (best.start, best.end):
            chunk = best.passage.chunk
            b = best.span[1] - chunk.start
            edges = trimmed(chunk.text, unasked(query.text, chunk.text, best.span[0] - chunk.start, b), b)
            span = citation(best.passage, edges[0] + chunk.start, edges[1] + chunk.start) if edges else None
        if span is not None and echoes(query.text, span.quote):
            span = None
        return Answer(
            text=compose(citations, span),
            abstained=False,
            citations=citations,
            confidence=confidence,
            passages=list(passages),
            answerer=self.name,
            span=span,
        )

    def _about(self, query: Query, passages: Sequence[Passage], exclude: Sequence[str]) -> Answer:
        """What the documents say about a topic: the sentences the selector ranks best among those that
        hold its words (``query`` is searched by the topic alone, ``Pipeline.query``), up to
        ``max_answer_sentences``, with no short answer, since no question was asked. The confidence is
        how much of the topic the best one holds; none holds enough: the documents don't say."""
        cands = self._selected(query, passages, [_normalise(e) for e in exclude if e.strip()])
        coverage = max((c.features["lex_recall"] for c in cands), default=0.0)
        chosen: list[Candidate] = []
        for c in sorted(cands, key=lambda c: leans_back(c.text)):  # stable: the selector's order otherwise
            if c.features["lex_recall"] >= TOPIC_COVERAGE and all(
                _normalise(c.text) != _normalise(o.text) for o in chosen
            ):
                chosen.append(c)
            if len(chosen) == self.config.max_answer_sentences:
                break
        if not chosen:
            return Answer(
                text=ABSTAIN_TEXT, abstained=True, confidence=coverage, passages=list(passages), answerer=self.name
            )
        citations = [citation(c.passage, c.start, c.end) for c in chosen]
        return Answer(
            text=compose(citations),
            abstained=False,
            citations=citations,
            confidence=chosen[0].features["lex_recall"],
            passages=list(passages),
            answerer=self.name,
        )

    def _chosen(self, ranked: Sequence[Candidate]) -> list[Candidate]:
        """The best sentence, plus the one after it when the best cannot stand alone."""
        best = ranked[0]
        chosen = [best]
        short = len(best.text.split()) < 8 or best.text.rstrip().endswith(":")
        if best.support is None and self.config.max_answer_sentences > 1 and short:
            following = [c for c in ranked if c.passage.source == best.passage.source and c.start > best.end]
            nearest = min(following, key=lambda c: c.start, default=None)
            if (
                nearest is not None
                and best.passage.chunk.text.count("\n\n", 0, nearest.start - best.passage.chunk.start) < 2
            ):
                chosen.append(nearest)
        return chosen


def read(
    reader: Reader,
    question: str,
    leaders: Sequence[Candidate],
    spill: float | None = None,
    quoted: Sequence[str] = (),
    given: Sequence[str] = (),
) -> list[Candidate]:
    """The reader reads each leading sentence with its neighbours in the passage as context; its margin
    becomes the "reader" feature and its span the candidate's short answer, unless the sentence's form
    already gave one (``rag.direct``). When its best span in a neighbour beats its best in the sentence by
    ``spill`` or more, the candidate becomes that neighbour, keeping the matched sentence as ``support``,
    and the margin of that span is its "reader" feature; never a neighbour ``quoted`` (normalised) before
    in this chat, which "what else…" asks not to repeat. A "who…?" whose span in the sentence names no
    one ("A GP leader has predicted…") takes a person's name beside it ("The forecast from Dr Michelle
    Drage…") unless the reader is ``WHO_SLACK`` less sure of the name. Leaders whose neighbourhoods overlap in one
    passage are read together, in one window: the reader then sees each with the other's context too, and
    reads the words once (eval/bench.py)."""
    about = asks_of_article(question)
    ranges = []  # per leader: its sentence with the neighbours read around it, as sentence numbers in its chunk
    for c in leaders:
        chunk = c.passage.chunk
        spans = chunk.sentences
        at = next((i for i, (a, _) in enumerate(spans) if a == c.start), 0)
        first, last = max(0, at - 1), min(len(spans) - 1, at + 1)
        if not about and is_metadata(chunk.text[spans[first][0] - chunk.start : spans[first][1] - chunk.start]):
            first = at  # the reporter's name beside the lead is not who the lead is about
        if not about and is_metadata(chunk.text[spans[last][0] - chunk.start : spans[last][1] - chunk.start]):
            last = at
        ranges.append((first, last))
    acronym = asks_expansion(question) if not about else None
    alone = [bool(c.span and acronym) for c in leaders]  # a definition may be read with "(LMC)" added
    named = full_names(question)  # read as such where a passage calls them by surname
    windows, inserted = [], []
    for i, c in enumerate(leaders):
        chunk = c.passage.chunk
        first, last = ranges[i]
        grown = not alone[i]
        while grown:
            grown = False
            for j, (lo_j, hi_j) in enumerate(ranges):
                same = leaders[j].passage.chunk is chunk and not alone[j]
                if same and lo_j <= last and first <= hi_j and (lo_j < first or hi_j > last):
                    first, last, grown = min(first, lo_j), max(last, hi_j), True
        lo, hi = chunk.sentences[first][0], chunk.sentences[last][1]
        text = chunk.text[lo - chunk.start : hi - chunk.start]
        end = c.end - lo
        if c.span and acronym and alone[i] and "(" not in text[c.span[1] - lo :][:3]:
            # a name spelt out with no "(LMC)" beside it: read as the usual definition, which the reader knows
            text = f"{text[: c.span[1] - lo]} ({acronym}){text[c.span[1] - lo :]}"
            end += len(acronym) + 3
        own = (chunk.sentences[ranges[i][0]][0] - lo, chunk.sentences[ranges[i][1]][1] - lo)
        start = c.start - lo
        added = names_in_full(named, text, chunk.text) if named and not alone[i] else []
        if added:  # "Dr Gerada" read as "Dr Clare Gerada" when the question says "Clare Gerada"
            text = spliced(text, added)
            start, end = shifted(added, start), shifted(added, end)
            own = (shifted(added, own[0]), shifted(added, own[1]))
        inserted.append(added)
        windows.append((text, start, end, lo, own if not alone[i] else (0, len(text))))
    asked = set(tokenize([question])[0])
    heads = [  # a reader's comment is read under its label too: who wrote it ("Reader's comment by Vinci Ho")
        "\n".join(
            filter(
                None,
                (
                    headline(asked, text, c.head[0], c.head[1], opening_seen=c.head[2] >= lo),
                    c.passage.chunk.label if c.passage.chunk.kind == COMMENT else None,
                ),
            )
        )
        for c, (text, _, _, lo, _) in zip(leaders, windows, strict=True)
    ]
    texts, reach = [(t, a, b) for t, a, b, _, _ in windows], [w[4] for w in windows]
    reads = reader.read(
        question,
        texts,
        wide=spill is not None,
        heads=heads,
        reach=reach,
        refuse=echo_test(question),
        given=repeats(given) if given else None,
    )
    wants_person = bool(WHO_RE.search(question))
    out = []
    for c, r, (text, _, _, lo, _), added in zip(leaders, reads, windows, inserted, strict=True):
        c.features["reader"] = float(r.margin)
        if c.span or r.start < 0:  # a byline's name outranks the reader's guess
            out.append(c)
            continue
        w, beside = r.wide, r.beside
        if spill is not None and wants_person and beside is not None and beside.start >= 0:
            said, near = text[r.start : r.end], text[beside.start : beside.end]
            if not re.search(r"[A-Z][a-z]", said) and people(near) and beside.margin >= r.margin - WHO_SLACK:
                w = beside  # "who…?" asks for a name, not for "a GP leader"
        if spill is not None and w is not None and w.start >= 0 and (w is beside or w.margin - r.margin >= spill):
            a, b = lo + unshifted(added, w.start), lo + unshifted(added, w.end, end=True)
            chunk = c.passage.chunk
            home = next(((x, y) for x, y in chunk.sentences if x <= a and b <= y), (c.start, c.end))
            text = chunk.text[home[0] - chunk.start : home[1] - chunk.start]
            # not the sentence itself, nor across a boundary (unquotable in one citation), nor a repeat,
            # nor a byline when the question is not about the piece
            if (
                home != (c.start, c.end)
                and not any(_normalise(text) in q for q in quoted)
                and (about or not is_metadata(text))
            ):
                moved = {"start": home[0], "end": home[1], "text": text, "span": (a, b), "support": (c.start, c.end)}
                out.append(dataclasses.replace(c, features={**c.features, "reader": float(w.margin)}, **moved))
                continue
        span = (lo + unshifted(added, r.start), lo + unshifted(added, r.end, end=True))
        out.append(dataclasses.replace(c, span=span))
    if about:  # a byline speaks for its article: the reader's best there is its evidence
        for c in out:
            if c.features["direct"]:
                same = [o.features["reader"] for o in out if o.passage.source == c.passage.source]
                c.features["reader"] = max(same)
    return out


TITLES = "Dr Mr Mrs Ms Mx Prof Rev Cllr Sir Dame"  # a title alone names no one
APPOSITION_RE = re.compile(r"([^,;:()]{1,60}?)\s*,\s*")  # "Dr Tom Coffey, …": what precedes the comma


def unasked(question: str, text: str, start: int, end: int) -> int:
    """Where the short answer ``text[start:end]`` begins once a lead the question already says is dropped:
    "Dr Tom Coffey, Commissioning Support for London's clinical lead…" for "Who is Tom Coffey?" begins at
    "Commissioning". The reader's best span that does not only echo the question may still start so."""
    lead = APPOSITION_RE.match(text, start, end)
    return lead.end() if lead and lead.end() < end and echoes(question, lead.group(1)) else start


ATTACHED_RE = re.compile(r"\s+(?:in|of|at|on|near|inside|outside|within)\s+(?:the\s+)?", re.IGNORECASE)


def repeats(given: Sequence[str]) -> Callable[[str, int, int], bool]:
    """Whether ``text[a:b]`` repeats a short answer given before: it overlaps where the text says it, or
    is mostly its words. "What else…?" wants another answer; a piece of a word ("card" of "cardiology")
    or a word that says nothing ("the"), which the reader's lesser spans can be, is none."""
    before = [set(tokenize([g])[0]) for g in given]
    said = [said_as(g) for g in given if g.split()]

    def test(text: str, a: int, b: int) -> bool:
        if (a > 0 and text[a - 1].isalnum() and text[a].isalnum()) or (
            b < len(text) and text[b - 1].isalnum() and text[b].isalnum()
        ):
            return True
        for m in (m for p in said for m in p.finditer(text)):
            if (m.start() < b and a < m.end()) or ATTACHED_RE.fullmatch(text, b, m.start()):
                return True  # "at BMA headquarters" in "… in Central London" is the place given, not another
        words = set(tokenize([text[a:b]])[0])  # none: "the" answers nothing
        return not words or any(len(words & w) * 2 >= len(words) for w in before)

    return test


def echoes(question: str, short: str) -> bool:
    """Whether a short answer only repeats the question's own words ("Which trusts…?" → "trusts"), or is
    only a title ("Who is Tom Coffey?" → "Dr"): it answers nothing, so the sentence is shown alone. Words
    a follow-up carries from the turn before count too, except in a name: "Who is hosting it?" about
    "the Londonwide LMCs conference" is answered by "Londonwide LMCs"."""
    return echo_test(question)(short)


def echo_test(question: str) -> Callable[[str], bool]:
    """``echoes`` for one question, its words read once: the reader asks it of every span it picks."""
    own, context = carried(question)
    asked = set(tokenize([own])[0]) | _title_terms()
    around = asked | set(tokenize([context])[0])

    def test(short: str) -> bool:
        words = set(tokenize([short])[0])
        if not words or words <= asked:
            return bool(words)
        names = any(w[0].isupper() and set(tokenize([w])[0]) - _title_terms() for w in short.split())
        return not names and words <= around

    return test


@functools.cache
def _title_terms() -> frozenset[str]:
    return frozenset(tokenize([TITLES])[0])


def citation(passage: Passage, start: int, end: int) -> Citation:
    chunk = passage.chunk
    return Citation(
        source=chunk.source,
        quote=chunk.text[start - chunk.start : end - chunk.start],
        start=start,
        end=end,
        title=passage.title,
        kind=chunk.kind,
        label=chunk.label,
        page=chunk.page,
    )


def unmark(text: str) -> str:
    """A document's own "[12]" would read as a citation marker; show it with full-width brackets instead."""
    return re.sub(r"\[(\d+)\]", "［\\1］", text)


ECHO = 0.6  # a short answer this share of its sentence, or more, does not lead


def compose(citations: Sequence[Citation], span: Citation | None = None) -> str:
    """Quote each citation in order, saying so when the words are a reader's rather than the article's;
    a short answer, when there is one, leads, unless it is most of its sentence: then it would only
    echo the quote that follows (``Answer.span`` still carries it)."""
    lead = span is not None and (not citations or len(span.quote) < ECHO * len(citations[0].quote))
    parts = []
    for n, c in enumerate(citations, start=1):
        if c.kind == COMMENT:
            who = (c.label or "a reader's comment").replace("Reader's comment", "a reader's comment")
            parts.append(f"According to {who}: “{unmark(c.quote)}” [{n}]")
        else:
            parts.append(f"{unmark(c.quote)} [{n}]")
    text = " ".join(parts)
    return f"{unmark(span.quote).strip(' ,;:')}{LEAD_SEP}{text}" if lead and span is not None else text


def _generator_answerer(config: Config, data: IndexData, retriever: Retriever) -> Answerer:
    from .grounding import GeneratorAnswerer  # imported late: it builds on this module

    return GeneratorAnswerer(config, data, retriever)


AnswererFactory = Callable[[Config, IndexData, Retriever], Answerer]
ANSWERERS: dict[str, AnswererFactory] = {"extractive": ExtractiveAnswerer, "generator": _generator_answerer}


def get_answerer(config: Config, data: IndexData, retriever: Retriever) -> Answerer:
    if config.answerer not in ANSWERERS:
        raise UnknownNameError("answerer", config.answerer, list(ANSWERERS))
    return ANSWERERS[config.answerer](config, data, retriever)
