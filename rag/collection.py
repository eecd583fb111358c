"""Questions about the collection itself, not about what its documents say.

"What documents do you have?", "Which articles mention Michelle Drage?", "What has Ian Quinn written?"
and "What do the comments say?" are answered from the index: its list of documents, their bylines and
comments, and the sentences where a name or phrase occurs. Retrieval would bring five passages and the
reader would look in them for an answer that no passage states; the index knows it exactly, however many
documents there are. Each document or comment named is cited by words of its own (its title, its byline,
the first sentence that mentions what was asked, a comment's opening), so the answer keeps the citation
contract and the user can open each one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .conversation import SHORT_ANSWER_RE
from .direct import is_metadata
from .documents import byline
from .names import HONORIFICS
from .retrieval import Retriever, tokenize
from .store import IndexData
from .types import COMMENT, LEAD_SEP, Answer, Citation

LISTED = 10  # documents named in one answer; the rest are counted
SCANNED = 5_000  # passages read for mentions; past that the count is a lower bound
QUOTED_WORDS = 12  # a comment is quoted from its start to the end of the sentence that reaches this many words
_KINDS = (
    r"(?:documents?|articles?|files?|sources?|pieces?|stories|story|texts?|papers?|reports?|notes?|posts?|"
    r"letters?|emails?)"
)
_END = r"[\s?.!]*$"
ASKS_LIST = re.compile(
    rf"^\W*(?:(?:what|which) {_KINDS} (?:do you have|are there|are (?:in here|indexed|available|loaded)|have you got|"
    rf"can you (?:see|search|read))|(?:list|show)(?: me)?(?: all| the| your)* {_KINDS}(?: you have)?|"
    rf"how many {_KINDS} (?:are there|do you have|are (?:indexed|available|loaded)|have you got)){_END}",
    re.IGNORECASE,
)
ASKS_MENTIONS = re.compile(
    rf"^\W*(?:which|what) {_KINDS} (?:mentions?|names?|refers? to|talks? about|discuss(?:es)?|covers?|"
    rf"(?:are|is) about|deals? with|says? anything about)\s+(?P<what>.+?){_END}",
    re.IGNORECASE,
)
ASKS_WRITTEN = re.compile(
    rf"^\W*(?:what|which {_KINDS}) (?P<else>else )?(?:did|has|have) (?P<who>.+?) "
    rf"(?:written|write|wrote|covered|cover|reported on|report on)(?: about)?{_END}|"
    rf"^\W*(?:which|what)(?P<else2> other)? {_KINDS} (?:are|were|is|was) (?:written )?by (?P<by>.+?){_END}",
    re.IGNORECASE,
)

SMALL_TALK = {
    "hello": re.compile(
        r"^\W*(?:hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|evening|day))(?: there)?\W*$", re.I
    ),
    "thanks": re.compile(
        r"^\W*(?:thanks|thank you|thx|cheers|many thanks)(?: (?:so|very) much)?"
        r"(?: for (?:that|this|the help|your help))?\W*$",
        re.I,
    ),
    "help": re.compile(
        r"^\W*(?:help|what can you do|what do you do|how do(?:es)? (?:this|it|you) work|who are you|"
        r"what are you|how do i use (?:this|you))\W*$",
        re.I,
    ),
}
ASKS_COMMENTS = re.compile(
    r"^\W*(?:(?:summari[sz]e|show(?: me)?|list|tell me about|give me|read(?: me)?|what (?:do|did|are|were)|"
    r"what's in)\s+"
    r"(?:all\s+)?(?:the\s+)?(?:readers?['’]?s?['’]?\s+)?comments?(?:\s+(?:say|said|saying))?|"
    r"what (?:do|did) (?:the\s+)?(?:readers|commenters) (?:say|think|write))\W*$",
    re.IGNORECASE,
)
ASKS_SUMMARY = re.compile(
    r"^\W*(?:what (?:does|did) [“\"‘'](?P<title>.+)[”\"’'] (?:say|cover|report)|"
    r"(?:summari[sz]e|sum up|give me (?:a|the) (?:summary|gist) of|what(?:'s| is) the gist of)\s+(?P<what>.+?)|"
    rf"what (?:does|did) the {_KINDS} (?:about|on) (?P<about>.+?) (?:say|cover|report))[\s?.!]*$",
    re.IGNORECASE,
)
SUMMARY_SENTENCES = 3  # a summary is the piece's opening: a news story puts what matters first
WHO_IS_RE = re.compile(r"^\W*who(?:'s|’s| is| was)\s+(?P<who>[^?]+?)[\s?.!]*$", re.IGNORECASE)
_PARTICLES = frozenset({"de", "van", "von", "der", "den", "da", "di", "du", "le", "la", "bin", "al", "y"})


def is_name(text: str) -> bool:
    """Capitalised words, with the particles names have ("Ludwig van Beethoven", "Łukasz Nowak", "J. R. R.
    Tolkien"): not "he", left unresolved, nor "Child in 1842"."""
    words = text.split()
    return 0 < len(words) <= 6 and all(
        w in _PARTICLES or (w[0].isupper() and re.fullmatch(r"[^\W\d_]+(?:[.'’-][^\W\d_]*)*\.?", w)) for w in words
    )


@dataclass(frozen=True)
class Asked:
    """What a question about the collection asks: ``kind`` is "list", "mentions", "written", "comments",
    "summary" or small talk ("hello", "thanks", "help"); ``what`` the phrase, writer, title or topic it
    names; ``other``: "what else…", so documents given before are left out; ``named_kind``: it says it
    asks for documents ("Which pieces…"), not only "What did X write?", or a summary names its piece by
    title rather than by topic."""

    kind: str
    what: str = ""
    other: bool = False
    named_kind: bool = True  # "Which pieces…": about documents, even when no writer matches


def asked(question: str) -> Asked | None:
    """What the question asks of the collection, or ``None`` when it asks what the documents say."""
    own = question.strip()
    if said := next((kind for kind, pattern in SMALL_TALK.items() if pattern.match(own)), None):
        return Asked(said)
    if ASKS_LIST.match(own):
        return Asked("list")
    if ASKS_COMMENTS.match(own):
        return Asked("comments")
    if m := ASKS_SUMMARY.match(own):
        if m.group("title"):
            return Asked("summary", m.group("title").strip(), named_kind=True)
        what = m.group("about") or m.group("what")
        if not m.group("about") and not re.search(rf"\b{_KINDS}\b", what, re.IGNORECASE):
            return None  # "Summarise the cuts in Sefton" asks about a topic (``conversation.about``), not a piece
        what = re.sub(rf"^(?:the|this|that|an?)\s+|\b{_KINDS}\s+(?:about|on)\s+|\s+{_KINDS}$", "", what, flags=re.I)
        return Asked("summary", what.strip(" \"'“”‘’"), named_kind=False)
    if m := ASKS_WRITTEN.match(own):
        who = (m.group("who") or m.group("by") or "").strip()
        if is_name(who) and _name_words(who):
            named = bool(re.match(rf"^\W*(?:which|what)(?: other)? {_KINDS}\b", own, re.IGNORECASE))
            return Asked("written", who, bool(m.group("else") or m.group("else2")), named)
    if (m := ASKS_MENTIONS.match(own)) and tokenize([m.group("what")])[0]:
        return Asked("mentions", m.group("what").strip(" \"'“”‘’"))
    return None


def answer(
    question: Asked,
    data: IndexData,
    records: dict[str, dict[str, Any]],
    retriever: Retriever,
    exclude: Sequence[str] = (),
    name: str = "collection",
    find: Callable[[str], str | None] | None = None,
) -> Answer | None:
    """The documents the question asks for, each cited by a sentence of its own; ``None`` when it asks only
    what someone who wrote none of them wrote: "What did Darwin write about?" over Wikipedia asks what the
    text says he wrote. ``records``: the documents' records by source, as the pipeline keeps them."""
    which = ""
    total = f"{len(records)} document{'s' if len(records) != 1 else ''}"
    if question.kind in SMALL_TALK:
        return Answer(text=_small_talk(question.kind, total), abstained=False, confidence=1.0, answerer=name)
    if question.kind == "comments":
        return _comments(data, records, name)
    if question.kind == "summary":
        if tokenize([re.sub(rf"\b{_KINDS}\b", " ", question.what, flags=re.I)])[0]:  # names its piece
            source = _titled(records, question.what) if question.named_kind else (find(question.what) if find else None)
            return _summary(data, records[source], name) if source in records else None
        if len(records) <= 1:  # "Summarise the article", of the only one
            return _summary(data, next(iter(records.values())), name) if records else None
        question, which = Asked("list"), "Which one? "  # of several: the list asks
    if question.kind == "list":
        found: list[tuple[dict[str, Any], Citation | None]] = [(r, None) for r in records.values()]
        lead = (
            f"{which}{total}:"
            if records
            else "The documents don't say: none is indexed yet (`rag index` or the upload box adds some)."
        )
    elif question.kind == "written":
        wanted = _name_words(question.what)
        found = [(r, _byline(data, r)) for r in records.values() if wanted <= _name_words(r.get("author") or "")]
        if not found and not question.named_kind:
            return None
        if question.other:
            said = [_body(e) for e in exclude]
            found = [(r, c) for r, c in found if c is None or not any(c.quote in s for s in said)]
        n = len(found)
        lead = f"{question.what} wrote {n} of the {total}:"
        if question.other:
            lead = f"{question.what} also wrote {n} other{'s' if n != 1 else ''}:"
        if not found:
            other = " other" if question.other else ""
            lead = f"The documents don't say: no{other} byline in the {total} names {question.what}."
    else:
        found, complete = _mentions(data, records, retriever, question.what)
        count = f"{'' if complete else 'At least '}{len(found)} of the {total}"
        lead = f"{count} mention{'s' if len(found) == 1 else ''} “{question.what}”:"
        if not found:
            lead = f"The documents don't say: none of the {total} mentions “{question.what}”."
    if not found:
        return Answer(text=lead, abstained=True, confidence=1.0, answerer=name)
    citations, parts = [], []
    for record, cited in found[:LISTED]:
        cited = cited or _title(data, record)
        if cited is None:
            continue
        citations.append(cited)
        by = f" by {record['author']}" if record.get("author") and question.kind != "written" else ""
        parts.append(f"“{record.get('display_title') or record['source']}”{by} [{len(citations)}]")
    more = f"; and {len(found) - LISTED} more (`rag ls` lists them all)" if len(found) > LISTED else ""
    return Answer(
        text=f"{lead} {'; '.join(parts)}{more}.", abstained=False, citations=citations, confidence=1.0, answerer=name
    )


def _comments(data: IndexData, records: dict[str, dict[str, Any]], name: str) -> Answer:
    """Readers' comments, each cited by its first sentence, with its writer where its label names one."""
    found = []
    for record in records.values():
        for start, end, kind, label in record.get("sections") or ():
            if kind == COMMENT:
                found.append((record, start, end, label))
    if not found:
        text = f"The documents don't say: none of the {len(records)} documents has readers' comments."
        return Answer(text=text, abstained=True, confidence=1.0, answerer=name)
    citations, parts = [], []
    for record, start, end, label in found[:LISTED]:
        inside = [(c, a, b) for c, a, b, _ in _sentences(data, record["source"]) if start <= a and b <= end]
        if not inside:
            continue
        chunk, a, b = inside[0]
        for other, _, b2 in inside[1:]:  # "Guardians of general practice?" alone says little: quote on
            if other is not chunk or len(chunk.text[a - chunk.start : b - chunk.start].split()) >= QUOTED_WORDS:
                break
            b = b2
        citations.append(Citation.of(chunk, a, b, record.get("display_title") or record["source"]))
        who = label.partition(" by ")[2] if label else ""
        parts.append(f"{who + ': ' if who else ''}“{' '.join(citations[-1].quote.split())}” [{len(citations)}]")
    titles = dict.fromkeys(f"“{r.get('display_title') or r['source']}”" for r, *_ in found[:LISTED])
    lead = f"{len(found)} readers' comment{'s' if len(found) != 1 else ''}, on {', '.join(titles)}:"
    more = f"; and {len(found) - LISTED} more" if len(found) > LISTED else ""
    return Answer(
        text=f"{lead} {'; '.join(parts)}{more}.", abstained=False, citations=citations, confidence=1.0, answerer=name
    )


def _titled(records: dict[str, dict[str, Any]], title: str) -> str | None:
    """The document a quoted title names: its title, or the start of it (a display title is cut short)."""
    wanted = " ".join(title.replace("…", " ").split()).lower()
    for record in records.values():
        for known in (record.get("title"), record.get("display_title")):
            known = " ".join((known or "").replace("…", " ").split()).lower()
            if known and (known == wanted or (len(wanted) >= 20 and known.startswith(wanted))):
                return record["source"]
    return None


def _summary(data: IndexData, record: dict[str, Any], name: str) -> Answer:
    """The piece's opening sentences, past its title, byline and dateline: what a news story leads with."""
    title = " ".join((record.get("title") or "").split())
    picked = []
    for chunk, a, b, text in _sentences(data, record["source"]):
        words = text.split()
        if chunk.kind != "body" or len(words) < 6 or " ".join(words) == title or is_metadata(text):
            continue
        picked.append(Citation.of(chunk, a, b, record.get("display_title") or record["source"]))
        if len(picked) == SUMMARY_SENTENCES:
            break
    heading = record.get("display_title") or record["source"]
    by = f" by {record['author']}" if record.get("author") else ""
    if not picked:
        text = f"The documents don't say: “{heading}” has no sentence of its own to quote."
        return Answer(text=text, abstained=True, confidence=1.0, answerer=name)
    quoted = " ".join(f"{' '.join(c.quote.split())} [{n}]" for n, c in enumerate(picked, start=1))
    return Answer(
        text=f"“{heading}”{by} opens: {quoted}", abstained=False, citations=picked, confidence=1.0, answerer=name
    )


def writer_asked(question: str) -> Asked | None:
    """ "Who is Gareth Iacobucci?" asked of a writer the text says nothing else about: the pieces he wrote
    say who he is (``answer`` gives ``None`` when no byline names him)."""
    m = WHO_IS_RE.match(question.strip())
    who = m.group("who").strip() if m else ""
    return Asked("written", who, named_kind=False) if is_name(who) and _name_words(who) else None


def _small_talk(kind: str, total: str) -> str:
    """A greeting, thanks or a request for help: answered as such, not with "The documents don't say"."""
    if kind == "thanks":
        return "You're welcome. Ask another question about the documents whenever you like."
    what = (
        f"I answer questions from the {total} indexed here. Every answer quotes them word for word, with "
        "numbered citations that open the quote highlighted in its source, and when they don't say, I say "
        "so. Follow-up questions can refer to earlier ones."
    )
    start = "Hello! " if kind == "hello" else ""
    return f"{start}{what} “What documents do you have?” lists them."


def _name_words(name: str) -> frozenset[str]:
    return frozenset(w.lower() for w in re.findall(r"[^\W\d_]+", name) if not re.fullmatch(HONORIFICS, w, re.I))


def _body(answer: str) -> str:
    """An earlier answer's quotes: its text without the short answer leading it and the markers."""
    m = SHORT_ANSWER_RE.match(answer)
    text = answer[m.end() :] if m else answer
    return re.sub(r"\s*\[\d+\]", "", text).replace(LEAD_SEP, " ")


def _sentences(data: IndexData, source: str, head: bool = False) -> Iterator[tuple[Any, int, int, str]]:
    """The document's sentences in order; with ``head``, its first chunk's only, where the title and byline
    sit (``Retriever._with_heads`` reads them there too)."""
    ids = data.chunks_of.get(source, ())
    for cid in ids[:1] if head else ids:
        chunk = data.chunks[cid]
        for a, b in chunk.sentences:
            yield chunk, a, b, chunk.text[a - chunk.start : b - chunk.start]


def _title(data: IndexData, record: dict[str, Any]) -> Citation | None:
    """The document's title where its text states it, else its first sentence."""
    source = record["source"]
    title = " ".join((record.get("title") or "").split())
    first = None
    for chunk, a, b, text in _sentences(data, source, head=True):
        first = first or (chunk, a, b)
        if title and " ".join(text.split()) == title:
            return Citation.of(chunk, a, b, record.get("display_title") or source)
    return Citation.of(first[0], first[1], first[2], record.get("display_title") or source) if first else None


def _byline(data: IndexData, record: dict[str, Any]) -> Citation | None:
    source = record["source"]
    for chunk, a, b, text in _sentences(data, source, head=True):
        if byline(text.strip()):
            return Citation.of(chunk, a, b, record.get("display_title") or source)
    return None


def _mentions(
    data: IndexData, records: dict[str, dict[str, Any]], retriever: Retriever, what: str
) -> tuple[list[tuple[dict[str, Any], Citation | None]], bool]:
    """Each document with the first sentence that names ``what`` (a name, capitalised words, as written,
    case aside; other words by their terms, all in one sentence: "cuts in Sefton" finds "Sefton … cut"),
    and whether every passage holding its terms was read (``SCANNED``)."""
    terms = set(tokenize([what])[0])
    named = all(w[:1].isupper() for w in re.findall(r"[^\W\d_]+", what))
    phrase = re.compile(r"(?<!\w)" + r"\W+".join(map(re.escape, re.findall(r"\w+", what))) + r"(?!\w)", re.I)
    found: dict[str, tuple[dict[str, Any], Citation | None]] = {}
    ids = retriever.chunks_with_all(terms)
    for cid in ids[:SCANNED]:
        chunk = data.chunks[cid]
        if chunk.source in found:
            continue
        for a, b in chunk.sentences:
            text = chunk.text[a - chunk.start : b - chunk.start]
            if phrase.search(text) if named else terms <= set(tokenize([text])[0]):
                record = records.get(chunk.source, {"source": chunk.source})
                found[chunk.source] = (record, Citation.of(chunk, a, b, record.get("display_title") or chunk.source))
                break
    return list(found.values()), len(ids) <= SCANNED
