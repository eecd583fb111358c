"""The evidence for each sentence of the retrieved passages: how it matches the question.

Every distinct sentence becomes a ``Candidate`` carrying features (semantic and lexical match, expected
answer type, passage rank, a byline or definition that answers the question's form: ``rag.direct``) that
the answerer's logistic models weigh; ``answerable_features`` reads the evidence for answering at all off
the best candidate and its rivals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .conversation import about
from .direct import asks_expansion, asks_of_article, direct_form, is_metadata
from .names import full_names, names_in_full
from .retrieval import Query, Retriever, commenter_terms, credited_terms, tokenize
from .store import IndexData
from .types import COMMENT, Chunk, Passage

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
        elif form and (acronym := asks_expansion(question)):  # it spells the abbreviation out: says what is named
            s_terms[i] |= set(tokenize([acronym])[0])
        elif form:  # "X is a …" answers the whole of "What is X?", its "what" included
            s_terms[i] |= q_terms
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


def normalise(text: str) -> str:
    return " ".join(text.split()).lower()
