"""Turn Markdown, HTML, PDF and Word files into the plain text that the index quotes from.

For these formats the extracted text (title, byline and date first, when the file says
them) is what citation offsets index; it is stored with the index and shown by
``rag show SOURCE`` and the UI's viewer. PDF page boundaries are kept so each chunk knows
its page.
"""

from __future__ import annotations

import html
import io
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import zipfile
from collections import Counter
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from .errors import CorpusError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".text")
MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIXES = (".pdf",)
DOCX_SUFFIXES = (".docx",)
EXTRACTED_SUFFIXES = MARKDOWN_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES + DOCX_SUFFIXES
ALL_SUFFIXES = TEXT_SUFFIXES + EXTRACTED_SUFFIXES


@dataclass(frozen=True)
class Extracted:
    text: str
    pages: tuple[tuple[int, int, int], ...] = ()  # (page number, start, end) in ``text``
    title: str | None = None  # the title the file states (a Markdown document's first heading)
    furnished: bool = True  # may hold page furniture (captions, sign-offs) around the text; Markdown does not


FENCE = "```"


def fenced(code: str) -> str:
    """A code block as written, between fence lines: its lines are code, each read as written, never
    joined into a sentence or split by a sentence splitter (``rag.chunking.sentences``)."""
    return f"{FENCE}\n{code.strip(chr(10))}\n{FENCE}"


def _join(header: list[str], paragraphs: list[str]) -> str:
    return "\n\n".join([h for h in header if h] + [p for p in paragraphs if p]) + "\n"


FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(?P<body>.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
FRONT_FIELD_RE = re.compile(r"^(?P<key>title|author|date)[ \t]*:[ \t]*(?P<value>.+?)[ \t]*$", re.MULTILINE | re.I)
TAG_RE = re.compile(r"<[^>]*>")
HTML_HEADING_RE = re.compile(r"<h[1-6][\s>]", re.I)


def _inline(token: Any) -> str:
    """An inline run as it reads: a link's words without its address, no image (mostly badges), no
    markup; a soft line break is a space, so a hard-wrapped sentence stays one sentence."""
    out = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            out.append(child.content)
        elif child.type == "softbreak":
            out.append(" ")
        elif child.type == "hardbreak":
            out.append("\n")
    return "".join(out).strip()


def _html_words(html_text: str) -> str:
    lines = (" ".join(line.split()) for line in html.unescape(TAG_RE.sub(" ", html_text)).splitlines())
    return "\n".join(line for line in lines if line)


def markdown_to_text(raw: bytes | str, name: str) -> Extracted:
    """The document as it reads, block by block: headings, paragraphs, list items ("• ", "1. "), table
    rows ("a | b"), code as written, HTML blocks by their words. A heading before any text is its title;
    front matter's title, author and date are read as a web page's are."""
    from markdown_it import MarkdownIt

    if isinstance(raw, bytes):
        if b"\x00" in raw[:8192]:
            raise CorpusError(f"{name}: looks binary (contains NUL bytes), not a Markdown file")
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise CorpusError(f"{name}: is not UTF-8 (byte {e.start}); convert it, e.g. iconv -t UTF-8") from None
    source = raw.replace("\r\n", "\n").replace("\r", "\n")
    header: list[str] = []
    title = None
    front = FRONT_MATTER_RE.match(source)
    if front:
        fields = {m["key"].lower(): m["value"].strip("\"' ") for m in FRONT_FIELD_RE.finditer(front["body"])}
        title = fields.get("title") or None
        header = [title or "", f"By {fields['author']}" if fields.get("author") else ""]
        header.append(f"Published: {fields['date']}" if fields.get("date") else "")
        source = source[front.end() :]
    blocks: list[str] = []
    row: list[str] = []
    marker = ""  # the list item's marker, for its first paragraph
    heading = cell = False
    for token in MarkdownIt("commonmark").enable("table").parse(source):
        kind = token.type
        if kind == "heading_open":
            heading = True
        elif kind == "list_item_open":
            marker = f"{token.info}{token.markup} " if token.info else "• "
        elif kind in ("th_open", "td_open"):
            cell = True
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close" and any(row):
            blocks.append(" | ".join(c for c in row if c))
        elif kind == "inline" and cell:
            row.append(_inline(token))
            cell = False
        elif kind == "inline":
            text = _inline(token)
            if text and heading and title is None and not blocks:
                title = " ".join(text.split())
            if text:
                blocks.append(marker + text)
                marker = ""
            heading = False
        elif kind in ("fence", "code_block") and token.content.strip():
            blocks.append(fenced(token.content))
        elif kind == "html_block" and (words := _html_words(token.content)):
            if title is None and not blocks and HTML_HEADING_RE.search(token.content):
                title = " ".join(words.split())
            blocks.append(words)
    if not blocks:
        raise CorpusError(f"{name}: the Markdown file has no text")
    if header and title and blocks[0] == title:
        blocks.pop(0)
    return Extracted(_join(header, blocks), title=title, furnished=False)


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
        title = meta.title.strip() if meta is not None and meta.title and meta.title.strip() else None
        author = meta.author.strip() if meta is not None and meta.author and meta.author.strip() else None
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


TITLE_STYLES = ("Title", "Heading 1")
# what Word and python-docx write as the author when nobody set one: no one wrote the document by that name
PLACEHOLDER_AUTHORS = {"python-docx", "microsoft office user", "windows user", "administrator", "user", "author"}


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
    title = core.title.strip() if core.title and core.title.strip() else None
    author = core.author.strip() if core.author and core.author.strip() else None
    styled = [(p.style.name if p.style is not None else "", p.text.strip()) for p in document.paragraphs]
    styled = [(style, text) for style, text in styled if text]
    if styled and styled[0][0] in TITLE_STYLES and title in (None, styled[0][1]):  # the title, written once
        title = styled.pop(0)[1]
    by = f"By {author}" if author and author.lower() not in PLACEHOLDER_AUTHORS else None
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


# Extraction of Markdown, HTML, PDF and Word runs in a child process with a memory ceiling and a time limit: a
# decompression bomb, a zip bomb or a file that parses for minutes costs one skipped file, never the build.
EXTRACT_TIMEOUT_S = 60.0
EXTRACT_MEMORY_MB = 2048
MAX_EXPANDED_MB = 200  # what a Word file's zipped parts may add up to, uncompressed


def extract(path: Path, suffix: str | None = None, raw: bytes | None = None) -> Extracted:
    """The text to index for a non-plain-text file (from ``raw`` when the caller has read it already),
    or ``CorpusError`` saying why it is skipped."""
    suffix = (suffix or path.suffix).lower()
    if suffix not in EXTRACTED_SUFFIXES:
        what = suffix or "files without an extension"
        raise CorpusError(f"{path}: {what} is not supported; use {', '.join(ALL_SUFFIXES)}")
    raw = path.read_bytes() if raw is None else raw
    if suffix in HTML_SUFFIXES and b"\x00" in raw[:8192]:
        raise CorpusError(f"{path}: looks binary (contains NUL bytes), not an HTML page")
    if suffix in DOCX_SUFFIXES:
        _check_zip(path, raw)
    return _EXTRACTOR.run(path, suffix, raw)


def _check_zip(path: Path, raw: bytes) -> None:
    """A Word file is a zip: its parts' declared sizes bound what reading them can take (zipfile stops
    at the declared size), so a bomb is refused before any part is inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            expanded = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, ValueError, EOFError) as e:
        raise CorpusError(f"{path}: the Word file cannot be read ({type(e).__name__}); it may be damaged") from None
    if expanded > MAX_EXPANDED_MB * 2**20:
        raise CorpusError(
            f"{path}: the Word file expands to {expanded / 2**20:,.0f} MB, over the {MAX_EXPANDED_MB} MB limit "
            "(a zip bomb, or a document to split)"
        )


def _extract_here(path: Path, suffix: str, raw: bytes) -> Extracted:
    if suffix in MARKDOWN_SUFFIXES:
        return markdown_to_text(raw, str(path))
    if suffix in HTML_SUFFIXES:
        from .webpages import html_page  # it reads Extracted from here

        return html_page(raw, str(path))
    if suffix in PDF_SUFFIXES:
        return pdf_to_text(path, raw)
    return docx_to_text(path, raw)


def _serve(conn: Connection, memory_mb: int) -> None:
    """The child: extract file after file until the parent goes away."""
    import resource

    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            path, suffix, raw = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[bool, object] = (True, _extract_here(Path(path), suffix, raw))
        except CorpusError as e:
            reply = (False, str(e))
        except MemoryError:
            reply = (False, f"{path}: extracting its text needs more than {memory_mb} MB (a decompression bomb?)")
        except Exception as e:
            reply = (False, f"{path}: the text cannot be extracted ({type(e).__name__}: {str(e)[:200]})")
        del raw
        conn.send(reply)


HOME = str(Path(__file__).resolve().parent.parent)  # the child imports this copy of rag


class _Extractor:
    """One long-lived child process, started on first use and again after it is killed. It is a fresh
    interpreter running this module (``python -m rag.formats FD MB``), not a multiprocessing child: a
    spawned child imports the parent's main script again, so a script that calls ``ask()`` at its top
    level, with no ``if __name__ == "__main__":`` guard, re-ran itself in the child and every HTML, PDF
    and Word file was skipped as unreadable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None

    def run(self, path: Path, suffix: str, raw: bytes) -> Extracted:
        with self._lock:
            conn = self._started()
            try:
                conn.send((str(path), suffix, raw))
                ready = conn.poll(EXTRACT_TIMEOUT_S)
                reply = conn.recv() if ready else None
            except (EOFError, OSError, BrokenPipeError):
                self._stop()
                raise CorpusError(
                    f"{path}: the text extractor died on this file (over {EXTRACT_MEMORY_MB} MB of memory, or a "
                    "crash); it may be a decompression bomb"
                ) from None
            if reply is None:
                self._stop()
                raise CorpusError(
                    f"{path}: extracting its text took over {EXTRACT_TIMEOUT_S:.0f} s, so it was stopped; the file "
                    "may be malformed or hostile (convert it to text, or split it)"
                )
        ok, value = reply
        if not ok:
            raise CorpusError(str(value))
        return value  # type: ignore[return-value]

    def _started(self) -> Connection:
        if self._proc is None or self._proc.poll() is not None or self._conn is None:
            self._stop()
            parent, child = socket.socketpair()
            fd = child.fileno()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", __name__, str(fd), str(EXTRACT_MEMORY_MB)],
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (HOME, os.environ.get("PYTHONPATH"))))},
            )
            child.close()
            self._conn = Connection(parent.detach())
        return self._conn

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self._proc, self._conn = None, None


_EXTRACTOR = _Extractor()


if __name__ == "__main__":  # the extractor's child; its replies must name rag.formats' classes, not __main__'s
    from rag.formats import _serve as serve

    serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
