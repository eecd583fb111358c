"""Parse article files into ``Document``s: metadata, the article's own text and readers' comments.

Everything is located by character offsets into the text exactly as
``Path(source).read_text(encoding="utf-8")`` returns it, so quotes can always be checked.
Site chrome is recognised by the shape of web boilerplate (share/rate widgets, comment
moderation links, image captions, "intended for ... only" banners), never by file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
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


_CHROME = [
    r"this (?:site|website|page|content|service|section) is (?:only )?"
    r"(?:intended|meant|designed|aimed) (?:for|at) .{0,80}",
    r"(?:read|view|see) (?:the|this|our) (?:latest|current|digital) (?:issue|edition)(?: online| here)?",
    r".{0,60}\b\d{2,4} ?x ?\d{2,4} ?px\b.{0,40}",
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
    r"cite this(?: article)? as\b.{0,120}",
    r"(?:sign up|subscribe|register)\b.{0,60}(?:newsletter|updates|free|now|today)\.?",
    r"advertisement|sponsored(?: content)?|skip to (?:main )?content|back to top",
    r"(?:copyright|©).{0,120}|all rights reserved\.?",
    r"(?:log ?in|sign in)(?: to .{0,40})?",
    r"(?:at the heart of|serving|trusted by) .{0,60}\bsince (?:1[89]|20)\d\d",
    r"\d+ (?:likes?|shares?|views?|replies)",
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


def read_text(path: Path, max_bytes: int | None = None) -> str:
    """Read as the citation contract does, refusing what is not a readable text file."""
    try:
        check_size(path, max_bytes)
        raw = path.read_bytes()
    except OSError as e:
        raise CorpusError(f"{path}: cannot be read ({e.strerror or e})") from None
    if b"\x00" in raw[:8192]:
        raise CorpusError(f"{path}: looks binary (contains NUL bytes); only UTF-8 text files are indexed")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorpusError(f"{path}: is not UTF-8 (byte {e.start}); convert it, e.g. iconv -t UTF-8") from None
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise CorpusError(f"{path}: is empty")
    return text


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
        re.fullmatch(r"\d{1,2} \w+ \d{4}|\w+ \d{1,2},? \d{4}", _squash(raw))
    )


def _commenter(text: str) -> str | None:
    """A comment's first line is its author when it is just a short personal name."""
    squashed = _squash(text)
    if _words(squashed) <= 4 and _NAME_RE.fullmatch(squashed):
        return squashed
    return None


def parse(source: str, text: str) -> Document:
    """Split ``text`` into metadata, article sections and comment sections."""
    bl = blocks(text)
    kept: list[tuple[Block, str, str | None]] = []
    title = author = date = None

    comment_at = next(
        (i for i, b in enumerate(bl) if COMMENTS_HEADING_RE.fullmatch(_squash(text[b.start : b.end]))), len(bl)
    )
    article, comments = bl[:comment_at], bl[comment_at + 1 :]
    prose = [i for i, b in enumerate(article) if _is_prose(text[b.start : b.end])]
    first_prose, last_prose = (prose[0], prose[-1]) if prose else (len(article), len(article) - 1)

    headings: list[Block] = []
    for b in article[:first_prose]:
        block_text = text[b.start : b.end]
        if _is_chrome(block_text):
            continue
        byline = BYLINE_RE.fullmatch(_squash(block_text))
        dateline = DATELINE_RE.fullmatch(_squash(block_text))
        if byline and author is None and _words(byline["name"]) <= 8:
            author = byline["name"].strip()
            if headings and title is None:
                title = text[headings[-1].start : headings[-1].end]
                kept.append((headings.pop(), BODY, None))
        elif dateline and date is None and _looks_like_date(dateline["date"]):
            date = _parse_date(dateline["date"])
        elif date is None and _looks_like_date(block_text) and _words(block_text) <= 5:
            date = _parse_date(block_text)
        elif title is None and _words(block_text) >= 3 and _words(block_text) <= 30:
            title = block_text
        elif title is None:
            headings.append(b)
            continue
        kept.append((b, BODY, None))
    if title is None and headings and prose:  # a short title ("Lighthouse reopens") when no longer one came first
        title = text[headings[0].start : headings[0].end]
        kept.append((headings.pop(0), BODY, None))
    if not prose:
        kept.extend((b, BODY, None) for b in headings)
    for b in article[first_prose : last_prose + 1]:
        if not _is_chrome(text[b.start : b.end]):
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


def load(path: Path, max_bytes: int | None = None) -> Document:
    """Parse one file; ``CorpusError`` says why a file is skipped (unsupported, encrypted, empty, broken)."""
    suffix = path.suffix.lower()
    if suffix in formats.TEXT_SUFFIXES:
        return parse(display_source(path), read_text(path, max_bytes))
    if suffix not in formats.EXTRACTED_SUFFIXES:
        raise CorpusError(
            f"{path}: {suffix or 'files without an extension'} is not supported; "
            f"index {', '.join(formats.ALL_SUFFIXES)}"
        )
    if check_size(path, max_bytes) == 0:
        raise CorpusError(f"{path}: is empty")
    extracted = formats.extract(path)
    doc = parse(display_source(path), extracted.text)
    return dataclasses.replace(doc, pages=extracted.pages, extracted=True)
