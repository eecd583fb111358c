"""Printed documents: a PDF's text page by page without its running heads, its broken words made whole,
under the title and authors its metadata or its title page states; a Word document's paragraphs and tables
under its title and author."""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import Path

from .errors import CorpusError
from .formats import Extracted, _join

TITLE_STYLES = ("Title", "Heading 1")
# what Word and python-docx write as the author when nobody set one: no one wrote the document by that name
PLACEHOLDER_AUTHORS = {"python-docx", "microsoft office user", "windows user", "administrator", "user", "author"}


def _stated(value: str | None) -> str | None:
    """A metadata field as written, or ``None`` when it is empty."""
    return value.strip() if value and value.strip() else None


def _author(value: str | None) -> str | None:
    """The author a file's metadata names, unless it is a placeholder that names no one."""
    author = _stated(value)
    return None if author is None or author.lower() in PLACEHOLDER_AUTHORS else author


PAGE_NUMBER_RE = re.compile(
    r"(?:page\s+)?(?:\d{1,4}|(?=[ivxlc])c{0,3}(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3}))(?:\s*(?:of|/)\s*\d{1,4})?",
    re.IGNORECASE,
)
EDGE_LINES = 2  # a running head or foot is among a page's first or last two lines
MAX_RUNNING_WORDS = 12  # and short: a line of text may recur, numbers aside, in a table or a list


