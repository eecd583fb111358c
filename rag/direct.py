"""Questions whose answer has a fixed form in the text, so that the form itself is the evidence.

"Who wrote the piece?" is answered by its byline, "When was it published?" by its dateline, "What does
PACS stand for?" by the sentence that defines the abbreviation ("primary and acute care systems (PACS)").
A reader trained on Wikipedia prose has never seen a byline, and an abbreviation's definition shares
no words with the question but the abbreviation, so neither the reader nor the lexical features find
these sentences; finding the form does, on any corpus that has bylines, datelines or abbreviations.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass

from .documents import byline, dateline
from .names import HONORIFICS

ASKS_AUTHOR = re.compile(
    r"\bwho (?:wrote|writes|has written|authored|reported|penned)\b|\bwritten by\b|"
    r"\b(?:author|writer|reporter|journalist|byline)s?\b",
    re.IGNORECASE,
)
ASKS_PUBLISHED = re.compile(
    r"\bwhen\b.*\b(?:published|posted|printed|written|released|come out|came out|dated)\b|"
    r"\b(?:publication|posting) date\b|\bwhat (?:date|day)\b.*\b(?:published|posted|printed|written|dated)\b",
    re.IGNORECASE,
)
# "Which piece was written by Ian Quinn?" names the writer: it asks which piece, so a byline answers it only
# when it names that writer
WRITER_NAMED = re.compile(r"\b(?:written|authored|penned|reported)\s+by\s+((?:[A-Z][\w'’.-]*\s*){1,5})")
_ACRONYM = r"['\"‘“]?(?-i:([A-Z][A-Za-z0-9&]*[A-Z][A-Za-z0-9&]*))['\"’”]?"
ASKS_EXPANSION = (
    re.compile(
        rf"\bwhat (?:does|do|did) (?:the )?(?:abbreviation |acronym |initials |term )?{_ACRONYM} "
        r"(?:stand for|mean|refer to|abbreviate)\b",
        re.IGNORECASE,
    ),
    re.compile(
        rf"\bwhat (?:is|are) (?:the )?(?:full (?:name|form) of |meaning of |expansion of )?{_ACRONYM}\s*\??\s*$",
        re.IGNORECASE,
    ),
    re.compile(rf"\b{_ACRONYM} (?:stands for|is short for)\b", re.IGNORECASE),
)
# typed in lower case, an abbreviation is told by the question alone: "stand for" says what it is
_NOT_TYPED = r"(?!(?:it|this|that|they|these|those)\b)"
ASKS_EXPANSION_TYPED = re.compile(
    rf"\bwhat (?:does|do|did) (?:the )?(?:abbreviation |acronym |initials )?['\"‘“]?{_NOT_TYPED}"
    rf"([a-z][a-z0-9&]{{1,7}})['\"’”]? (?:stand for|abbreviate)\b|\b{_NOT_TYPED}([a-z][a-z0-9&]{{1,7}}) is short for\b",
    re.IGNORECASE,
)
MAX_EXPANSION_WORDS = 12
ASKS_YES_NO = re.compile(
    r"^\W*(?:is|are|was|were|am|do|does|did|can|could|will|would|should|shall|has|have|had|may|might|must)"
    r"(?:n['’]?t)?\s+(?!you\s+(?:please\s+)?(?:tell|say|explain|give|list|show|name|find|describe|summari[sz]e)\b)"
    r"(?!you\s+know\s+(?:who|what|when|where|which|why|how)\b)",
    re.IGNORECASE,
)
ASKS_CHOICE = re.compile(r"\bor\b(?!\s+not\b)", re.IGNORECASE)
# "What is ownership?", "Who is Tom Coffey?", "What does copyleft mean?": the question names a thing and asks
# only what it is, so a sentence saying "X is a …" answers it whatever else the question shares with it
ASKS_DEFINITION = (
    re.compile(r"^\W*(?:what\s+is\s+meant\s+by|define|definition\s+of)\s+(?P<x>[^?]{1,80}?)\s*\?*\s*$", re.I),
    re.compile(r"^\W*(?:what|who)(?:['’]s|\s+(?:is|are|was|were))\s+(?P<x>[^?]{1,80}?)\s*\?*\s*$", re.I),
    re.compile(
        r"^\W*what\s+(?:does|do|did)\s+(?:the\s+)?(?:word\s+|term\s+)?(?P<x>[^?]{1,80}?)\s+mean\s*\?*\s*$", re.I
    ),
)
MAX_DEFINED_WORDS = 6
# "How do I install it?", "How to get help?": the user asks for the steps, which a name or a word never is
# ("pip" of "pip install tiktoken"); SQuAD's "How would one describe the summers?" wants "hot and dry"
ASKS_PROCEDURE = re.compile(
    r"^\W*how\s+(?:(?:do|can|could|should|would|will|might|may|must|shall)\s+i|to)\b", re.IGNORECASE
)
_NOT_DEFINED = re.compile(
    r"(?:it|this|that|these|those|they|he|she|him|her|them|there|here|which|what|who|you|we|i|one|some|not|"
    r"his|its|their|our|your|my|happening|going on|new|next|the (?:matter|problem|issue|point|answer|reason))\b.*",
    re.I,
)
_DETERMINER = r"(?:(?:the|a|an)\s+)?"
_QUOTE = r"[\"'“‘]?"
_UNQUOTE = r"[\"'”’]?"
# "According to X, …?" / "…, according to X?": X is whose words the answer is, not words the answer holds
ATTRIBUTION = (
    re.compile(r"^\W*according to (?P<who>[^,?]{2,80}),\s*(?P<rest>.+)$", re.IGNORECASE | re.DOTALL),
    re.compile(r"^(?P<rest>.+?),?\s+according to (?P<who>[^?]{2,80}?)\s*(?P<end>\?*)\s*$", re.IGNORECASE | re.DOTALL),
)


@dataclass(frozen=True)
class Form:
    """The short answer's place in the sentence; ``of_article``: the sentence (a byline, a dateline)
    speaks for its whole article, so the article's match to the question is its evidence."""

    start: int
    end: int
    of_article: bool


