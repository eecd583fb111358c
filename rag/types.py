"""Plain data passed between the pipeline's stages.

Every record carries character offsets into the raw file (``start``/``end``), so any
quote can be checked against its source and highlighted there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BODY = "body"
COMMENT = "comment"
# between a short answer and the quotes in an answer's text: "Londonwide LMCs — A document by … [1]"
LEAD_SEP = " — "


@dataclass(frozen=True)
class Section:
    """A contiguous run of kept text: the article's own words, or one reader's comment."""

    start: int
    end: int
    kind: str = BODY
    label: str | None = None


@dataclass(frozen=True)
class Document:
    source: str
    text: str
    title: str | None
    author: str | None
    date: str | None
    sections: tuple[Section, ...]
    sha256: str
    pages: tuple[tuple[int, int, int], ...] = ()  # (page, start, end) for paged formats
    extracted: bool = False  # offsets index text extracted from the file (HTML, PDF, Word), not the raw bytes

    @property
    def heading(self) -> str | None:
        """The title, or a file name made of words ("Steam_engine.txt"), used as context for every chunk."""
        if self.title:
            return self.title
        stem = self.source.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
        words = stem.replace("_", " ").replace("-", " ").split()
        if words and all(w.isalpha() for w in words) and sum(len(w) >= 3 for w in words) >= 1:
            return " ".join(words)
        return None

    @property
    def display_title(self) -> str:
        if self.heading:
            return self.heading
        for section in self.sections:
            lead = self.text[section.start : section.end].split()
            if lead:
                words = lead[:10]
                return " ".join(words) + (" …" if len(lead) > 10 else "")
        return self.source


@dataclass(frozen=True)
class Chunk:
    """A token-budgeted window of whole sentences; ``text == document.text[start:end]``."""

    id: int
    source: str
    start: int
    end: int
    text: str
    kind: str
    label: str | None
    n_tokens: int
    sentences: tuple[tuple[int, int], ...]
    first_sentence: int = -1
    page: int | None = None


@dataclass(frozen=True)
class Passage:
    """A chunk as retrieved for one question, with the scores that ranked it."""

    chunk: Chunk
    title: str
    score: float
    rank: int
    dense_score: float | None = None
    bm25_score: float | None = None

    @property
    def source(self) -> str:
        return self.chunk.source

    @property
    def text(self) -> str:
        return self.chunk.text


@dataclass(frozen=True)
class Citation:
    """An exact quote: ``Path(source).read_text(encoding="utf-8")[start:end] == quote``."""

    source: str
    quote: str
    start: int
    end: int
    title: str | None = None
    kind: str = BODY
    label: str | None = None
    page: int | None = None

    @classmethod
    def of(cls, chunk: Chunk, start: int, end: int, title: str | None = None) -> Citation:
        """The chunk's words at document offsets ``start:end``, with what the chunk says of them."""
        quote = chunk.text[start - chunk.start : end - chunk.start]
        return cls(chunk.source, quote, start, end, title, chunk.kind, chunk.label, chunk.page)


@dataclass(frozen=True)
class Answer:
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    question: str = ""
    standalone_question: str = ""
    confidence: float = 0.0
    passages: list[Passage] = field(default_factory=list)
    answerer: str = "extractive"
    notes: list[str] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    raw: str = ""
    dropped_citations: list[Citation] = field(default_factory=list)  # failed the final check; not shown
    span: Citation | None = None  # the short answer, inside the first citation; None when there is none
