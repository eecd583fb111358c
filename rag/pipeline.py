"""Wire the stages together: rewrite the question, retrieve, answer, verify every citation."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

from . import collection, conversation, indexing, sources, spelling
from .answering import ABSTAIN_TEXT, ANSWERERS, get_answerer
from .config import Config, load_config
from .direct import asks_expansion
from .embedding import EMBEDDERS, get_embedder
from .errors import IndexMismatchError, QuestionError, UnknownNameError
from .generation import GENERATORS
from .indexing import Progress
from .retrieval import MODES, SHORT_FORM, Query, Retriever, tokenize
from .types import Answer, Citation, Passage

log = logging.getLogger(__name__)

_MARKER_RE = re.compile(r"\[(\d+)\]")


class Pipeline:
    """A loaded index with its models; one per index folder, shared by every question."""

    def __init__(self, config: Config, progress: Progress | None = None) -> None:
        self.config = config
        self.embedder = get_embedder(config)
        self.data = indexing.ensure(config, progress)
        if self.data.manifest.get("dimension") != self.embedder.dimension:
            raise IndexMismatchError(
                f"the index in {config.index_path} holds {self.data.manifest.get('dimension')}-dimensional vectors "
                f"but {config.embedding_model} makes {self.embedder.dimension}; run `rag index --rebuild`"
            )
        self.retriever = Retriever(self.data)
        self.documents = {d["source"]: d for d in self.data.documents}
        self._texts: dict[str, tuple[tuple[int, int], str]] = {}

    def query(self, text: str) -> tuple[Query, list[str]]:
        """The question embedded and tokenised for search; a request about a topic ("Tell me about
        polysystems") is searched for by its topic alone, and keeps its own words for the answerer."""
        notes = []
        topic = conversation.about(text)
        searched = topic if topic is not None else text
        fitted = self.embedder.truncate(searched)
        if len(fitted) < len(searched):
            note = (
                f"the question was {len(searched)} characters, longer than the embedding model reads; "
                f"only its first {len(fitted)} characters were used"
            )
            log.warning(note)
            notes.append(note)
        vector = self.embedder.embed([fitted], "query")[0]
        return Query(text if topic is not None else fitted, vector, tuple(tokenize([fitted])[0])), notes

    def spelt_out(self, query: Query) -> Query | None:
        """``query`` to search again with the abbreviations it uses spelt out as the documents spell them
        ("How many GPs does Londonwide Local Medical Committees represent?"), or ``None`` where it uses none
        the documents spell out. "What does LMC stand for?" is not helped to an echo."""
        text = query.text
        if asks_expansion(text):
            return None
        spelt = self.spellings(text)
        searched = self.embedder.truncate(SHORT_FORM.sub(lambda m: spelt.get(m.group(0), m.group(0)), text))
        if searched == text:
            return None
        vector = self.embedder.embed([searched], "query")[0]
        return dataclasses.replace(query, search=Query(searched, vector, tuple(tokenize([searched])[0])))

    def spellings(self, text: str) -> dict[str, str]:
        """How the documents spell out each abbreviation of ``text`` that it does not spell out itself."""
        return {
            short: long
            for short in SHORT_FORM.findall(text)
            if (long := self.retriever.spelt_out(short)) and long.lower() not in text.lower()
        }

    def retrieve(self, text: str, config: Config | None = None) -> list[Passage]:
        query, _ = self.query(text)
        return self.retriever.search(query, config or self.config)

    def stream(self, question: str, history: object = None, config: Config | None = None) -> Iterator[str | Answer]:
        """Pieces of the answer's text as they are written (generator answerers), then the verified ``Answer``."""
        config = config or self.config
        question = check_question(question)
        words = spelling.speller(self.data) if config.spelling else None
        read, slips = words.read(question) if words is not None else (question, [])
        slipped = [f"read “{s.typed}” as “{s.read}”, a word the documents use" for s in slips]
        turn = conversation.rewrite(conversation.punctuated(read), history)
        standalone = turn.standalone
        if config.answerer == "generator" and turn.used_history:
            from .grounding import condense

            standalone = condense(config, conversation.punctuated(read), conversation.validate(history)) or standalone
        asked = collection.asked(standalone) if not turn.unresolved else None
        listed = (
            collection.answer(asked, self.data, self.documents, self.retriever, turn.exclude, find=self._article_about)
            if asked
            else None
        )
        if listed is not None:  # "What documents do you have?": the index answers, not a passage
            answer = self.verified(listed)
            yield dataclasses.replace(
                answer, question=question, standalone_question=standalone, notes=[*answer.notes, *slipped]
            )
            return
        query, notes = self.query(standalone)
        notes = [*slipped, *notes]
        passages = self.retriever.search(query, config)
        if turn.unresolved:  # "Where does he work?" with no one (no man) named before: any answer is a guess
            why = f"this chat names only {', '.join(turn.named)}" if turn.named else "this chat has no earlier question"
            note = f"“{turn.unresolved}” names no one: {why}; ask again with the name"
            yield Answer(
                text=ABSTAIN_TEXT,
                abstained=True,
                passages=passages,
                answerer=config.answerer,
                question=question,
                standalone_question=standalone,
                notes=[*notes, note],
            )
            return
        answerer = get_answerer(config, self.data, self.retriever)
        if hasattr(answerer, "stream"):
            items: Iterator[str | Answer] = answerer.stream(query, passages, turn.exclude)
        else:
            answer = answerer.answer(query, passages, turn.exclude)
            if answer.abstained and (spelt := self.spelt_out(query)) is not None:  # "LMCs" where the text spells it out
                found = self.retriever.search(spelt, config)
                seen = {p.chunk.id for p in passages}
                pairs = self.spellings(query.text)
                longs = [b.lower() for b in pairs.values()]
                if any(p.chunk.id not in seen and any(x in p.chunk.text.lower() for x in longs) for p in found):
                    again = answerer.answer(query, found, turn.exclude)  # a new passage spells it out: read again
                    if not again.abstained:
                        answer = again
                        notes.append("searched again with " + ", ".join(f"“{a}” as “{b}”" for a, b in pairs.items()))
            if answer.abstained and (writer := collection.writer_asked(standalone)):
                answer = collection.answer(writer, self.data, self.documents, self.retriever) or answer  # who they are
            items = iter([answer])
        for item in items:
            if isinstance(item, Answer):
                answer = self.verified(item)
                yield dataclasses.replace(
                    answer, question=question, standalone_question=standalone, notes=[*answer.notes, *notes]
                )
            else:
                yield item

    def _article_about(self, topic: str) -> str | None:
        """The document whose passage ranks first for ``topic``: "the article about polysystems going national"."""
        passages = self.retrieve(topic)
        return passages[0].source if passages else None

    def ask(self, question: str, history: object = None, config: Config | None = None) -> Answer:
        final = None
        for item in self.stream(question, history, config):
            if isinstance(item, Answer):
                final = item
        if final is None:
            raise RuntimeError("the answerer produced no answer")
        return final

    def source_text(self, source: str) -> str:
        """The text citation offsets index: the file as the contract reads it, or the text extracted from
        an HTML, PDF or Word file, stored with the index (cached while unchanged)."""
        path = sources.text_path(self.config, source, self.documents.get(source))
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._texts.get(source)
        if cached is None or cached[0] != key:
            cached = (key, path.read_text(encoding="utf-8"))
            self._texts[source] = cached
        return cached[1]

    def verified(self, answer: Answer) -> Answer:
        """Keep only citations whose quote is exactly in the file now; renumber the rest."""
        good: list[Citation] = []
        for c in answer.citations:
            try:
                ok = bool(c.quote) and self.source_text(c.source)[c.start : c.end] == c.quote
            except (OSError, UnicodeDecodeError):
                ok = False
            if ok:
                good.append(c)
            else:
                log.warning("dropped a citation of %s:%d-%d: the file changed since indexing", c.source, c.start, c.end)
                forget(self.config)
        span = answer.span
        if span is not None and not (
            good
            and good[0].source == span.source
            and good[0].start <= span.start < span.end <= good[0].end
            and self.source_text(span.source)[span.start : span.end] == span.quote
        ):
            answer = dataclasses.replace(answer, span=None)
        if len(good) == len(answer.citations):
            return answer
        dropped = [c for c in answer.citations if c not in good]
        answer = dataclasses.replace(answer, dropped_citations=[*answer.dropped_citations, *dropped])
        if not good:
            return dataclasses.replace(
                answer,
                text="The documents changed since they were indexed; ask again to use the new text.",
                abstained=True,
                citations=[],
                notes=[*answer.notes, "citations no longer matched their files"],
            )
        return dataclasses.replace(answer, text=renumber(answer.text, answer.citations, good), citations=good)


def renumber(text: str, old: Sequence[Citation], kept: Sequence[Citation]) -> str:
    """Drop markers of removed citations and number the rest [1], [2], ... in order of first use."""
    mapping: dict[int, int] = {}
    for n, c in enumerate(old, start=1):
        if c in kept:
            mapping[n] = kept.index(c) + 1

    def sub(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"[{mapping[n]}]" if n in mapping else ""

    return re.sub(r"\s+(?=[.,;:!?]|$)", "", _MARKER_RE.sub(sub, text)).strip()


MAX_QUESTION_CHARS = 8000  # past what the embedding model reads (~1,300), the rest is noted and cut
_INVISIBLE_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def check_question(question: object) -> str:
    """The question as the pipeline reads it (NFC, control and direction-override characters out),
    or ``QuestionError`` saying what is wrong with it and what to do."""
    if not isinstance(question, str):
        raise QuestionError(f"the question must be a string, got {type(question).__name__}")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question is {len(question):,} characters, over the {MAX_QUESTION_CHARS:,} limit; "
            "ask it in fewer words (the documents are searched, not the question)"
        )
    question = " ".join(_INVISIBLE_RE.sub(" ", unicodedata.normalize("NFC", question)).split())
    if not question:
        raise QuestionError("the question is empty; ask something, e.g. ask('Who chairs the NHS Alliance?')")
    if not any(ch.isalnum() for ch in question):
        raise QuestionError(f"the question {question[:40]!r} has no words or numbers to search for; ask in words")
    return question


_PIPELINES: dict[tuple[Any, ...], Pipeline] = {}
_LOCK = threading.Lock()


def _key(config: Config) -> tuple[Any, ...]:
    roots = tuple(str(r) for r in sources.roots_for(config)) if config.corpus else None
    return (str(config.index_path), roots, tuple(sorted(sources.settings(config).items())), config.device)


def get_pipeline(config: Config, progress: Progress | None = None) -> Pipeline:
    key = _key(config)
    with _LOCK:
        pipeline = _PIPELINES.get(key)
        if pipeline is None:
            pipeline = Pipeline(config, progress)
            _PIPELINES[key] = pipeline
        return pipeline


def forget(config: Config | None = None) -> None:
    """Drop loaded pipelines (all, or the one for ``config``) so the next question re-checks the index."""
    with _LOCK:
        if config is None:
            _PIPELINES.clear()
        else:
            _PIPELINES.pop(_key(config), None)


def ask(
    question: str,
    history: list[tuple[str, str]] | None = None,
    *,
    config: Config | None = None,
    **overrides: Any,
) -> Answer:
    """Answer ``question`` from the indexed documents, quoting them exactly.

    ``history`` holds earlier (question, answer) turns, oldest first. Keyword overrides
    (``top_k=3``, ``answerer="extractive"``, ``corpus=...``) replace single settings.
    """
    config = _checked(question, history, config, overrides)
    return get_pipeline(config).ask(question, history, config)


def stream(
    question: str,
    history: list[tuple[str, str]] | None = None,
    *,
    config: Config | None = None,
    **overrides: Any,
) -> Iterator[str | Answer]:
    """Like ``ask`` but yields the answer's text as it is written, then the verified ``Answer``."""
    config = _checked(question, history, config, overrides)
    yield from get_pipeline(config).stream(question, history, config)


def _checked(question: str, history: object, config: Config | None, overrides: dict[str, Any]) -> Config:
    """Every input checked, and the settings resolved, before any model or index is loaded."""
    check_question(question)
    conversation.validate(history)
    config = config or load_config()
    if overrides:
        config = config.replace(**overrides)
    check_names(config)
    return config


def check_names(config: Config) -> None:
    """Fail on a misspelt component name before any model or index is loaded."""
    for kind, name, valid in (
        ("answerer", config.answerer, ANSWERERS),
        ("retrieval mode", config.retrieval, MODES),
        ("embedder", config.embedder, EMBEDDERS),
        ("generator", config.generator, GENERATORS),
    ):
        if name not in valid:
            raise UnknownNameError(kind, name, list(valid))