@functools.lru_cache(maxsize=256)
def _asks(question: str) -> tuple[bool, bool, str | None, re.Pattern[str] | None]:
    """What form the question asks for: once per question, not once per sentence."""
    expanded = next((m for pattern in ASKS_EXPANSION if (m := pattern.search(question))), None)
    typed = ASKS_EXPANSION_TYPED.search(question) if expanded is None else None  # "what does lmc stand for"
    return (
        bool(ASKS_AUTHOR.search(question)),
        bool(ASKS_PUBLISHED.search(question)),
        expanded.group(1) if expanded else (typed.group(1) or typed.group(2)).upper() if typed else None,
        definitions(question),
    )


def asks_procedure(question: str) -> bool:
    """Whether the question asks how to do something: its answer is the whole sentence, not a span of it."""
    return bool(ASKS_PROCEDURE.search(question))


def asks_yes_no(question: str) -> bool:
    """Whether the question is answered yes or no ("Is NHS Sefton cutting primary care spending?"): no span
    of a sentence says that, so the sentence is the answer, not a phrase of it ("10%"). A choice ("Is it
    A or B?") and a request put politely ("Can you tell me who…?") are answered by a span as usual."""
    return bool(ASKS_YES_NO.match(question)) and not ASKS_CHOICE.search(question)


def asks_definition(question: str) -> str | None:
    """The thing a question asks to be defined ("What is a vector?" → "vector"), or ``None``."""
    for pattern in ASKS_DEFINITION:
        if m := pattern.match(question):
            thing = re.sub(rf"^{_DETERMINER}", "", m.group("x").strip(" \"'“”‘’"), flags=re.I).strip()
            words = thing.split()
            if 0 < len(words) <= MAX_DEFINED_WORDS and not _NOT_DEFINED.fullmatch(thing):
                return thing
            return None
    return None


