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
    from .printed import docx_to_text, pdf_to_text  # it reads Extracted from here

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
