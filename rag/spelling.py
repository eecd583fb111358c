"""A question typed with a slip ("pharamcists", "Geradda") is read as the words the documents use.

One swapped pair of letters in one word of the question cost a fifth of the answerable questions of the
held-out view: BM25 never finds a word the documents do not hold, and the reader, trained on clean
questions, takes a word missing from the passage for a sign that it does not answer. A word that is
neither in the documents nor in an English word list, one edit (SymSpell's Damerau distance: a letter
dropped, added, changed or two swapped, never the first) from a word the documents use, is read as that
word. A word of English stays as typed ("facet" is not "fact"), and so does a name one letter from
another ("Pamas" is not "Hamas": SQuAD 2.0 asks about such names to see whether the reader abstains).
"""

from __future__ import annotations

import functools
import heapq
import importlib.resources
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .retrieval import tokenize

if TYPE_CHECKING:
    from .store import IndexData

log = logging.getLogger(__name__)

MIN_LENGTH = 5  # shorter words have too many neighbours one edit away ("form", "from")
MAX_WORDS = 300_000  # the corpus's most frequent words that a slip may be read as
# up to this many chunks the speller is made when the first question comes (0.16 s for 1,265, from the
# word counts the index stores); past it, in the background, and until it is made questions are read as typed
SYNC_CHUNKS = 100_000
WORD_RE = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
POSSESSIVE_RE = re.compile(r"['’]s$", re.IGNORECASE)


# British and American spellings of one word: "licence" where the documents say "license", "color" where they
# say "colour". Each is a word of English, so neither is a slip; it is read as the documents spell it.
VARIANTS = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"(?<=\w\w)is(e|ed|es|ing|ation|ations|er|ers)$", r"iz\1"),
        (r"(?<=\w\w)iz(e|ed|es|ing|ation|ations|er|ers)$", r"is\1"),
        (r"ys(e|ed|es|ing)$", r"yz\1"),
        (r"yz(e|ed|es|ing)$", r"ys\1"),
        (r"(?<=\w\w\w)our(s|ed|ing|ite|ites|able|ful|er|ers|hood|less)?$", r"or\1"),
        (r"(?<=\w\w\w)or(s|ed|ing|ite|ites|able|ful|er|ers|hood|less)?$", r"our\1"),
        (r"(?<=\w\w)tre(s|d)?$", r"ter\1"),
        (r"(?<=\w\w)ter(s|ed)?$", r"tre\1"),
        (r"ence(s)?$", r"ense\1"),
        (r"ense(s)?$", r"ence\1"),
        (r"ogue(s)?$", r"og\1"),
        (r"og(s)?$", r"ogue\1"),
        (r"([aeiou])ll(ed|ing|er|ers)$", r"\1l\2"),
        (r"([aeiou])l(ed|ing|er|ers)$", r"\1ll\2"),
        (r"(?<=\w)(?:ae|oe)", "e"),
        (r"gramme(s)?$", r"gram\1"),
        (r"gram(s)?$", r"gramme\1"),
    )
)


@dataclass(frozen=True)
class Slip:
    typed: str
    read: str


def count_words(texts: Iterable[str]) -> dict[str, int]:
    """The corpus's words, lower-cased, and how often each is used: counted as the index is built."""
    return dict(Counter(w.lower() for text in texts for w in WORD_RE.findall(text)))


@functools.cache
def _english() -> frozenset[str]:
    """SymSpell's English words (82,765, from its package): a word of English is what its writer meant."""
    path = importlib.resources.files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    return frozenset(line.partition(" ")[0] for line in path.read_text(encoding="utf-8").splitlines())


class Speller:
    """The corpus's words, and the one-edit neighbours of those long enough to be slipped on."""

    def __init__(self, counts: Mapping[str, int]) -> None:
        from symspellpy import SymSpell

        self.known = frozenset(counts)
        self._counts = counts
        self._symspell = SymSpell(max_dictionary_edit_distance=1, prefix_length=7)
        for word, n in heapq.nlargest(MAX_WORDS, counts.items(), key=lambda item: item[1]):
            if len(word) >= MIN_LENGTH - 1:
                self._symspell.create_dictionary_entry(word, n)

    def read(self, question: str) -> tuple[str, list[Slip]]:
        """``question`` with each slip replaced by the corpus word it stands for, and the slips."""
        from symspellpy import Verbosity

        english = _english()
        parts, slips, last = [], [], 0
        for m in WORD_RE.finditer(question):
            typed = POSSESSIVE_RE.sub("", m.group(0))  # "Stearn's": the name is the word
            word = typed.lower()
            if len(word) < MIN_LENGTH or word in self.known:
                continue
            if not (term := self._variant(word) or "") and word not in english:
                found = self._symspell.lookup(word, Verbosity.TOP, max_edit_distance=1)
                term = found[0].term if found and found[0].distance == 1 else ""
            if not term or term[0] != word[0] or tokenize([term]) == tokenize([word]):
                continue  # "Pamas" is not "Hamas"; "analyzes" is "analyze" already, as BM25 reads it
            read = _cased(term, typed)
            parts += [question[last : m.start()], read]
            last = m.start() + len(typed)
            slips.append(Slip(typed, read))
        if slips:
            log.info("read %s", ", ".join(f"{s.typed!r} as {s.read!r}" for s in slips))
        return "".join([*parts, question[last:]]), slips

    def _variant(self, word: str) -> str | None:
        """How the documents spell ``word`` where they spell it the other side of the Atlantic."""
        known = {v for pattern, replacement in VARIANTS if (v := pattern.sub(replacement, word)) in self.known}
        return max(sorted(known), key=lambda v: self._counts[v]) if known else None


def _cased(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word[:1].upper() + word[1:] if like[:1].isupper() else word


_building: set[int] = set()
_lock = threading.Lock()


def speller(data: IndexData) -> Speller | None:
    """The index's speller, or ``None`` while a large index's is still being made (in the background)."""
    if "speller" in data.__dict__ or len(data.chunks) <= SYNC_CHUNKS:
        return data.speller
    with _lock:
        if id(data) not in _building:
            _building.add(id(data))
            threading.Thread(target=lambda: data.speller, name="speller", daemon=True).start()
    return None
