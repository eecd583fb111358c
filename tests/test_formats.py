"""Folders of mixed formats: HTML, PDF (pages kept), Word, text; bad files skipped one line each."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag import ask, embedding_cache, indexing, load_config, sources
from rag.config import ROOT, Config
from rag.errors import CorpusError
from rag.pipeline import forget


def make_pdf(
    path: Path, pages: list[str], title: str | None = "Harbour Survey", author: str | None = "Ana Ruiz"
) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    if title is not None:
        pdf.set_title(title)
    if author is not None:
        pdf.set_author(author)
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text)
    pdf.output(str(path))


def make_docx(path: Path, title: str, paragraphs: list[str]) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = title
    document.add_heading(title, level=1)
    for p in paragraphs:
        document.add_paragraph(p)
    document.save(str(path))


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[Config, Path]:
    folder = tmp_path / "docs"
    folder.mkdir()
    make_pdf(
        folder / "survey.pdf",
        [
            "The harbour survey counted boats in the inner basin during the spring of 2024.",
            "The survey found that 314 fishing boats were registered in Stromness. The harbour master, "
            "Ewan Flett, said the count was the highest in a decade.",
        ],
    )
    make_docx(
        folder / "minutes.docx",
        "Council minutes",
        [
            "The council met on Tuesday to discuss the ferry timetable.",
            "Councillor Rhona Tait proposed a later evening sailing to Scrabster, which was agreed unanimously.",
        ],
    )
    (folder / "page.html").write_text(
        "<html><head><title>Lighthouse reopens</title>"
        '<meta property="article:published_time" content="2024-05-04T09:00:00+00:00"></head>'
        "<body><nav>Home | News | Sport | Weather</nav>"
        "<article><h1>Lighthouse reopens</h1>"
        + "".join(
            f"<p>Paragraph {i}: the restored lighthouse at Noup Head welcomed visitors again after a "
            f"two-year restoration costing eighty thousand pounds.</p>"
            for i in range(4)
        )
        + "</article><footer>Copyright 2024 Orkney Gazette</footer></body></html>",
        encoding="utf-8",
    )
    (folder / "note.txt").write_text(
        "A plain note: the Kirkwall library opens at nine on Saturdays.\n", encoding="utf-8"
    )
    (folder / "sheet.xlsx").write_bytes(b"PK\x03\x04 not really a spreadsheet")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n this is not a real pdf at all")
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(str(folder / "survey.pdf")))
    writer.encrypt("secret")
    with open(folder / "locked.pdf", "wb") as f:
        writer.write(f)
    config = load_config(env={}, corpus=str(folder), index_dir=str(tmp_path / "index"))
    return config, folder


def test_mixed_formats_index_and_bad_files_are_skipped(mixed: tuple[Config, Path]) -> None:
    config, _folder = mixed
    report = indexing.build(config)
    assert report.documents == 4
    skipped = dict((Path(s).name, why) for s, why in report.skipped)
    assert set(skipped) == {"sheet.xlsx", "broken.pdf", "locked.pdf"}
    assert "not supported" in skipped["sheet.xlsx"]
    assert "encrypted" in skipped["locked.pdf"]
    assert "cannot be read" in skipped["broken.pdf"]
    assert indexing.build(config).built is False  # the bad files do not make it rebuild every time


def test_pdf_answers_carry_their_page_and_index_the_extracted_text(mixed: tuple[Config, Path]) -> None:
    config, _folder = mixed
    answer = ask("How many fishing boats were registered in Stromness?", config=config)
    c = answer.citations[0]
    assert c.source.endswith("survey.pdf") and c.page == 2 and "314" in c.quote
    text, record = sources.document_text(config, c.source)
    assert text[c.start : c.end] == c.quote
    assert record["title"] == "Harbour Survey" and record["author"] == "Ana Ruiz"


BOATS = ("red", "blue", "green", "grey", "white", "black", "yellow")


def test_a_pdfs_running_heads_and_page_numbers_are_not_its_text(tmp_path: Path) -> None:
    """A report's title atop every page and its page number below cut the sentence that runs on from one
    page to the next ("… found in the / 2 / Harbour Survey 2024 / inner basin …"); they go, the title stays
    once where the first page has it, and the sentence reads on."""
    from fpdf import FPDF

    from rag.chunking import sentences
    from rag.printed import pdf_to_text

    class Report(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", size=9)
            self.cell(0, 8, "Harbour Survey 2024", new_x="LMARGIN", new_y="NEXT")

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font("Helvetica", size=9)
            self.cell(0, 8, f"Page {self.page_no()}", new_x="LMARGIN", new_y="NEXT")

    pdf = Report()
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    for n in range(1, 5):
        text = f"Section {n}. " + " ".join(f"The {BOATS[i % 7]} boat was counted in the basin." for i in range(120))
        pdf.multi_cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(tmp_path / "report.pdf"))
    extracted = pdf_to_text(tmp_path / "report.pdf")
    text = extracted.text
    assert len(extracted.pages) >= 3
    assert text.startswith("Harbour Survey 2024\n") and text.count("Harbour Survey 2024") == 1
    assert not re.search(r"^Page \d+$", text, re.MULTILINE)
    said = [text[a:b] for a, b in sentences(text, 0, len(text))]
    assert all("Page" not in x and "Harbour Survey" not in x for x in said[1:])
    assert all(x.startswith(("The", "Section")) and x.endswith(".") for x in said[1:])  # none cut at a page
    assert len(re.findall(r"boat\s+was\s+counted", text)) == 4 * 120  # no line of text taken for a running head


def test_a_word_broken_at_a_pdf_lines_end_is_read_whole(tmp_path: Path) -> None:
    """A typeset PDF breaks words at its lines' ends ("manip-" / "ulation"): they are joined again, so the
    word is found by its whole spelling and quoted as written; a compound the document writes with its
    hyphen elsewhere, and code, keep theirs."""
    from rag.printed import pdf_to_text

    lines = [
        "Tidewatch is a library for the manip-",
        "ulation of tide tables and for the manage-",
        "ment of harbour records. It is a well-known tool.",
        "Its well-",
        "known format stamps each record YYMMDDhhmm-",
        "hh with the harbour's code.",
    ]
    make_pdf(tmp_path / "tidewatch.pdf", ["\n".join(lines)], title="Tidewatch manual")
    text = pdf_to_text(tmp_path / "tidewatch.pdf").text
    assert "the manipulation\nof tide tables and for the management\nof harbour records." in text
    assert "well-\nknown format" in text and "YYMMDDhhmm-\nhh" in text
    config = load_config(env={}, corpus=str(tmp_path), index_dir=str(tmp_path / "index"))
    answer = ask("What is Tidewatch a library for?", config=config)
    c = answer.citations[0]
    assert not answer.abstained and "manipulation of tide tables" in " ".join(c.quote.split())
    assert sources.document_text(config, c.source)[0][c.start : c.end] == c.quote


@pytest.mark.parametrize(
    ("first_line", "title"),
    [
        ("Libtasn1", "Libtasn1"),  # a manual's one-word title
        ("Shared MIME-info Database", "Shared MIME-info Database"),
        ("The harbour board met on Monday to count the boats.", None),  # a sentence
        ("7", None),  # a page number
        ("https://example.org/tidewatch", None),
    ],
)
def test_a_pdf_without_a_stated_title_is_titled_by_its_first_line_when_that_reads_as_one(
    tmp_path: Path, first_line: str, title: str | None
) -> None:
    """Its metadata names no title (LaTeX and TeX manuals often do not): the first line of its first page
    is the title when it reads as one, and the documents list shows that rather than the file's path."""
    from rag.documents import load

    body = "Tidewatch predicts high and low water for Scottish harbours.\nIt reads the tide tables on disk."
    make_pdf(tmp_path / "manual.pdf", [f"{first_line}\n{body}"], title=None, author=None)
    doc = load(tmp_path / "manual.pdf")
    assert doc.title == title
    assert "Tidewatch predicts high and low water" in doc.text


