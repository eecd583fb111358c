"""People's names in text: who a passage or a question names, and a surname read as the full name asked.

News names a person in full once ("Dr Michelle Drage"), then by title and surname ("Dr Drage"); follow-ups
point back at people ("where does he work?"); the reader is told who a surname stands for. All of it rests
on telling a person's name from other capitalised runs, which is done here and nowhere else.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

HONORIFICS = r"(?:Dr|Mr|Mrs|Ms|Miss|Mx|Prof|Professor|Sir|Dame|Lord|Lady|Rev|Judge|President|Senator|Chancellor)"
CAP = r"[A-Z][a-z][\w'’\-]*"
PERSON_RE = re.compile(rf"\b{HONORIFICS}\.?\s+{CAP}(?:\s+{CAP})*|\b{CAP}(?:\s+[A-Z]\.)?\s+{CAP}(?:\s+{CAP})?")
# Function words that start a sentence and so are capitalised without being part of a name.
_NOT_NAMES = {
    "The",
    "This",
    "That",
    "These",
    "Those",
    "It",
    "He",
    "She",
    "They",
    "We",
    "In",
    "On",
    "At",
    "A",
    "An",
    "By",
}
_NOT_PERSON_BEFORE_RE = re.compile(r"\b(?:the|a|an|this|that|these|those|our|its|their|at|in|near)\s+$", re.I)
_SPEAKER_AFTER_RE = re.compile(r",?\s+(?:said|says|told|added|warned|argued|wrote|explained|insisted|claimed)\b")
_SPEAKER_BEFORE_RE = re.compile(r"\b(?:said|says|according to|told by|wrote)\s+$", re.I)


@functools.cache
def given_names() -> Any:
    """A gazetteer of ~60,000 given names from many countries (gender-guesser's, used for nothing else)."""
    import gender_guesser.detector

    return gender_guesser.detector.Detector(case_sensitive=True)


def _is_personal(text: str, start: int, end: int) -> bool:
    """A plain capitalised run names a person when it is quoted as a speaker, or starts with a given name
    (and a three-word one has a given name or an initial in the middle: "Mary Ann Hill", "John F. Kerr").
    An article or a preposition of place before it makes it a thing or a place ("the London Assembly",
    "at Victoria Station")."""
    before, after = text[max(0, start - 40) : start], text[end : end + 40]
    if _NOT_PERSON_BEFORE_RE.search(before):
        return False
    if _SPEAKER_AFTER_RE.match(after) or _SPEAKER_BEFORE_RE.search(before):
        return True
    words = text[start:end].split()
    known = given_names().get_gender
    middle_ok = len(words) < 3 or re.fullmatch(r"[A-Z]\.", words[1]) or known(words[1]) != "unknown"
    return known(words[0]) != "unknown" and bool(middle_ok)


def people(text: str) -> list[str]:
    """Personal names, titled ones ("Dr Michael Dixon") first, in order of mention.

    A name is a whole run of capitalised words: "Londonwide Local Medical Committees" is not
    cut down to a person called "Londonwide Local Medical".
    """
    titled, plain = [], []
    for match in PERSON_RE.finditer(text):
        words = match.group(0).split()
        if re.match(r"\s+[A-Z][a-z]", text[match.end() :]):
            continue
        start = match.start()
        if words[0] in _NOT_NAMES:
            start += len(words[0]) + 1
            words = words[1:]
        if len(words) < 2:
            continue
        name = " ".join(words)
        if re.match(HONORIFICS + r"\b", name):
            bucket = titled
        elif _is_personal(text, start, match.end()):
            bucket = plain
        else:
            continue
        if name not in bucket:
            bucket.append(name)
    return titled + [p for p in plain if not any(p in t for t in titled)]


@dataclass(frozen=True)
class Insertion:
    """Given names put before a surname in the text a model reads: ``at`` and ``word_end`` (the surname's
    end) are offsets into the text as written."""

    at: int
    text: str
    word_end: int


def full_names(question: str) -> list[tuple[str, ...]]:
    """The people a question names in full, as words without title or possessive: ("Clare", "Gerada")."""
    out = []
    for name in people(question):
        words = re.sub(r"['’]s$", "", name).split()
        if re.fullmatch(HONORIFICS + r"\.?", words[0]):
            words = words[1:]
        if len(words) >= 2:
            out.append(tuple(words))
    return out


def names_in_full(names: Sequence[tuple[str, ...]], window: str, context: str) -> list[Insertion]:
    """Where ``window`` calls a person the question names in full (``full_names``) by surname only ("Dr
    Gerada has indicated she favours…" for "What does Clare Gerada favour?"), the given names to put
    before the surname, so that the reader sees the person it was asked about: news names a person in
    full once, then by title and surname. Only when ``context`` (the passage) names that person in full
    and no one else by that surname, and never inside another name ("Mary Gerada")."""
    out = []
    for words in names:
        given, surname = " ".join(words[:-1]), words[-1]
        if not re.search(rf"\b{re.escape(given)}\s+{re.escape(surname)}\b", context):
            continue
        before_surname = {m.group(1) for m in re.finditer(rf"\b({CAP})\.?\s+{re.escape(surname)}\b", context)}
        if any(w != words[-2] and w not in _NOT_NAMES and not re.fullmatch(HONORIFICS, w) for w in before_surname):
            continue  # someone else is called by this surname too
        for m in re.finditer(rf"\b{re.escape(surname)}\b", window):
            prev = re.search(r"(\S+)\s+$", window[max(0, m.start() - 40) : m.start()])
            word = prev.group(1) if prev else ""
            if re.fullmatch(CAP + r"\.?", word) and not re.fullmatch(HONORIFICS + r"\.?", word):
                continue  # already a full name, or another one
            out.append(Insertion(m.start(), f"{given} ", m.end()))
    return sorted(out, key=lambda i: i.at)


def spliced(text: str, insertions: Sequence[Insertion]) -> str:
    parts, last = [], 0
    for i in insertions:
        parts += [text[last : i.at], i.text]
        last = i.at
    return "".join([*parts, text[last:]])


def shifted(insertions: Sequence[Insertion], x: int) -> int:
    """An offset into the text as written, in the spliced text (an insertion at ``x`` lies after it)."""
    return x + sum(len(i.text) for i in insertions if i.at < x)


def unshifted(insertions: Sequence[Insertion], x: int, end: bool = False) -> int:
    """An offset into the spliced text, in the text as written; one inside inserted names moves to the
    surname they stand before: its start, or its end for a span's ``end``."""
    added = 0
    for i in insertions:
        at = i.at + added
        if x <= at:
            break
        if x < at + len(i.text):
            return i.word_end if end else i.at
        added += len(i.text)
    return x - added
