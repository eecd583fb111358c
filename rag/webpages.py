"""Web pages: an HTML page's main text read by trafilatura, with what documentation generators add to a page
(permalinks, navigation bars, slug ids that read as menus) handled first, and the title the page states."""

from __future__ import annotations

import copy
import html
import re
from typing import Any

from .errors import CorpusError
from .formats import Extracted, _join, fenced


def _words(element: Any) -> str:
    """An element's words, its own line breaks (``<lb/>``, a page's ``<br>``) kept and the source's
    wrapping not."""
    lines, line = [], []
    for piece in element.xpath(".//text() | .//lb"):
        if isinstance(piece, str):
            line.append(piece)
        else:
            lines.append(line)
            line = []
    words = (" ".join("".join(x).split()) for x in [*lines, line])
    return "\n".join(w for w in words if w)


def _described(element: Any) -> list[str]:
    """A definition list's terms, each with what it says of them on one line ("• Restart Shell: Restart the
    shell to clean the environment…"): apart, "Restart Shell" and its description were two items, and
    the description never named what it describes. A plain list inside a description is its items, comma
    joined ("Authors:" over a list of names); a definition list inside one (a structure's members under
    the structure) follows it, each term on a line of its own, as do its paragraphs after the first."""
    blocks: list[str] = []
    term = False
    for item in element.findall("item"):
        nested = item.findall("list")
        alone = copy.deepcopy(item)
        for sub in alone.findall("list"):
            alone.remove(sub)
        paragraphs = [w for para in alone.findall("p") if (w := _words(para).replace("\n", " "))]
        own, more = (paragraphs[0], paragraphs[1:]) if len(paragraphs) > 1 else (_words(alone).replace("\n", " "), [])
        listed = ", ".join(
            w
            for sub in nested
            if sub.get("rend") != "dl"
            for i in sub.iter("item")
            if (w := _words(i).replace("\n", " "))
        )
        words = f"{own} {listed}".strip() if own.endswith(":") else ", ".join(x for x in (own, listed) if x)
        if words:
            if (item.get("rend") or "").startswith("dd") and blocks and blocks[-1].startswith("• ") and term:
                blocks[-1] += f" {words}" if blocks[-1].endswith(":") else f": {words}"
                term = False
            else:
                blocks.append(f"• {words}")
                term = (item.get("rend") or "").startswith("dt")
        if more:  # a description's later paragraphs stay paragraphs: "…the given parameters." "abi is the ABI…"
            blocks += more
            term = False
        for sub in nested:
            if sub.get("rend") == "dl":
                blocks += _described(sub)
                term = False
    return blocks


def _page_blocks(xml: str) -> list[str]:
    """trafilatura's XML of a page's main text, block by block: a paragraph's words on one line (a page's
    source wraps them anywhere, and its text output keeps those breaks), list items ("• "), table rows
    ("a | b"), code as written."""
    from lxml import etree

    root = etree.fromstring(xml.encode("utf-8"))
    main = root.find("main")
    return _blocks(main if main is not None else root)


def _blocks(parent: Any) -> list[str]:
    blocks: list[str] = []
    for element in parent:
        if element.tag == "div":  # a section trafilatura kept whole (a small page's fallback extraction)
            blocks += _blocks(element)
        elif element.tag == "list" and element.get("rend") == "dl":
            blocks += _described(element)
        elif element.tag == "list":
            blocks += [f"• {words}" for item in element.findall("item") if (words := _words(item))]
        elif element.tag == "table":
            rows = ([_words(cell) for cell in row.iter("cell")] for row in element.iter("row"))
            blocks += [" | ".join(c for c in cells if c) for cells in rows if any(cells)]
        elif element.tag == "code":
            code = "".join(element.itertext())
            blocks += [fenced(code)] if code.strip() else []
        elif element.tag != "graphic" and (words := _words(element)):
            blocks.append(words)
    return blocks


PERMALINK_MARKS = frozenset({"¶", "#", "§", "🔗"})  # a heading's link to itself ("IDLE¶" on Sphinx pages)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _unmarked(page: str) -> tuple[str, bool]:
    """The page with its headings read as content and its navigation bars gone, and whether a documentation
    generator wrote it. A documentation page names each section by its heading's slug (``<section
    id="menus">``, ``id="editing-and-navigation"``), and trafilatura drops whatever an id says is
    navigation, a menu, a footer or an author box: half of Python's IDLE page went. The links each heading
    has to itself go (the "¶" beside "IDLE"), and on a page that has them, which documentation generators
    write and news sites do not, so do those ids, from sections and headings only: a news page's ``<section
    id="comments">`` stays what trafilatura takes it for. A manual's bar of links to the next, previous
    and enclosing pages ("Next: Index, Previous: Memory Usage, Up: libffi [Index]") is no text of the page;
    kept, it also made trafilatura drop the list that followed it."""
    import lxml.etree
    import lxml.html

    if not re.search(r"href\s*=\s*[\"']#", page) and not NAVIGATION_HINT_RE.search(page):
        return page, False  # no link to a place in itself and no bar: nothing to do
    try:
        root = lxml.html.document_fromstring(page.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))
    except (lxml.etree.ParserError, ValueError):
        return page, False
    marked = False
    for a in list(root.iter("a")):
        if (a.get("href") or "").startswith("#") and (a.text_content() or "").strip() in PERMALINK_MARKS:
            a.drop_tree()
            marked = True
    for element in root.xpath(SECTIONS) if marked else ():  # a page that links its headings to themselves
        heading = element if element.tag in HEADINGS else next(element.iter(*HEADINGS), None)
        if heading is not None and element.get("id", "").startswith(_slug(heading.text_content()) or "\0"):
            del element.attrib["id"]
    bars = [e for e in root.iter("p", "div", "td", "table") if _navigation_bar(e)]
    for bar in bars:
        if bar.getparent() is not None and not any(b in bar.iterancestors() for b in bars):
            bar.drop_tree()
    if not marked and not bars:
        return page, False
    return lxml.html.tostring(root, encoding="unicode"), True


