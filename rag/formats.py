"""Turn non-text formats into the plain text that the index quotes from.

A converted document is written as a UTF-8 text file, with its title, byline and date as
the first lines, so the same parser, offsets and citation contract apply to every format.
"""

from __future__ import annotations

import logging

from .errors import CorpusError

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md", ".text")
HTML_SUFFIXES = (".html", ".htm")


def html_to_text(raw: bytes | str, name: str) -> str:
    """The page's main text (navigation, adverts and comments dropped) via trafilatura."""
    import trafilatura

    html = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    body = trafilatura.extract(html, output_format="txt", include_comments=False, include_tables=True)
    if not body or not body.strip():
        raise CorpusError(f"{name}: no readable article text was found in this HTML page")
    meta = trafilatura.extract_metadata(html)
    paragraphs = [line.strip() for line in body.splitlines() if line.strip()]
    header = []
    if meta is not None and meta.title and (not paragraphs or paragraphs[0] != meta.title.strip()):
        header.append(meta.title.strip())
    elif paragraphs:
        header.append(paragraphs.pop(0))
    if meta is not None and meta.author:
        header.append(f"By {meta.author.strip()}")
    if meta is not None and meta.date:
        header.append(f"Published: {meta.date.strip()}")
    return "\n\n".join(header + paragraphs) + "\n"