def definitions(question: str) -> re.Pattern[str] | None:
    """A sentence that defines what the question asks about: "X is a …", "X means …", "… are called X".
    The copula must lead into a noun phrase (an article, a number, a name, a possessive): "Tom Coffey is
    expected to speak" says something of him, not who he is."""
    thing = asks_definition(question)
    if thing is None:
        return None
    words = [re.escape(w) for w in thing.split()]
    words[-1] += r"(?:e?s)?"  # "What is a vector?" is defined by "Vectors allow …"
    x = _QUOTE + r"[\s-]+".join(words) + r"(?:<[^<>\s]{1,20}>)?" + _UNQUOTE  # "Rc<T>" is Rc
    start = r"^\W*(?:•\s*|\d+\)\s*)?"
    lead = rf"{start}(?:{HONORIFICS}\.?\s+|[\w-]+['’]s\s+)?{_DETERMINER}"  # "Rust’s closures"
    noun_phrase = r"(?=(?:a|an|the|one|any|each|two|three)\b|\d|(?-i:[A-Z])|\w+['’]s\b)"
    copula = (
        rf"(?:(?:is|are|was|were)\s+(?!not\b){noun_phrase}"
        r"|means|refers\s+to|denotes|stands\s+for|shall\s+mean|(?:is|are)\s+defined\s+as)\s*(?P<is>.+)"
    )
    verb = r"(?P<does>(?:allow|let|enable|provide|represent|store|hold|contain|describe|define)s?\b.+)"
    return re.compile(
        rf"{lead}{x}(?:\s*\([^()]{{1,60}}\))?,?\s+(?:{copula}|{verb})"
        rf"|{start}(?P<called>.{{8,200}}?)\s+(?:is|are|was|were)\s+(?:called|known\s+as|termed|referred\s+to\s+as)\s+"
        rf"{_DETERMINER}{x}\W*$"
        rf"|.*?\b{x},\s+which\s+(?:is|are)\s+{noun_phrase}(?P<which>[^,;:()]+)",  # "… the type Rc<T>, which is …"
        re.IGNORECASE | re.DOTALL,
    )


def asks_of_article(question: str) -> bool:
    """Whether the question asks who wrote a piece or when it was published: its first chunk answers."""
    author, published, _, _ = _asks(question)
    return author or published


def is_metadata(sentence: str) -> bool:
    """A byline or dateline: it names who wrote the piece and when, so it answers nothing else ("Who
    predicted…?" is not asking for the reporter, though the reporter's name sits next to the lead)."""
    stripped = sentence.strip()
    if stripped.endswith((".", "!", "?", '."', ".”")):  # prose: "By 9000 BP, Europe was fully forested."
        return False
    return bool(byline(stripped) or dateline(stripped))


@functools.lru_cache(maxsize=256)
def writer_named(question: str) -> frozenset[str]:
    """The words of the writer's name a question gives ("… written by Dr Michelle Drage?"), else empty."""
    m = WRITER_NAMED.search(question)
    return _name_words(m.group(1)) if m else frozenset()


def _name_words(name: str) -> frozenset[str]:
    return frozenset(w.lower() for w in re.findall(r"[A-Za-z]+", name) if not re.fullmatch(HONORIFICS, w, re.I))


def asks_expansion(question: str) -> str | None:
    """The abbreviation the question asks to be spelt out ("What does LMC stand for?"), or ``None``."""
    return _asks(question)[2]


@functools.lru_cache(maxsize=256)
def attribution(question: str) -> tuple[str, str] | None:
    """Whom an "according to …" clause credits, and the question without it: "Where does change have to
    begin, according to the Londonwide LMCs chief executive?" asks what that person wrote, and an opinion
    piece names its writer once, in a byline or sign-off, not in the sentence that answers."""
    for pattern in ATTRIBUTION:
        if m := pattern.match(question):
            rest = m.group("rest").strip()
            if len(rest.split()) < 3:  # "What is according to plan?" credits no one
                return None
            return m.group("who").strip(), rest + (m.groupdict().get("end") or "")
    return None