NAVIGATION_HINT_RE = re.compile(r"\brel\s*=\s*[\"']?(?:next|prev|previous|up)\b|\b(?:Next|Previous|Prev|Up):", re.I)
NAVIGATION_WORDS = frozenset({"next", "previous", "prev", "up", "home", "top", "contents", "index"})


def _navigation_bar(element: Any) -> bool:
    """Whether an element is only links to other pages of a manual, with nothing of its own but their labels
    ("Next:", "Up:", "[Index]"): two links or more, one of them said to be the next, previous or enclosing
    page, by its ``rel`` or by a label before it."""
    links = element.findall(".//a")
    if len(links) < 2:
        return False
    rels = {r for a in links for r in (a.get("rel") or "").lower().split()}
    linked = sum(len(a.text_content()) for a in links)
    own = element.text_content()
    for a in links:
        own = own.replace(a.text_content(), " ", 1)
    words = re.findall(r"\w+", own.lower())
    labelled = bool(re.search(r"\b(?:next|previous|prev|up)\s*:", own, re.I))
    return (
        (bool(rels & {"next", "prev", "previous", "up"}) or labelled)
        and linked > 0
        and all(w in NAVIGATION_WORDS for w in words)
    )


HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# a page's own sections (HTML5's <section>, docutils' <div class="section">) and headings; never an aside, a nav
# or a plain div, whose id may name a related-articles box after its heading
SECTIONS = (
    "//section[@id] | //div[@id][contains(concat(' ', normalize-space(@class), ' '), ' section ')] | "
    + " | ".join(f"//{h}[@id]" for h in HEADINGS)
)


def _title_element(page: str) -> str | None:
    found = TITLE_RE.search(page)
    return " ".join(html.unescape(found.group(1)).split()) or None if found else None


def _a_section(title: str, whole: str) -> bool:
    """Whether the title trafilatura read names something other than the page, so that its ``<title>`` is
    the better name: a word or two the ``<title>`` does not share (a manual's first heading, "Abstract",
    under "Debian Python Policy 0.12.0.0 documentation"; the Cargo book's help box, "Keyboard shortcuts",
    under "Changelog - The Cargo Book"), or the name of the site or book the page is part of, which the
    ``<title>`` follows the page's own name with ("The Rust Programming Language" of "Installation - The
    Rust Programming Language": every chapter had the one title). A page's headline is neither ("IDLE" in
    "IDLE — Python 3.12 documentation", a news headline in "… | The Wessex Courier")."""
    words = {w for w in re.findall(r"\w+", title.lower()) if len(w) > 2 and w not in _TITLE_STOP}
    if not words & {w for w in re.findall(r"\w+", whole.lower())}:
        return True
    parts = TITLE_SEPARATOR_RE.split(whole)
    return len(parts) > 1 and parts[-1].strip().lower() == title.strip().lower() and bool(parts[0].strip())


_TITLE_STOP = frozenset({"the", "and", "for", "with", "from", "this", "that"})
TITLE_SEPARATOR_RE = re.compile(r"\s+[-|–—·:]\s+")


TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def html_to_text(raw: bytes | str, name: str) -> str:
    """The page's main text (navigation, adverts and comments dropped) via trafilatura."""
    return html_page(raw, name).text


def html_page(raw: bytes | str, name: str) -> Extracted:
    """The page's main text, and its title where the page states one (its ``<title>``, ``og:title`` or
    first heading, as trafilatura reads them): "IDLE" is the title of Python's IDLE page, not "Source
    code: Lib/idlelib/", the headline-length line nearest its first paragraph."""
    import trafilatura

    page = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    page, manual = _unmarked(page)
    # a manual's page is all text: trafilatura's guard against a news page's boxes of links cost it lists,
    # a list item holding code, and each function's signature above its description
    body = trafilatura.extract(
        page, output_format="xml", include_comments=False, include_tables=True, favor_recall=manual
    )
    paragraphs = _page_blocks(body) if body else []
    if not paragraphs:
        raise CorpusError(f"{name}: no readable article text was found in this HTML page")
    meta = trafilatura.extract_metadata(page, extensive=False)  # dates from the page's metadata, never guessed
    if meta is not None and meta.title and (whole := _title_element(page)) and _a_section(meta.title, whole):
        meta.title = whole
    header = []
    if meta is not None and meta.title and paragraphs[0] != meta.title.strip():
        header.append(meta.title.strip())
    else:
        header.append(paragraphs.pop(0))
    if meta is not None and meta.author:
        header.append(f"By {meta.author.strip()}")
    if meta is not None and meta.date:
        header.append(f"Published: {meta.date.strip()}")
    stated = " ".join(meta.title.split()) if meta is not None and meta.title and meta.title.strip() else None
    return Extracted(_join(header, paragraphs), title=stated)