def _without_furniture(pages: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Pages without their running heads and feet: the title or chapter repeated atop every page, the page
    number under it. They cut sentences in two ("Information found in a / 2 / Shared MIME-info Database /
    directory is added …"). A line counts when it is a page number, or when it is short and recurs,
    numbers aside, at the edge of at least half the pages (three at least); the first page keeps its top,
    where the title is."""

    def key(line: str) -> str:
        return re.sub(r"\d+", "#", " ".join(line.split()).lower())

    edges = [
        {key(x) for x in (lines[:EDGE_LINES] + lines[-EDGE_LINES:])} for _, c in pages if (lines := c.splitlines())
    ]
    counts = Counter(k for e in edges for k in e)
    running = {
        k
        for k, n in counts.items()
        if len(pages) >= 3 and n >= max(3, len(pages) / 2) and 0 < len(k.split()) <= MAX_RUNNING_WORDS
    }
    kept = []
    for i, (number, content) in enumerate(pages):
        lines = content.splitlines()
        edge = set(range(min(EDGE_LINES, len(lines)))) | set(range(max(0, len(lines) - EDGE_LINES), len(lines)))
        drop = {
            j
            for j in edge
            if PAGE_NUMBER_RE.fullmatch(lines[j].strip()) or (key(lines[j]) in running and (i > 0 or j >= EDGE_LINES))
        }
        if len(drop) < len(lines):
            kept.append((number, "\n".join(x for j, x in enumerate(lines) if j not in drop).strip()))
    return kept


BROKEN_WORD_RE = re.compile(r"([^\W\d_]+)-\n([^\W\d_]+)(\S*)[ \t]*")
HYPHENATED_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+")


def _dehyphenated(pages: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Pages with the words a typesetter broke at a line's end whole again ("manip-" / "ulation." reads
    "manipulation."; the rest of the line goes on below), so search finds them and quotes read as written.
    A compound the document writes with its hyphen on one line elsewhere ("Dss-Sig", "well-known") keeps
    it, and so does a break beside a capital past a word's first letter ("X.680 ITU-" / "T", "YYMMDDhhmm-" /
    "hh’mm’"): code and formats, not words."""
    compounds = {m.group(0).lower() for _, c in pages for m in HYPHENATED_RE.finditer(c)}

    def whole(m: re.Match[str]) -> str:
        a, b = m.group(1), m.group(2)
        if not (a[1:].islower() and b.islower()) or f"{a}-{b}".lower() in compounds:
            return m.group(0)
        rest = m.string[m.end() : m.end() + 1]
        return f"{a}{b}{m.group(3)}{'' if rest in ('', chr(10)) else chr(10)}"

    return [(number, BROKEN_WORD_RE.sub(whole, content)) for number, content in pages]


def _runs_on(text: str, content: str) -> bool:
    """Whether the sentence at the foot of one page goes on atop the next: it ends with no full stop, and
    the next page begins in lower case."""
    return not re.search(r"[.!?:;”\"')\]]\s*$", text) and content[:1].islower()


def pdf_to_text(path: Path, raw: bytes | None = None) -> Extracted:
    import pypdf
    from pypdf.errors import LimitReachedError, PdfReadError

    try:
        reader = pypdf.PdfReader(io.BytesIO(raw) if raw is not None else str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise CorpusError(f"{path}: the PDF is encrypted; decrypt it first (e.g. qpdf --decrypt)")
        meta = reader.metadata
        title = _stated(meta.title if meta is not None else None)
        author = _author(meta.author if meta is not None else None)  # Word's "Windows User", exported
        contents = [(number, (page.extract_text() or "").strip()) for number, page in enumerate(reader.pages, 1)]
        kept = _dehyphenated(_without_furniture([c for c in contents if c[1]]))
        header = [x for x in (title, f"By {author}" if author else None) if x]
        text = _join(header, []) if header else ""
        if title is None and kept and (title := _title_line(kept[0][1])):
            kept[0] = (kept[0][0], f"{title}\n\n{kept[0][1][len(title) :].lstrip()}")
        if author is None and kept:
            kept[0] = (kept[0][0], _signed(kept[0][1]))
        pages = []
        for number, content in kept:
            if text and not text.endswith("\n\n"):
                text += "\n" if text.endswith("\n") or _runs_on(text, content) else "\n\n"
            start = len(text)
            text += content
            pages.append((number, start, len(text)))
    except CorpusError:
        raise
    except LimitReachedError:
        raise CorpusError(
            f"{path}: a stream in this PDF inflates past pypdf's safety limit (a decompression bomb?); skipped"
        ) from None
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError) as e:
        raise CorpusError(f"{path}: the PDF cannot be read ({type(e).__name__}: {e}); it may be damaged") from None
    if not pages:
        raise CorpusError(f"{path}: no text could be extracted (a scanned PDF needs OCR first)")
    return Extracted(text + "\n", tuple(pages), title=title)


MAX_TITLE_WORDS = 12
TITLE_PAGE_LINES = 12  # a title page names its authors among its first lines
_CONTACT_RE = re.compile(r"\s*(?:\([^()]*\)|<[^<>]*>|\S+@\S+)\s*$")  # "(help-libtasn1@gnu.org)" after a name


def _signed(content: str) -> str:
    """A PDF's first page with a byline under the people it names on lines of their own near its top, one
    under the other, as a title page names its authors ("Fabio Fiorina" / "Simon Josefsson" / "Nikos
    Mavrogiannopoulos (help-libtasn1@gnu.org)"): who wrote it, where its metadata does not say. A line that
    only holds a name (``rag.names.people``: a given name and a surname) counts; "X Desktop Group" does not.
    The byline goes under the names, so the title still reads on into its subtitle."""
    from .names import people

    found: list[str] = []
    end = at = 0
    for i, line in enumerate(content.split("\n")[:TITLE_PAGE_LINES]):
        bare = _CONTACT_RE.sub("", line).strip()
        at += len(line) + 1
        if i and bare and people(bare) == [bare]:  # the first line is a title ("Ada Lovelace"), not a byline
            found.append(bare)
            end = at - 1
        elif found:
            break
    if not found:
        return content
    names = found[0] if len(found) == 1 else f"{', '.join(found[:-1])} and {found[-1]}"
    return f"{content[:end]}\n\nBy {names}\n\n{content[end:].lstrip()}".rstrip("\n")


def _title_line(content: str) -> str | None:
    """The first line of a PDF that names no title in its metadata, when it reads as one: a dozen words at
    most, with a word of three letters or more, not a page number, an address or a sentence's start or
    end. A manual or a specification opens so ("Shared MIME-info Database", "Libtasn1")."""
    line = content.split("\n", 1)[0].strip()
    words = line.split()
    if not 0 < len(words) <= MAX_TITLE_WORDS or line.endswith((".", ",", ":", ";")) or PAGE_NUMBER_RE.fullmatch(line):
        return None
    if "@" in line or "://" in line or not re.search(r"[^\W\d_]{3}", line):
        return None
    return line


def docx_to_text(path: Path, raw: bytes | None = None) -> Extracted:
    """A Word document's text: its title (the core properties', else a first paragraph styled as a title)
    and author over its paragraphs, then its tables' rows."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(raw) if raw is not None else str(path))
    except (PackageNotFoundError, ValueError, KeyError, OSError) as e:
        raise CorpusError(f"{path}: the Word file cannot be read ({type(e).__name__}); it may be damaged") from None
    core = document.core_properties
    title, author = _stated(core.title), _author(core.author)
    styled = [(p.style.name if p.style is not None else "", p.text.strip()) for p in document.paragraphs]
    styled = [(style, text) for style, text in styled if text]
    if styled and styled[0][0] in TITLE_STYLES and title in (None, styled[0][1]):  # the title, written once
        title = styled.pop(0)[1]
    by = f"By {author}" if author else None
    header = [x for x in (title, by) if x]
    paragraphs = [text for _, text in styled]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells if c.text.strip()]
            if cells:
                paragraphs.append(" | ".join(dict.fromkeys(cells)))
    if not paragraphs and not title:
        raise CorpusError(f"{path}: the Word file has no text")
    return Extracted(_join(header, paragraphs), title=title)
