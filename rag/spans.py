"""The short answer inside a sentence: what the trained span reader is given to read, and which of its
spans may answer.

``read`` builds each leading sentence's window (its neighbours, its article's headline, a name spelt out
as the question spells it), asks the reader, and moves a candidate to the neighbour that holds a better
answer. ``echoes`` and ``repeats`` say which spans answer nothing: the question's own words, a title
alone, or an answer given before in this chat.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence

from .chunking import LIST_ITEM_RE, is_heading
from .conversation import carried
from .direct import asks_expansion, asks_of_article, is_metadata, said_as
from .documents import FIELD_RE
from .evidence import Candidate, normalise
from .names import full_names, names_in_full, people, shifted, spliced, unshifted
from .reader import Reader
from .retrieval import tokenize
from .types import COMMENT

WHO_RE = re.compile(r"^\W*who\b", re.I)
# how much less sure the reader may be of a person's name beside the sentence than of a span in it that
# names no one ("GP leader"), for the name to answer "who…?" (gold dev; eval/bench.py's held-out view)
WHO_SLACK = 3.0


def headline(asked: set[str], window: str, title: str, opening: str, opening_seen: bool) -> str:
    """What the reader reads before ``window`` (``article_head`` says why): the title unless the window
    holds it, and the opening sentence when the window does not reach it and it holds a term of the
    question's (``asked``) that the window lacks. Training reads its windows the same way
    (eval/train_reader.py --headlines)."""
    lacking = asked - set(tokenize([window])[0])
    wanted = opening and not opening_seen and lacking & set(tokenize([opening])[0])
    return "\n".join(t for t in (title if title not in window else "", opening if wanted else "") if t)


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
        if is_heading(chunk, *spans[at]):  # "Why ASGI?" is answered under it, not by the code above it
            first = at
        if last > at and is_heading(chunk, *spans[last]):
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
                and not any(normalise(text) in q for q in quoted)
                and (about or not is_metadata(text))
                # not from a list item to the item beside it: each is its own point ("How do I update Rust?"
                # matched "• Update to a newer Rust version.", not "• Open locally installed documentation.")
                and not (LIST_ITEM_RE.match(c.text.lstrip()) and LIST_ITEM_RE.match(text.lstrip()))
                # nor onto a heading: it names the section the answer lies in ("Output formats")
                and (is_metadata(text) or not is_heading(chunk, *home))
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


MAX_FIELD_ITEM_WORDS = 6


def whole_field(question: str, text: str, sentence: tuple[int, int], span: tuple[int, int]) -> tuple[int, int] | None:
    """The whole of a labelled list ("Present: Ana Ruiz (chair), Ewan Flett, Rhona Tait") where the short
    answer is one of its items and the question asks what the label names ("Who was present?"): the line
    is the list of them, so one name is a third of the answer. "Who chaired the meeting?" asks about one
    item, not what "Present" names, and keeps its span ("Ana Ruiz")."""
    line = text[sentence[0] : sentence[1]].rstrip()
    m = FIELD_RE.fullmatch(line, len(line) - len(line.lstrip("•·▪*-– \t")))  # "• Authors: …" as "Authors: …"
    if m is None:
        return None
    start, end = sentence[0] + m.start("value"), sentence[0] + m.end("value")
    items = [x for x in re.split(r"[,;]|\band\b", m.group("value")) if x.strip()]
    if not (start <= span[0] and span[1] <= end) or len(items) < 2:
        return None
    if any(len(x.split()) > MAX_FIELD_ITEM_WORDS for x in items):
        return None
    if not set(tokenize([m.group("label")])[0]) & set(tokenize([question])[0]):
        return None
    return start, end


def restates(question: str, short: str) -> bool:
    """Whether a short answer to a yes-or-no question says what it asks, holding at least half its terms
    ("BSkyB does not carry any control over … picture quality" for "Does BSkyB carry any control over the
    picture quality…?"). A phrase that does not ("10%" for "Is NHS Sefton cutting primary care spending?",
    "fewer doctors choosing general practice" for "Can patients choose their GP?") answers nothing asked:
    the sentence is shown alone."""
    asked = set(tokenize([question])[0])
    return bool(asked) and 2 * len(asked.intersection(tokenize([short])[0])) >= len(asked)


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
