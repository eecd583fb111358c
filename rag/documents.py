"""Parse article files into ``Document``s: metadata, the article's own text and readers' comments.

Everything is located by character offsets into the text exactly as
``Path(source).read_text(encoding="utf-8")`` returns it, so quotes can always be checked.
Site chrome is recognised by rules that hold for news and web pages in general: widgets and
banners by their shape (share/rate widgets, comment moderation links, "intended for ... only"),
and the rest by position (the masthead above the headline, captions and sign-offs after the
last paragraph), never by file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import formats
from .config import ROOT
from .errors import CorpusError
from .types import BODY, COMMENT, Document, Section

log = logging.getLogger(__name__)


# Page furniture that reads the same on any site: widgets, banners, counters, legal lines. Each must fill
# its whole paragraph, and none of them can be a sentence of an article.
_CHROME = [
    r"this (?:site|website|page|content|service|section) is (?:only )?"
    r"(?:intended|meant|designed|aimed) (?:for|at) .{0,80}",
    r"related (?:images|articles|content|stories|links|topics|posts|videos|reading)",
    r"(?:rate|rating for) this (?:article|story|post|page).{0,60}",
    r"(?:click|tap) to rate",
    r"\d+(?:\.\d+)? (?:out of \d+ )?stars?(?: out of \d+)?",
    r"(?:unsuitable or offensive\?\s*)?report (?:this|a) comment",
    r"(?:have your say|leave a (?:comment|reply)|add (?:a |your )?comment|post a comment"
    r"|join the (?:discussion|conversation))",
    r"(?:downloads?|attachments?|print(?: this (?:article|page))?|e-?mail(?: this)?"
    r"|share(?: this)?(?: article| page| story)?)",
    r"(?:share|follow us) on .{0,60}",
    r"(?:sign up|subscribe)(?: now| today| for free)? (?:to|for) (?:our|the) .{0,40}(?:newsletter|updates|alerts)\.?",
    r"advertisement|sponsored(?: content)?|skip to (?:main )?content|back to top",
    r"(?:copyright )?(?:©|\(c\)) ?.{0,120}|copyright (?:19|20)\d\d\b.{0,100}|all rights reserved\.?",
    r"(?:log ?in|sign in)(?: to (?:comment|reply|continue|your account))?",
    r"\d+ (?:likes?|shares?|views?|replies)",
    r"press \S{1,12}(?: or \S{1,12})? to (?:navigate between (?:chapters|pages)|search (?:in )?(?:the|this) "
    r"(?:book|site|page)|show this help|hide this help)",  # a web book's keyboard help
]
CHROME_RE = re.compile(r"(?:" + r"|".join(_CHROME) + r")", re.IGNORECASE)
COMMENTS_HEADING_RE = re.compile(
    r"(?:(?:readers?'?s?'?|users?'?|your|latest|recent)\s+)?comments?\s*(?:\(\d+\))?:?|\d+\s+comments?",
    re.IGNORECASE,
)
BYLINE_RE = re.compile(r"(?:by|authors?:?|written by|words by)\s+(?P<name>[^\n]{2,80})", re.IGNORECASE)
DATELINE_RE = re.compile(
    r"(?:publication date|published(?: on)?|date|posted(?: on)?|updated(?: on)?)\s*:?\s*(?P<date>[^\n]{4,40})",
    re.IGNORECASE,
)
FIELD_RE = re.compile(r"(?P<label>[A-Z][\w'’&/ -]{0,40}?):[ \t]+(?P<value>[^\s:][^\n]{0,120})")
# a record's own fields above its text name who and when, never what it is: "Present: Ana Ruiz (chair), Ewan
# Flett" under the minutes' heading is no headline
RECORD_LABEL_RE = re.compile(
    r"(?:present|attend(?:ees|ing|ance)|apologies|absent|in attendance|chair(?:ed by)?|minutes(?: taken)? by|"
    r"venue|location|time|date|to|from|cc|bcc|sent)\Z",
    re.IGNORECASE,
)
FURNITURE_LABEL_RE = re.compile(
    r"(?:share|follow|tags?|topics?|categor(?:y|ies)|filed under|print|e-?mail|related|read more|see also|"
    r"comments?|subscribe|advertisement|sponsored|cite|image|photo|picture|credit|source)s?\b",
    re.IGNORECASE,
)
BULLET_RE = re.compile(r"[ \t]*[•·▪●◦‣∙][ \t]*")
HEADING_MARK_RE = re.compile(r"#{1,6}[ \t]+")
_CLOSERS = "\"'’”»)]*_ \t"
_TERMINAL = ".!?…"
_DATE_FORMATS = ("%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y", "%B %d %Y", "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y")
_NAME_RE = re.compile(r"(?:[A-Z][a-zA-Z'’\-]+|[A-Z]\.?)(?: (?:[A-Z][a-zA-Z'’\-]+|[A-Z]\.?)){1,3}")


@dataclass(frozen=True)
class Block:
    start: int
    end: int
    bullet: bool


def display_source(path: Path) -> str:
    """Paths inside the repository are given relative to its root, others absolute."""
    path = path.resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def resolve_source(source: str) -> Path:
    path = Path(source)
    return path if path.is_absolute() else ROOT / path


def check_size(path: Path, max_bytes: int | None) -> int:
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise CorpusError(
            f"{path}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.1f} MB limit; "
            "split the file or raise RAG_MAX_FILE_MB"
        )
    return size


def read_bytes(path: Path, max_bytes: int | None = None) -> tuple[bytes, os.stat_result]:
    """The file's bytes and its state before they were read: a file that changes meanwhile then
    looks changed to the next staleness check, never fresh with an old text."""
    try:
        stat = path.stat()
        check_size(path, max_bytes)
        return path.read_bytes(), stat
    except OSError as e:
        raise CorpusError(f"{path}: cannot be read ({e.strerror or e})") from None


def decode(path: Path, raw: bytes) -> str:
    """The text exactly as the citation contract reads it (``read_text``: UTF-8, universal newlines)."""
    if b"\x00" in raw[:8192]:
        raise CorpusError(f"{path}: looks binary (contains NUL bytes); only UTF-8 text files are indexed")
    try:
        text = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8").read()
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: is not UTF-8 (byte {e.start}); convert it, e.g. iconv -t UTF-8") from None
    if not text.strip():
        raise CorpusError(f"{path}: is empty")
    return text


def read_text(path: Path, max_bytes: int | None = None) -> str:
    """Read as the citation contract does, refusing what is not a readable text file."""
    return decode(path, read_bytes(path, max_bytes)[0])


def _squash(text: str) -> str:
    return " ".join(text.split())


def _words(text: str) -> int:
    return len(text.split())


def _is_prose(text: str) -> bool:
    stripped = text.rstrip(_CLOSERS)
    words = _words(text)
    return (bool(stripped) and stripped[-1] in _TERMINAL and words >= 6) or words >= 25


def _is_chrome(text: str) -> bool:
    return bool(CHROME_RE.fullmatch(_squash(text)))


def _is_field(text: str) -> bool:
    """A line that states one thing under a label ("Next meeting: 9 April 2024", "Contact: Ana Ruiz"): what
    follows the last paragraph is a page's sign-off and widgets, but such a line is the document's own."""
    m = FIELD_RE.fullmatch(text.strip())
    return (
        bool(m)
        and _words(m["label"]) <= 4
        and _words(m["value"]) <= 15
        and not FURNITURE_LABEL_RE.match(m["label"])
        and not _is_chrome(text)
    )


def blocks(text: str) -> list[Block]:
    """Paragraphs (runs of non-blank lines), with bullet items split out, trimmed of whitespace."""
    out: list[Block] = []
    pos = 0
    for line in text.splitlines(keepends=True):
        start, pos = pos, pos + len(line)
        content = line.rstrip("\r\n")
        if not content.strip():
            out.append(Block(-1, -1, False))
            continue
        bullet = BULLET_RE.match(content)
        heading = HEADING_MARK_RE.match(content.lstrip())
        lead = len(content) - len(content.lstrip())
        if bullet:
            begin = start + bullet.end()
        elif heading:
            begin = start + lead + heading.end()
        else:
            begin = start + lead
        end = start + len(content.rstrip())
        if end <= begin:
            continue
        if bullet or heading or not out or out[-1].start < 0:
            out.append(Block(begin, end, bool(bullet)))
        else:
            out[-1] = Block(out[-1].start, end, out[-1].bullet)
    return [b for b in out if b.start >= 0]


def _parse_date(raw: str) -> str:
    cleaned = _squash(raw).strip(" ,.")
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).date().isoformat()
        except ValueError:
            continue
    return cleaned


def _looks_like_date(raw: str) -> bool:
    return _parse_date(raw) != _squash(raw).strip(" ,.") or bool(
        re.fullmatch(r"\d{1,2} \w+ \d{4}|\w+ \d{1,2},? \d{4}|\d{4}-\d{2}-\d{2}", _squash(raw).strip(" ,."))
    )


def byline(text: str) -> re.Match[str] | None:
    """``text`` as a byline ("By Jane Smith", "Authors: …") naming at most eight words of author."""
    m = BYLINE_RE.fullmatch(text)
    return m if m and _words(m["name"]) <= 8 else None


def dateline(text: str) -> re.Match[str] | None:
    """``text`` as a dateline ("Publication date: 4 May 2017") whose date reads as one."""
    m = DATELINE_RE.fullmatch(text)
    return m if m and _looks_like_date(m["date"]) else None


def _commenter(text: str) -> str | None:
    """A comment's first line is its author when it is just a short personal name."""
    squashed = _squash(text)
    if _words(squashed) <= 4 and _NAME_RE.fullmatch(squashed):
        return squashed
    return None