def test_a_pdfs_title_page_names_its_authors_where_its_metadata_does_not(tmp_path: Path) -> None:
    """A manual's title page names its authors on lines of their own under the title; with no author in
    the metadata (or only a placeholder, "Windows User") they are its byline, and "who wrote…?" is answered
    from it. A group's name is no one's,
    and a title that is a name ("Ada Lovelace") names whom the document is about."""
    from rag.documents import load

    page = (
        "Tidewatch Field Manual\nOrkney Harbours Group\nAna Ruiz\nEwan Flett (ewan@example.org)\n"
        "Tidewatch predicts high and low water for Scottish harbours.\nIt reads the tide tables on disk."
    )
    make_pdf(tmp_path / "manual.pdf", [page], title=None, author="Windows User")  # Word's placeholder
    doc = load(tmp_path / "manual.pdf")
    assert (doc.title, doc.author) == ("Tidewatch Field Manual", "Ana Ruiz and Ewan Flett")
    assert "Windows User" not in doc.text
    config = load_config(env={}, corpus=str(tmp_path), index_dir=str(tmp_path / "index"))
    answer = ask("Who wrote the Tidewatch Field Manual?", config=config)
    assert not answer.abstained and answer.span is not None and "Ana Ruiz" in answer.span.quote
    c = answer.citations[0]
    assert sources.document_text(config, c.source)[0][c.start : c.end] == c.quote
    make_pdf(tmp_path / "life.pdf", ["Ada Lovelace\nShe wrote the first published program."], title=None, author=None)
    assert (load(tmp_path / "life.pdf").title, load(tmp_path / "life.pdf").author) == ("Ada Lovelace", None)