def direct_form(question: str, sentence: str) -> Form | None:
    """Where in ``sentence`` the fixed-form answer to ``question`` lies, or ``None``."""
    author, published, acronym, definitions = _asks(question)
    stripped = sentence.strip()
    lead = len(sentence) - len(sentence.lstrip())
    found = None
    if author and (m := byline(stripped)):
        named = writer_named(question)
        if not named or named & _name_words(m.group("name")):
            found = trimmed(sentence, lead + m.start("name"), lead + m.end("name"))
    if found is None and published and (m := dateline(stripped)):
        found = trimmed(sentence, lead + m.start("date"), lead + m.end("date"))
    if found is not None:
        return Form(*found, of_article=True)
    found = expansion(acronym, sentence) if acronym else None
    if found is None and definitions is not None and (m := definitions.match(sentence)):
        group = next(g for g in ("is", "does", "called", "which") if m.group(g) is not None)
        found = trimmed(sentence, m.start(group), _clause_end(sentence, m.start(group), m.end(group)))
    return Form(*found, of_article=False) if found else None


_CLAUSE_BREAK = re.compile(
    r"[:;]\s|\s[–—]\s|\s\(|,\s+(?:which|who|whose|where|when|while|such\s+as|including|as\s+in|as\s+well\s+as|but|so|"
    r"although|though|because|like|for\s+example|e\.g\.|i\.e\.|[a-z]+ed|[a-z]+ing|[a-z]+ly)\b"
)


def _clause_end(sentence: str, start: int, end: int) -> int:
    """Where a definition's words stop: before a clause that goes on to something else ("DECnet is a suite
    of network protocols created by Digital Equipment Corporation, originally released in 1975…")."""
    m = _CLAUSE_BREAK.search(sentence, start, end)
    return m.start() if m else end


def expansion(acronym: str, sentence: str, names: bool = True) -> tuple[int, int] | None:
    """The words that ``acronym`` abbreviates, where the sentence defines it: "long form (ACR)" or
    "ACR (long form)" (Schwartz and Hearst's rule: the acronym's letters, in order, from the end, the
    first one starting a word), or, with ``names``, a name written out in full with its initials."""
    short = acronym[:-1] if acronym.endswith("s") and acronym[:-1].isupper() else acronym
    for m in re.finditer(rf"\(\s*{re.escape(short)}s?\s*\)", sentence):
        words = list(re.finditer(r"\S+", sentence[: m.start()]))[-min(len(short) + 5, MAX_EXPANSION_WORDS) :]
        if words:
            start = _long_form_start(short, sentence[words[0].start() : m.start()].rstrip())
            if start is not None:
                return trimmed(sentence, words[0].start() + start, m.start())
    m = re.search(rf"\b{re.escape(short)}s?\s*\(([^()]{{3,120}})\)", sentence)
    if m and _long_form_start(short, m.group(1)) == 0:
        return trimmed(sentence, m.start(1), m.end(1))
    return _proper_name(short, sentence) if names else None


_CAPITALISED = re.compile(r"[A-Z][a-z]+(?:-[A-Za-z]+)*")
_JOINERS = frozenset({"of", "and", "for", "the", "on", "in", "&"})


def _proper_name(short: str, sentence: str) -> tuple[int, int] | None:
    """A name written out in full, with no abbreviation beside it: "Londonwide Local Medical Committees"
    spells LMC with the initials of its capitalised words, in order ("of", "and" … may join them). The
    whole name must be spelt: a capitalised word just after it means a longer name, which is not this."""
    letters = [c for c in short if c.isalpha()]
    if len(letters) < 2 or not all(c.isupper() for c in letters):
        return None
    runs: list[list[re.Match[str]]] = [[]]
    for w in re.finditer(r"[^\s,;:()“”\".!?]+", sentence):
        run = runs[-1]
        if run and sentence[run[-1].end() : w.start()].strip():
            runs.append(run := [])
        run.append(w)
    for run in runs:
        words = [w for w in run if w.group(0).lower() not in _JOINERS]
        for i in range(len(words) - len(letters) + 1):
            named = words[i : i + len(letters)]
            after = words[i + len(letters)] if i + len(letters) < len(words) else None
            if (
                all(_CAPITALISED.fullmatch(w[0]) and w[0][0] == c for w, c in zip(named, letters, strict=True))
                and not (after and _CAPITALISED.fullmatch(after.group(0)) and _adjacent(run, named[-1], after))
                and all(_adjacent(run, a, b) for a, b in itertools.pairwise(named))
            ):
                return named[0].start(), named[-1].end()
    return None


