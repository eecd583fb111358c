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
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import calibration
from .chunking import LIST_ITEM_RE, is_heading
from .config import Config
from .conversation import SHORT_ANSWER_RE, about
from .direct import asks_procedure, asks_yes_no, is_metadata, rest_of_list, trimmed
from .errors import UnknownNameError
from .evidence import (
    ANSWERABLE_FEATURES,
    SENTENCE_FEATURES,
    Candidate,
    answerable_features,
    candidates,
    leans_back,
    normalise,
)
from .reader import READER_DIR, get_reader, reader_precision
from .retrieval import Query, Retriever
from .spans import echoes, read, restates, unasked, whole_field
from .store import IndexData
from .types import COMMENT, LEAD_SEP, Answer, Chunk, Citation, Passage

MODEL_PATH = Path(__file__).parent / "models" / "extractive.json"
NOREADER_MODEL_PATH = Path(__file__).parent / "models" / "extractive-noreader.json"  # fitted without the reader
ABSTAIN_TEXT = "The documents don't say."

RERANK_FEATURES = ("select_logit", "reader")
# how much of a topic's words (idf-weighted) a sentence must hold to be quoted as what the documents say of it
TOPIC_COVERAGE = 0.6


class Answerer(Protocol):
    def answer(self, query: Query, passages: Sequence[Passage], exclude: Sequence[str] = ()) -> Answer:
        """Answer ``query`` from ``passages`` alone; ``exclude`` lists quotes already given in this chat."""
        ...


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


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


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
            if not any(normalise(c.text) in e for e in excluded)
            or any(normalise(g) in normalise(c.text) for g in given)
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
        excluded = [normalise(e) for e in exclude if e.strip()]
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
        best = ranked[0]
        citations = [citation(best.passage, best.start, best.end)]
        if self._incomplete(best) and (after := self._next_in_document(best)):
            citations.append(Citation.of(*after, best.passage.title))
        if (
            best.support
            and self.config.max_answer_sentences > len(citations)
            and not is_heading(best.passage.chunk, *best.support)
        ):
            citations.append(citation(best.passage, *best.support))
        span = None
        listed = self._listed(best)
        if listed:
            citations = listed
        elif best.span and best.span != (best.start, best.end):
            chunk = best.passage.chunk
            b = best.span[1] - chunk.start
            edges = trimmed(chunk.text, unasked(query.text, chunk.text, best.span[0] - chunk.start, b), b)
            line = (best.start - chunk.start, best.end - chunk.start)
            edges = (whole_field(query.text, chunk.text, line, edges) if edges else None) or edges
            span = citation(best.passage, edges[0] + chunk.start, edges[1] + chunk.start) if edges else None
        if span is not None and (
            echoes(query.text, span.quote) or (asks_yes_no(query.text) and not restates(query.text, span.quote))
        ):
            span = None
        if not listed and asks_procedure(query.text):  # the steps are the sentence, not a word of it
            chunk = best.passage.chunk
            edges = trimmed(chunk.text, best.start - chunk.start, best.end - chunk.start)
            span = citation(best.passage, edges[0] + chunk.start, edges[1] + chunk.start) if edges else span
            if span is not None and echoes(query.text, span.quote):  # "Run the server:" for "How do I run…?"
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
        cands = self._selected(query, passages, [normalise(e) for e in exclude if e.strip()])
        coverage = max((c.features["lex_recall"] for c in cands), default=0.0)
        chosen: list[Candidate] = []
        for c in sorted(cands, key=lambda c: leans_back(c.text)):  # stable: the selector's order otherwise
            if c.features["lex_recall"] >= TOPIC_COVERAGE and all(
                normalise(c.text) != normalise(o.text) for o in chosen
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

    def _listed(self, best: Candidate) -> list[Citation] | None:
        """A list's lead line and its items, when the answer is the line that leads into a list ("It
        writes its counts as:"), or an item the reader found right under it, or the lead is where the
        reader found the answer to the sentence the question matched, or the answer is a heading the lead
        opens the section under: the list is what was asked for, and one item of it, or the lead alone,
        would answer in part."""
        if self.config.max_answer_sentences < 2:
            return None
        chunk = best.passage.chunk
        leads = [(best.start, best.end), *([best.support] if best.support else [])]
        if best.support is None and is_heading(chunk, best.start, best.end):  # "Output formats" / "It writes…:"
            leads += [x for x in chunk.sentences if x[0] >= best.end][:1]
        lead = next((x for x in leads if chunk.text[: x[1] - chunk.start].rstrip().endswith(":")), None)
        if lead is None:
            return None
        ids = self.data.chunks_of.get(chunk.source, [chunk.id])
        following = [self.data.chunks[i] for i in ids[ids.index(chunk.id) :]] if chunk.id in ids else [chunk]
        items = list_items(following, lead[1])
        if len(items) < 2 or (lead == best.support and leads[0] not in [i[1:] for i in items]):
            return None
        head = citation(best.passage, *lead)
        return [head, *(Citation.of(c, a, b, head.title) for c, a, b in items[:LIST_ITEMS])]

    def _incomplete(self, best: Candidate) -> bool:
        """Whether the best sentence cannot stand alone: it leads into what follows ("…, open a terminal and
        enter the following command:"), or it is a heading ("Ownership Rules"), unless the reader found the
        answer in it beside the sentence the question matched, which the answer quotes too. A byline or a
        dateline is whole."""
        if self.config.max_answer_sentences < 2:
            return False
        heading = best.support is None and is_heading(best.passage.chunk, best.start, best.end)
        return best.text.rstrip().endswith(":") or (heading and not is_metadata(best.text))

    def _next_in_document(self, best: Candidate) -> tuple[Chunk, int, int] | None:
        """The document's sentence right after ``best``, unless a paragraph lies between them (a break, a
        line, a code block's fences: then what follows is about something else). It may open the next
        chunk, which the search need not have returned."""
        for i in self.data.chunks_of.get(best.passage.source, [best.passage.chunk.id]):
            chunk = self.data.chunks[i]
            if chunk.end <= best.end:
                continue
            a, b = next(((a, b) for a, b in chunk.sentences if a >= best.end), (None, None))
            if a is None or b is None:
                continue
            if chunk.start > best.end:  # the chunk holding ``best`` ends with it: only a fence may lie between
                return (chunk, a, b) if a - best.end <= len("\n\n```\n") else None
            gap = chunk.text[best.end - chunk.start : a - chunk.start]
            return (chunk, a, b) if gap.count("\n\n") < 2 else None
        return None


LIST_ITEMS = 10  # the most items a list answer quotes


def list_items(chunks: Sequence[Chunk], after: int) -> list[tuple[Chunk, int, int]]:
    """The items of the list that begins right after offset ``after`` in the first of ``chunks`` (a
    document's chunks in order, a list may run on into the next): the first sentence of each line that
    opens with a list marker ("• ", "- ", "1. "), up to the first line that does not."""
    items: list[tuple[Chunk, int, int]] = []
    for chunk in chunks:
        for a, b in chunk.sentences:
            if a < after:
                continue
            after = b
            at = a - chunk.start
            opens_line = not chunk.text[chunk.text.rfind("\n", 0, at) + 1 : at].strip()
            if opens_line and LIST_ITEM_RE.match(chunk.text, at):
                items.append((chunk, a, b))
            elif opens_line or not items:
                return items
    return items


def citation(passage: Passage, start: int, end: int) -> Citation:
    return Citation.of(passage.chunk, start, end, passage.title)


def unmark(text: str) -> str:
    """A document's own "[12]" would read as a citation marker; show it with full-width brackets instead.
    A sentence wrapped across lines in its file reads as one line."""
    return re.sub(r"\[(\d+)\]", "［\\1］", re.sub(r"[ \t]*\n\s*", " ", text))


ECHO = 0.6  # a short answer this share of its sentence, or more, does not lead


def compose(citations: Sequence[Citation], span: Citation | None = None) -> str:
    """Quote each citation in order, saying so when the words are a reader's rather than the article's;
    a short answer, when there is one, leads, unless it is most of its sentence: then it would only
    echo the quote that follows (``Answer.span`` still carries it). A list's items go on lines of their own."""
    lead = span is not None and (not citations or len(span.quote) < ECHO * len(citations[0].quote))
    parts = []
    for n, c in enumerate(citations, start=1):
        if c.kind == COMMENT:
            who = (c.label or "a reader's comment").replace("Reader's comment", "a reader's comment")
            parts.append(f"According to {who}: “{unmark(c.quote)}” [{n}]")
        else:
            parts.append(f"{chr(10) if n > 1 and LIST_ITEM_RE.match(c.quote) else ''}{unmark(c.quote)} [{n}]")
    text = " ".join(parts).replace(" \n", "\n")
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