@pytest.mark.parametrize(("author", "byline"), [(None, None), ("Ana Ruiz", "Ana Ruiz"), ("Windows User", None)])
def test_a_word_documents_title_is_its_title_paragraph_and_no_placeholder_is_its_author(
    tmp_path: Path, author: str | None, byline: str | None
) -> None:
    """python-docx writes "python-docx" as every new document's author, and Word writes the account's name
    ("Windows User"): no one wrote the minutes by that name. The title paragraph is the title, once, and
    the byline goes under it."""
    import docx

    from rag.documents import load

    document = docx.Document()
    if author is not None:
        document.core_properties.author = author
    document.add_heading("Harbour board minutes", level=1)
    document.add_paragraph("The Kirkwall harbour board met on Monday and approved a new electric ferry.")
    document.save(str(tmp_path / "minutes.docx"))
    doc = load(tmp_path / "minutes.docx")
    assert (doc.title, doc.author) == ("Harbour board minutes", byline)
    assert doc.text.count("Harbour board minutes") == 1 and "python-docx" not in doc.text


def test_word_and_html(mixed: tuple[Config, Path]) -> None:
    config, folder = mixed
    answer = ask("Who proposed a later evening sailing?", config=config)
    assert answer.citations[0].source.endswith("minutes.docx") and "Rhona Tait" in answer.text
    text, record = sources.document_text(config, str(folder / "page.html"))
    assert record["title"] == "Lighthouse reopens" and record["date"] == "2024-05-04"  # an ISO date is a date
    assert "Noup Head" in text and "Home | News" not in text and "Copyright" not in text


def test_show_and_rm_from_the_command_line(mixed: tuple[Config, Path]) -> None:
    config, folder = mixed
    indexing.build(config)
    env = {**os.environ, "RAG_CORPUS": str(folder), "RAG_INDEX_DIR": str(config.index_path)}

    def rag(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rag.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
        )

    shown = rag("show", str(folder / "survey.pdf"))
    assert shown.returncode == 0 and "314 fishing boats" in shown.stdout
    removed = rag("rm", "--json", str(folder / "minutes.docx"))
    assert json.loads(removed.stdout)["removed"] == 1
    listed = json.loads(rag("ls", "--json").stdout)
    assert not any(r["source"].endswith("minutes.docx") for r in listed) and len(listed) == 3
    again = json.loads(rag("index", "--json").stdout)  # a removed file stays out of later runs
    assert again["documents"] == 3
    missing = rag("rm", "nowhere.txt")
    assert missing.returncode == 2 and "not in the index" in missing.stderr