def _adjacent(run: list[re.Match[str]], a: re.Match[str], b: re.Match[str]) -> bool:
    """Whether only joining words lie between ``a`` and ``b`` in the run."""
    between = run[run.index(a) + 1 : run.index(b)]
    return all(w.group(0).lower() in _JOINERS for w in between) and len(between) <= 1


def _long_form_start(short: str, text: str) -> int | None:
    letters = [c.lower() for c in short if c.isalnum()]
    i = len(text) - 1
    for n in range(len(letters) - 1, -1, -1):
        c = letters[n]
        while i >= 0 and (text[i].lower() != c or (n == 0 and i > 0 and text[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return None
        i -= 1
    start = i + 1
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    return start


def trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    """``text[start:end]`` without the spaces, quote marks and punctuation at its edges: a short answer is
    the words ("all the noise"), not the quote mark or comma the tokens around them began with. A bracket
    it opens is closed: "90.20 K (−182.95 °C" reads on to "°F)", unless the aside is long, when the answer
    stops before it ("VideoGuard UK equipped receiver", not the half of "(all of which are dedicated …")."""
    while start < end and text[start] in " \t\u00a0,;:“‘\"'•·▪‣◦●∙":  # a list item's bullet is no word of it
        start += 1
    while end > start and text[end - 1] in " \t\u00a0,;:.”’\"'":
        end -= 1
    if end > start and (opened := _unclosed(text, start, end)) is not None:
        close = re.match(r"[^()\[\]\n]{0,160}?[)\]]", text[end:])
        if close and len(text[opened + 1 : end + close.end() - 1].split()) <= MAX_ASIDE_WORDS:
            return start, end + close.end()
        return trimmed(text, start, opened) if opened > start else trimmed(text, start + 1, end)
    return (start, end) if end > start else None


MAX_ASIDE_WORDS = 6


def _unclosed(text: str, start: int, end: int) -> int | None:
    """Where the first bracket left open in ``text[start:end]`` opens."""
    opened: list[int] = []
    for i in range(start, end):
        if text[i] in "([":
            opened.append(i)
        elif text[i] in ")]" and opened:
            opened.pop()
    return opened[0] if opened else None


@functools.lru_cache(maxsize=256)
def said_as(phrase: str) -> re.Pattern[str]:
    """``phrase`` wherever a text says it, case and line breaks aside: an answer given before, found again."""
    return re.compile(r"\s+".join(map(re.escape, phrase.split())), re.IGNORECASE)


_CLAUSE_START = re.compile(
    r"(?:is|are|was|were|has|have|had|will|would|can|could|said|says|which|who|whom|that|where|when|while|"
    r"but|as|because|although|though|if|it|he|she|they|we|i|you|there|this|these|those)\b",
    re.IGNORECASE,
)
MAX_ITEM_WORDS = 8


def rest_of_list(sentence: str, given: str) -> tuple[int, int] | None:
    """Where ``sentence`` goes on listing after ``given``, an item of its list answered before: "to community
    services, the third sector, schools, and other agencies …" holds what "Who else?" asks after
    "community services". The rest must read as list items (short, none opening a clause: ", is aiming
    to …" is no item) and end with "and" or "or" before the last."""
    for m in said_as(given).finditer(sentence) if given.split() else ():
        items: list[tuple[int, int]] = []
        at = m.end()
        while item := re.match(r",\s*(?:(and|or)\s+)?([^,.;:!?()“”\"]+)", sentence[at:]):
            start, end = at + item.start(2), at + item.end(2)
            words = sentence[start:end].split()
            if not words or _CLAUSE_START.match(words[0]) or (not item.group(1) and len(words) > MAX_ITEM_WORDS):
                break
            items.append((start, end))
            at = end
            if item.group(1):  # "…, and other agencies …": the last item
                return trimmed(sentence, items[0][0], items[-1][1])
        if items and re.search(r"\s(?:and|or)\s", sentence[items[-1][0] : items[-1][1]]):
            return trimmed(sentence, items[0][0], items[-1][1])  # "…, pumping stations and managed retreat"
    return None