def _is_record_field(line: str) -> bool:
    m = FIELD_RE.fullmatch(line.strip())
    return bool(m) and bool(RECORD_LABEL_RE.match(m["label"].strip()))


def _headline(text: str, lines: list[tuple[int, Block]], anchored: bool, has_body: bool) -> int | None:
    """Which one-line header block is the headline.

    Above the article sit the site's masthead, taglines, edition promos and section kickers; the
    headline is the line closest to the article: right above the byline or dateline when there is
    one, else the nearest headline-length line above the body (a longer line there is a standfirst).
    Everything above the headline is page furniture. A text with no prose at all keeps every line
    and takes its first as the title.
    """
    sized = [(i, _words(text[b.start : b.end])) for i, b in lines if not _is_record_field(text[b.start : b.end])]
    if not has_body:
        return next((i for i, n in sized if 3 <= n <= 30), None)
    limit = 30 if anchored else 12
    for i, n in reversed(sized):
        if 3 <= n <= limit:
            return i
    return sized[-1][0] if sized and sized[-1][1] <= limit else None


def parse(source: str, text: str, title_line: str | None = None, furnished: bool = True) -> Document:
    """Split ``text`` into metadata, article sections and comment sections. ``title_line`` is the title
    when the file states one (a Markdown heading): the header line that reads so is taken, not guessed.
    A text that is not ``furnished`` (Markdown: its structure says what is text) keeps every block after
    the first paragraph, where a web page's captions, sign-offs and widgets would be dropped."""
    bl = blocks(text)
    kept: list[tuple[Block, str, str | None]] = []
    title = author = date = None

    comment_at = next(
        (i for i, b in enumerate(bl) if COMMENTS_HEADING_RE.fullmatch(_squash(text[b.start : b.end]))), len(bl)
    )
    article, comments = bl[:comment_at], bl[comment_at + 1 :]
    prose = [i for i, b in enumerate(article) if _is_prose(text[b.start : b.end])]
    first_prose, last_prose = (prose[0], prose[-1]) if prose else (len(article), len(article) - 1)

    header = [b for b in article[:first_prose] if not _is_chrome(text[b.start : b.end])]
    anchor = len(header)  # a byline or dateline sits right under the headline
    for i, b in enumerate(header):
        block_text = _squash(text[b.start : b.end])
        by, dated = byline(block_text), dateline(block_text)
        if by and author is None:
            author = by["name"].strip()
        elif dated and date is None:
            date = _parse_date(dated["date"])
        elif date is None and _looks_like_date(block_text) and _words(block_text) <= 5:
            date = _parse_date(block_text)
        else:
            continue
        anchor = min(anchor, i)
        kept.append((b, BODY, None))
    meta = {b for b, _, _ in kept}
    lines = [(i, b) for i, b in enumerate(header[:anchor]) if b not in meta and "\n" not in text[b.start : b.end]]
    stated = [i for i, b in lines if title_line and _squash(text[b.start : b.end]) == title_line]
    at = stated[0] if stated else _headline(text, lines, anchored=anchor < len(header), has_body=bool(prose))
    if at is not None:
        title = text[header[at].start : header[at].end]
    for i, b in enumerate(header):
        if b not in meta and (at is None or i >= at):
            kept.append((b, BODY, None))
    for b in article[first_prose : last_prose + 1] if furnished else article[first_prose:]:
        if not furnished or not _is_chrome(text[b.start : b.end]):
            kept.append((b, BODY, None))
    tail = article[last_prose + 1 :] if furnished and prose else []
    listed = _list_run_on(text, tail) if article[last_prose].bullet else 0
    kept += [(b, BODY, None) for b in tail[:listed]]
    for b in tail[listed:]:
        if _is_field(text[b.start : b.end]):  # "Next meeting: 9 April 2024" under the minutes
            kept.append((b, BODY, None))

    label = None
    for b in comments:
        block_text = text[b.start : b.end]
        if _is_chrome(block_text):
            continue
        if b.bullet:
            name = _commenter(block_text)
            label = f"Reader's comment by {name}" if name else "Reader's comment"
            if name:
                continue
        kept.append((b, COMMENT, label or "Reader's comment"))

    return Document(
        source=source,
        text=text,
        title=_squash(title) if title else None,
        author=author,
        date=date,
        sections=tuple(_sections(kept, bl)),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def _list_run_on(text: str, tail: list[Block]) -> int:
    """How many of the blocks after a page's last paragraph of prose carry on the list that paragraph is an
    item of: items that are sentences ("• The Go API is undocumented."), each too short to count as prose
    alone. A box of links under an article ("• Bus fares to rise in April") does not end like a sentence."""
    n = 0
    for b in tail:
        words = text[b.start : b.end]
        if not b.bullet or _is_chrome(words) or words.rstrip(_CLOSERS)[-1:] not in _TERMINAL:
            break
        n += 1
    return n


def _sections(kept: list[tuple[Block, str, str | None]], all_blocks: list[Block]) -> Iterator[Section]:
    """Merge kept blocks into maximal runs that no dropped block interrupts."""
    order = {b: i for i, b in enumerate(all_blocks)}
    current: Section | None = None
    last_index = -2
    for block, kind, label in sorted(kept, key=lambda k: k[0].start):
        index = order[block]
        new_comment = kind == COMMENT and block.bullet
        if (
            current is not None
            and index == last_index + 1
            and current.kind == kind
            and current.label == label
            and not new_comment
        ):
            current = Section(current.start, block.end, kind, label)
        else:
            if current is not None:
                yield current
            current = Section(block.start, block.end, kind, label)
        last_index = index
    if current is not None:
        yield current


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every visible file under the given folders (unsupported ones are reported when loaded), and given files."""
    for path in paths:
        if path.is_dir():
            found = (p for p in path.rglob("*") if p.is_file())
            yield from sorted(p for p in found if not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            yield path
        else:
            raise CorpusError(f"{path} does not exist; give folders or files ({', '.join(formats.ALL_SUFFIXES)})")


def load(path: Path, max_bytes: int | None = None, raw: bytes | None = None) -> Document:
    """Parse one file (from ``raw`` when the caller has read it already); ``CorpusError`` says why a
    file is skipped (unsupported, encrypted, empty, broken)."""
    suffix = path.suffix.lower()
    if suffix not in formats.ALL_SUFFIXES:
        raise CorpusError(
            f"{path}: {suffix or 'files without an extension'} is not supported; "
            f"index {', '.join(formats.ALL_SUFFIXES)}"
        )
    if raw is None:
        raw = read_bytes(path, max_bytes)[0]
    if suffix in formats.TEXT_SUFFIXES:
        return parse(display_source(path), decode(path, raw))
    if not raw:
        raise CorpusError(f"{path}: is empty")
    extracted = formats.extract(path, suffix, raw)
    doc = parse(display_source(path), extracted.text, extracted.title, extracted.furnished)
    return dataclasses.replace(doc, pages=extracted.pages, extracted=True)