def test_eval_checks_citations_of_pdf_and_word_against_their_extracted_text(
    mixed: tuple[Config, Path], tmp_path: Path
) -> None:
    config, folder = mixed
    indexing.build(config)
    gold = tmp_path / "gold.jsonl"
    rows = [
        ("f1", "How many fishing boats were registered in Stromness?", "314", "survey.pdf", "314 fishing boats"),
        ("f2", "Who proposed a later evening sailing?", "Rhona Tait", "minutes.docx", "Councillor Rhona Tait"),
    ]
    gold.write_text(
        "".join(
            json.dumps({"id": i, "question": q, "answers": [a], "source": str(folder / f), "evidence": e}) + "\n"
            for i, q, a, f, e in rows
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "RAG_CORPUS": str(folder), "RAG_INDEX_DIR": str(config.index_path)}
    out = subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval", "--gold", str(gold), "--json", str(tmp_path / "f.json")],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    figures = json.loads((tmp_path / "f.json").read_text())
    assert figures["citation_validity"] == 1.0 and figures["containment"] == 1.0
    assert figures["recall_at_5"] == 1.0, "the evidence was found in the extracted text"


def test_removing_an_unknown_document_is_a_clear_error(mixed: tuple[Config, Path]) -> None:
    config, _ = mixed
    indexing.build(config)
    with pytest.raises(CorpusError, match="not in the index"):
        indexing.remove(config, ["nope.txt"])


def test_kill_9_while_embedding_then_resume(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    for i in range(60):
        (folder / f"doc-{i:02d}.txt").write_text(
            "\n\n".join(
                f"Report {i}, item {j}: the depot Warehouse{i:02d}x shipped {j * 7 + i} crates of apples "
                f"to the market in week {j}."
                for j in range(40)
            ),
            encoding="utf-8",
        )
    index_dir = tmp_path / "index"
    env = {**os.environ, "RAG_CORPUS": str(folder), "RAG_INDEX_DIR": str(index_dir), "RAG_CHECKPOINT_S": "2"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "index"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 240
    while time.time() < deadline and not list(index_dir.glob("cache/*/shard-*.npz")):
        assert proc.poll() is None, "the build finished before it could be interrupted"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(
        [sys.executable, "-m", "rag.cli", "index", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    assert report["documents"] == 60
    assert 0 < report["sentences_embedded"] < report["sentences"], "the second run reused what the first embedded"
    assert not list(index_dir.glob("cache/*")), "the checkpoint is cleared once the index is published"
    forget()
    config = load_config(env={}, corpus=str(folder), index_dir=str(index_dir))
    from rag.pipeline import get_pipeline

    passages = get_pipeline(config).retrieve("What did depot Warehouse07x ship?", config)
    assert passages[0].source.endswith("doc-07.txt")


def test_a_half_written_checkpoint_does_not_stop_the_next_build(corpus_config: Config) -> None:
    """A build killed while writing a checkpoint shard leaves a partial file; the next build skips it."""
    folder = embedding_cache.EmbeddingCache(corpus_config).folder
    folder.mkdir(parents=True)
    (folder / "partial-1.npz").write_bytes(b"PK\x03\x04 cut short")
    (folder / "shard-2.npz").write_bytes(b"PK\x03\x04 cut short")
    report = indexing.build(corpus_config)
    assert report.documents == 2 and report.sentences_embedded == report.sentences
    assert not list(folder.parent.glob("*/*.npz"))


HARBOUR_MD = """---
title: "Harbour Watch"
author: Ana Ruiz
date: 2024-05-04
---

[![build](https://img.shields.io/badge/build-passing-green.svg)](https://ci.example.org)

Harbour Watch is a **small tool** that counts boats in a harbour from
[webcam stills](https://example.org/stills), and it is used
by the harbour masters of Stromness and Kirkwall.

## Installing

Install it with:

```
pip install harbour-watch
```

## Output formats

It writes its counts as:

- CSV files
- JSON lines
- a daily *PDF* report

| Harbour | Boats |
|---|---|
| Stromness | 314 |
"""


def test_markdown_is_read_as_it_renders() -> None:
    from rag.formats import markdown_to_text

    extracted = markdown_to_text(HARBOUR_MD, "harbour.md")
    text = extracted.text
    assert extracted.title == "Harbour Watch"
    assert text.startswith("Harbour Watch\n\nBy Ana Ruiz\n\nPublished: 2024-05-04\n\n")
    assert "http" not in text and "build" not in text and "**" not in text and "[" not in text
    assert "from webcam stills, and it is used by the harbour masters" in text  # one line: wrapped, not broken
    assert "• CSV files" in text and "• a daily PDF report" in text
    assert "Stromness | 314" in text and "\n\n```\npip install harbour-watch\n```\n\n" in text  # code, fenced
    headed = markdown_to_text("<h1>Tide Tables</h1>\n\nThe tables list high water.\n", "t.md")
    assert headed.title == "Tide Tables" and headed.text.startswith("Tide Tables\n\nThe tables")
    untitled = markdown_to_text("Some text first.\n\n# A heading later\n", "u.md")
    assert untitled.title is None
    with pytest.raises(CorpusError, match="no text"):
        markdown_to_text("![logo](https://example.org/logo.png)\n", "logo.md")


def test_markdown_answers_quote_whole_wrapped_sentences(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "harbour.md").write_text(HARBOUR_MD, encoding="utf-8")
    (folder / "empty.md").write_text("![logo](https://example.org/logo.png)\n", encoding="utf-8")
    config = load_config(env={}, corpus=str(folder), index_dir=str(tmp_path / "index"))
    report = indexing.build(config)
    assert report.documents == 1 and "no text" in dict(report.skipped)[str(folder / "empty.md")]
    answer = ask("Which harbour masters use Harbour Watch?", config=config)
    c = answer.citations[0]
    assert c.quote.startswith("Harbour Watch is a small tool") and c.quote.endswith("Stromness and Kirkwall.")
    assert "\n" not in answer.text  # a sentence wrapped in its file reads as one line
    text, record = sources.document_text(config, c.source)
    assert text[c.start : c.end] == c.quote
    assert (record["title"], record["author"], record["date"]) == ("Harbour Watch", "Ana Ruiz", "2024-05-04")
    # the sections after the first paragraph are the document's own text, not a web page's sign-offs
    assert "314" in ask("How many boats are in Stromness?", config=config).text
    # not "What does Harbour Watch write its counts as?": on the fp32 and bf16 paths the name pulls the
    # opening sentence ahead of "It writes its counts as:", which does not say it (README, "Noticed")
    listed = ask("In which formats are the counts written?", config=config)
    quotes = [c.quote for c in listed.citations]
    assert quotes == ["It writes its counts as:", "• CSV files", "• JSON lines", "• a daily PDF report"]
    assert listed.span is None and all(text[c.start : c.end] == c.quote for c in listed.citations)


def test_html_paragraphs_wrapped_in_the_source_read_as_one() -> None:
    """A page's source wraps its paragraphs anywhere (around inline code and links too); trafilatura's
    text output kept those breaks, and each piece was indexed as a paragraph of its own."""
    from rag.webpages import html_to_text

    page = (
        "<html><head><title>Storing Lists of Values</title></head><body><main><h1>Storing Lists of Values</h1>"
        "<p>To create a new, empty vector, we call the <code>Vec::new</code> function, as shown in\n"
        "<a href='#l1'>Listing 8-1</a>. Vectors can only store values\nof the same type.</p>"
        "<p>Threads bring three kinds of problems, and the book lists them here for the reader:</p>"
        "<ul><li>Race conditions, in which threads access data\nin an inconsistent order</li>"
        "<li>Deadlocks</li></ul>"
        "<p>Write to the Harbour Office,<br>Pier Road, Kirkwall.</p>"
        "<table><tr><th>Method</th><th>Returns</th></tr><tr><td>get</td><td>Option&lt;&amp;T&gt;</td></tr></table>"
        "</main></body></html>"
    )
    text = html_to_text(page, "vectors.html")
    assert text.startswith("Storing Lists of Values\n\n")
    assert (
        "To create a new, empty vector, we call the Vec::new function, as shown in Listing 8-1. "
        "Vectors can only store values of the same type.\n" in text
    )
    assert "• Race conditions, in which threads access data in an inconsistent order\n\n• Deadlocks" in text
    assert "get | Option<&T>" in text
    assert "Write to the Harbour Office,\nPier Road, Kirkwall." in text  # a <br> still breaks the line


def test_a_documentation_page_is_read_without_its_permalinks_and_under_its_own_title(tmp_path: Path) -> None:
    """Sphinx and MkDocs pages put a link to each heading beside it ("IDLE¶"); it was read as part of the
    heading, and the title guessed from the header lines was "Source code: Lib/idlelib/", the
    headline-length line nearest the first paragraph, not the page's own "IDLE"."""
    from rag.documents import load
    from rag.webpages import html_to_text

    page = (
        "<html><head><title>IDLE &#8212; Python 3.12 documentation</title></head><body><div class='body'>"
        "<section id='idle'><h1>IDLE<a class='headerlink' href='#idle' title='Permalink'>¶</a></h1>"
        "<p><strong>Source code:</strong> <a href='x'>Lib/idlelib/</a></p>"
        "<p>IDLE is Python’s Integrated Development and Learning Environment, coded in pure Python with the "
        "tkinter toolkit, and it works mostly the same on Windows, Unix and macOS.</p>"
        "<section id='menus'><h2>Menus<a class='headerlink' href='#menus'>&#182;</a></h2>"
        "<p>IDLE has two main window types, the Shell window and the Editor window, and each has its own "
        "menus along the top of the window.</p>"
        "<h2 id='s'>Search <a href='#s' class='anchor'>#</a></h2>"
        "<p>Search finds text in the current window, and Search in Files finds it in many files at once.</p>"
        "</section></section></div></body></html>"
    )
    text = html_to_text(page, "help.html")
    assert "¶" not in text and "Search #" not in text and "Menus¶" not in text
    assert "IDLE has two main window types" in text
    path = tmp_path / "help.html"
    path.write_text(page, encoding="utf-8")
    assert load(path).title == "IDLE"
    # a manual whose first heading names a section ("Abstract") is titled as its <title> says
    manual = page.replace(
        "<h1>IDLE<a class='headerlink' href='#idle' title='Permalink'>¶</a></h1>", "<h1>Abstract</h1>"
    )
    path.write_text(manual.replace("IDLE &#8212; Python 3.12 documentation", "Debian Python Policy"), encoding="utf-8")
    assert load(path).title == "Debian Python Policy"


MANUAL_SECTIONS = {
    "menus": (
        "Menus",
        "IDLE has two main window types, the Shell window and the Editor window, and each has its own menus.",
        "Output windows, such as those used for Find in Files, are a subtype of editor window with the same menu.",
    ),
    "editing-and-navigation": (
        "Editing and Navigation",
        "Editor windows show the file being edited, and the title bar shows the name of the file and its folder.",
        "Key bindings are the same in both window types, and each can be changed in the settings dialog.",
    ),
    "startup": (
        "Startup and Code Execution",
        "Upon startup with the -s option, IDLE executes the file named by IDLESTARTUP or PYTHONSTARTUP.",
        "Files named by these environment variables are good places to store functions used from the Shell.",
    ),
}


def test_a_section_named_like_a_menu_is_read_and_an_aside_is_not() -> None:
    """trafilatura drops whatever an id calls navigation or a menu: Python's IDLE page lost its sections
    "Menus" (``<section id="menus">``) and "Editing and Navigation", more than half its text. A section
    whose id is its heading's slug is the page's own; an aside that names itself "related" is still dropped."""
    from rag.webpages import html_to_text

    sections = "".join(
        f"<section id='{slug}'><h2>{heading}<a class='headerlink' href='#{slug}'>¶</a></h2><p>{one}</p><p>{two}</p>"
        "</section>"
        for slug, (heading, one, two) in MANUAL_SECTIONS.items()
    )
    page = (
        "<html><head><title>IDLE</title></head><body><div class='body'><section id='idle'><h1>IDLE</h1>"
        "<p>IDLE is Python’s Integrated Development and Learning Environment, coded in pure Python with the tkinter "
        f"GUI toolkit, and it works mostly the same on Windows, Unix and macOS.</p>{sections}</section></div>"
        "<aside id='related'><h3>Related</h3><p>Read our other guides to Python editors and what they do.</p></aside>"
        "</body></html>"
    )
    text = html_to_text(page, "help.html")
    for _, one, two in MANUAL_SECTIONS.values():
        assert one in text and two in text
    assert "other guides" not in text
    # a page whose headings link to nothing (a news site's) keeps its ids: its comments are no section of the text
    news = (
        "<html><head><title>Lighthouse reopens</title></head><body><article><h1>Lighthouse reopens</h1>"
        + "".join(
            f"<p>Paragraph {i}: the restored lighthouse at Noup Head welcomed visitors again after a "
            "two-year restoration costing eighty thousand pounds.</p>"
            for i in range(6)
        )
        + "</article><section id='comments'><h2>Comments</h2><p>Great news, I visited the lighthouse last "
        "summer.</p></section></body></html>"
    )
    assert "Great news" not in html_to_text(news, "news.html")


def test_a_definition_list_reads_each_term_with_its_description() -> None:
    """ "Restart Shell" and "Restart the shell to clean the environment" were two list items; the
    description never said what it describes."""
    from rag.webpages import _page_blocks

    xml = (
        "<doc><main><head rend='h3'>Shell menu</head><list rend='dl'>"
        "<item rend='dt-1'>Restart Shell</item><item rend='dd-1'><p>Restart the shell to clean the environment.</p>"
        "</item><item rend='dt-2'>Authors:</item><item rend='dd-2'><list rend='ul'><item><p>Ann Lee</p></item>"
        "<item><p>Bo Chan</p></item></list></item><item rend='dd-3'><p>A description with no term.</p></item>"
        "</list></main></doc>"
    )
    assert _page_blocks(xml) == [
        "Shell menu",
        "• Restart Shell: Restart the shell to clean the environment.",
        "• Authors: Ann Lee, Bo Chan",
        "• A description with no term.",
    ]


def test_a_script_without_a_main_guard_indexes_html(tmp_path: Path) -> None:
    """A script that calls ``ask()`` at its top level: the extractor's child must not run it again."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "page.html").write_text(
        "<html><head><title>Lighthouse reopens</title></head><body><article><h1>Lighthouse reopens</h1>"
        "<p>The restored lighthouse at Noup Head welcomed visitors again after a two-year restoration costing "
        "eighty thousand pounds.</p></article></body></html>",
        encoding="utf-8",
    )
    script = tmp_path / "quick.py"
    script.write_text(
        "from rag import ask, load_config\n"
        f"config = load_config(env={{}}, corpus={str(folder)!r}, index_dir={str(tmp_path / 'index')!r})\n"
        "print(ask('How much did the lighthouse restoration cost?', config=config).text)\n",
        encoding="utf-8",
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "eighty thousand pounds" in done.stdout


def test_html_code_is_fenced_and_its_lines_stay_lines() -> None:
    from rag.chunking import sentences
    from rag.webpages import html_to_text

    page = (
        "<html><body><article><h1>Vectors</h1><p>To create a new, empty vector, we call the function as shown "
        "in the listing below for you to read.</p><pre><code>let v: Vec&lt;i32&gt; = Vec::new();\nlet w = 1;"
        "</code></pre><p>Note that we added a type annotation here, because we are not inserting any values."
        "</p></article></body></html>"
    )
    text = html_to_text(page, "vectors.html")
    assert "\n\n```\nlet v: Vec<i32> = Vec::new();\nlet w = 1;\n```\n\n" in text
    lines = [text[a:b] for a, b in sentences(text, 0, len(text))]
    assert "let v: Vec<i32> = Vec::new();" in lines and "let w = 1;" in lines


TEXINFO_PAGE = """<html><head><title>Missing Features (tidelib: a tide table library)</title></head><body>
<div class="chapter" id="Missing-Features">
<div class="header"><p>
Next: <a href="Index.html" accesskey="n" rel="next">Index</a>, Previous: <a href="Memory-Usage.html" accesskey="p"
rel="prev">Memory Usage</a>, Up: <a href="index.html" accesskey="u" rel="up">tidelib</a> &nbsp; [<a href="Index.html"
title="Index" rel="index">Index</a>]</p></div>
<hr>
<h2 class="chapter">4 Missing Features</h2>
<p><code>tidelib</code> is missing a few features.  We welcome patches to add
support for these.
</p>
<ul>
<li> Tidal streams.

</li><li> There is no support for river estuaries.

</li><li> The Go API is undocumented.
</li></ul>
<p>Harbours are opened one at a time with <code>tide_open</code>.  Read
<a href="Tables.html">the tables chapter</a> and <a href="Units.html">the units chapter</a> first.</p>
<dl class="def">
<dt id="index-tide_005fopen"><span class="category">Function: </span><span><strong>int</strong> <em>tide_open
(const char *<var>harbour</var>)</em><a href='#index-tide_005fopen' class='copiable-anchor'> &para;</a></span></dt>
<dd><p>Open the tide table of a harbour.
</p>
<p><var>harbour</var> is the harbour's name; normally its English name is what you want.
</p></dd></dl>
</div>
</body></html>
"""


def test_a_manual_page_loses_its_navigation_bar_and_keeps_its_lists_and_signatures(tmp_path: Path) -> None:
    """A texinfo manual's bar of links ("Next: Index, Previous: Memory Usage, Up: tidelib [Index]") was read
    as the page's first line, and beside it trafilatura dropped the list under it; a list item holding code
    and each function's signature went too ("Open the tide table of a harbour." named no function). A
    paragraph with links of its own stays."""
    from rag.documents import load
    from rag.webpages import html_page

    text = html_page(TEXINFO_PAGE, "Missing-Features.html").text
    assert "Next:" not in text and "Previous:" not in text and "[Index]" not in text
    assert "• There is no support for river estuaries.\n\n• The Go API is undocumented." in text
    assert "Read the tables chapter and the units chapter first." in text
    assert "• Function: int tide_open (const char *harbour): Open the tide table of a harbour.\n\n" in text
    assert "\n\nharbour is the harbour's name; normally its English name is what you want." in text  # its own line
    path = tmp_path / "Missing-Features.html"
    path.write_text(TEXINFO_PAGE, encoding="utf-8")
    doc = load(path)
    assert "• The Go API is undocumented." in "\n".join(doc.text[s.start : s.end] for s in doc.sections)


WEB_BOOK_PAGE = """<!DOCTYPE html><html><head><title>Installation - The Tide Book</title></head><body>
<div id="help-container"><div id="help-popup"><h2>Keyboard shortcuts</h2>
<p>Press ← or → to navigate between chapters</p><p>Press ? to show this help</p></div></div>
<nav id="sidebar" class="sidebar"><ol class="chapter"><li><a href="intro.html">Introduction</a></li>
<li><a href="install.html" class="active">Installation</a></li><li><a href="usage.html">Usage</a></li></ol></nav>
<div id="page-wrapper"><div class="menu-bar"><h1 class="menu-title">The Tide Book</h1></div>
<div id="content" class="content"><main>
<h1 id="installation"><a class="header" href="#installation">Installation</a></h1>
<p>Tidewatch needs Python 3.10 or newer. Install it with pip, which downloads the tide tables it reads as well.</p>
<p>Tidewatch works without a network once installed, because it reads the tide tables from your home folder.</p>
</main>
<nav class="nav-wrapper"><a rel="prev" href="intro.html" title="Previous chapter">‹</a>
<a rel="next prefetch" href="usage.html" title="Next chapter">›</a></nav>
</div></div></body></html>"""


def test_a_web_books_page_is_titled_by_its_chapter_not_by_the_book_or_its_help_box(tmp_path: Path) -> None:
    """mdBook titles each page "Chapter - Book"; trafilatura read the book's name (every chapter of the Rust
    book was "The Rust Programming Language") or the heading of the keyboard-help box ("Keyboard
    shortcuts"), and the help box's lines were read as text."""
    from rag.documents import load
    from rag.webpages import _a_section, html_page

    assert html_page(WEB_BOOK_PAGE, "install.html").title == "Installation - The Tide Book"
    path = tmp_path / "install.html"
    path.write_text(WEB_BOOK_PAGE, encoding="utf-8")
    doc = load(path)
    kept = "\n".join(doc.text[s.start : s.end] for s in doc.sections)
    assert doc.title == "Installation - The Tide Book" and "Tidewatch needs Python 3.10" in kept
    assert "Press" not in kept and "Keyboard shortcuts" not in kept
    assert _a_section("Keyboard shortcuts", "Changelog - The Cargo Book")
    assert not _a_section("IDLE", "IDLE — Python 3.12 documentation")
    assert not _a_section("Council approves new cycle lanes", "Council approves cycle lanes | The Wessex Courier")
