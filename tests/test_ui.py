"""The chat UI in a real browser (Debian's Chromium driven by Playwright) against the real app.

Screenshots of each state are saved under artifacts/ui/.
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rag import load_config
from rag.config import ROOT

from .conftest import SEEDS, has_module, require

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True, scope="module")
def _browser_present() -> None:
    require(has_module("playwright"), "Playwright", "run `make install` (the dev extra)")
    require(CHROMIUM.exists(), "Debian's chromium", "apt-get install chromium (.ci/run does)")


XSS = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"><b onmouseover="window.__xss=3">bold</b>'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from ui.app import launch

    corpus = tmp_path_factory.mktemp("ui-corpus")
    for path in SEEDS.iterdir():
        shutil.copy(path, corpus / path.name)
    config = load_config(env={}, corpus=str(corpus), index_dir=str(tmp_path_factory.mktemp("ui-index")))
    port = free_port()
    demo = launch(config, port=port, block=False)
    yield f"http://127.0.0.1:{port}"
    demo.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(artifacts: Path) -> Path:
    folder = artifacts / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser, app: str):
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.goto(app)
    page.wait_for_selector("#question textarea")
    yield page
    context.close()


FINAL = "#chat .answer:not(.drafting)"


@contextmanager
def page_of_own_app(browser, config) -> Iterator[object]:
    """A page on an app of its own, for a corpus or settings other than the module's app has."""
    from ui.app import launch

    port = free_port()
    demo = launch(config, port=port, block=False)
    context = browser.new_context(viewport={"width": 1400, "height": 950})
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}")
        yield page
    finally:
        context.close()
        demo.close()


def ask(page, question: str) -> object:
    """Ask, then wait for the finished answer (a generator's draft streams in first)."""
    before = page.locator(FINAL).count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(f"document.querySelectorAll('{FINAL}').length > {before}", timeout=60000)
    return page.locator(FINAL).last


def highlighted_matches_source(page) -> tuple[str, str]:
    page.wait_for_selector("#viewer mark.rag-hl")
    source = page.inner_text("#viewer .doc-meta code")
    start, end = map(int, re.search(r"characters (\d+)–(\d+)", page.inner_text("#viewer .doc-meta")).groups())
    path = Path(source) if Path(source).is_absolute() else ROOT / source
    expected = path.read_text(encoding="utf-8")[start:end]
    assert page.inner_text("#viewer mark.rag-hl") == expected
    page.wait_for_function(
        """() => {
        const mark = document.querySelector('#viewer mark.rag-hl'), box = document.querySelector('#viewer .doc-text');
        if (!mark || !box) return false;
        const r = mark.getBoundingClientRect(), b = box.getBoundingClientRect();
        return r.top >= b.top - 1 && r.bottom <= b.bottom + 1 && r.top >= 0 && r.bottom <= window.innerHeight;
    }""",
        timeout=5000,
    )
    return source, expected


def test_answer_citation_highlight_and_follow_up(page, shots: Path) -> None:
    page.screenshot(path=str(shots / "01-start.png"))
    answer = ask(page, "Who chairs the NHS Alliance?")
    assert "Michael Dixon" in answer.inner_text()
    assert answer.locator("a.cite").count() >= 2  # the marker and the source entry
    assert answer.locator(".sources blockquote").first.inner_text().strip()
    answer.locator("p a.cite").first.click()
    source, quote = highlighted_matches_source(page)
    assert "Michael Dixon" in quote and source.endswith("002_241d7df232c0b7ae.txt")
    short = answer.locator("b.short-answer").inner_text()
    assert "Michael Dixon" in short, "the short answer leads"
    assert page.inner_text("#viewer mark.rag-hl mark.rag-span") == short, "and is marked inside the quote"
    page.screenshot(path=str(shots / "02-answer-and-highlight.png"))
    follow = ask(page, "Where does he work as a GP?")
    assert "Cullompton" in follow.inner_text()
    follow.locator(".sources a.cite").first.click()
    highlighted_matches_source(page)
    page.screenshot(path=str(shots / "03-follow-up.png"))
    page.click("#new-chat")
    page.wait_for_function("document.querySelectorAll('#chat .answer').length === 0")
    page.screenshot(path=str(shots / "04-new-chat.png"))


def test_abstention_looks_different_and_shows_closest_passages(page, shots: Path) -> None:
    answer = ask(page, "What is the capital of Australia?")
    assert "abstained" in answer.get_attribute("class")
    assert "don't say" in answer.inner_text()
    passages = answer.locator(".closest a.cite")
    assert passages.count() >= 1
    passages.first.click()
    highlighted_matches_source(page)
    page.screenshot(path=str(shots / "05-abstention.png"))


def test_the_first_example_lists_the_documents_each_opening_at_its_title(page, shots: Path) -> None:
    """An example is asked when clicked (with Gradio 6 a click on one had failed in the server, unseen)."""
    page.locator("#examples button", has_text="What documents do you have?").click()  # asks at once
    page.wait_for_function(f"document.querySelectorAll('{FINAL}').length > 0", timeout=60000)
    answer = page.locator(FINAL).last
    sources = answer.locator(".sources a.cite")
    assert sources.count() == len(list(SEEDS.iterdir())) and answer.inner_text().startswith("5 documents:")
    sources.nth(2).click()
    source, quote = highlighted_matches_source(page)
    assert source.endswith("002_241d7df232c0b7ae.txt") and quote == "Polysystems go national in huge work shift to GPs"
    page.screenshot(path=str(shots / "05b-documents.png"))


def test_a_first_question_about_he_says_why_it_is_not_answered(page, shots: Path) -> None:
    answer = ask(page, "Where does he work as a GP?")
    assert "abstained" in answer.get_attribute("class")
    assert "“he” names no one" in answer.locator(".notes").inner_text()
    page.screenshot(path=str(shots / "05b-pronoun-in-an-empty-chat.png"))


def test_a_slip_in_the_question_is_read_and_the_answer_says_so(page, shots: Path) -> None:
    answer = ask(page, "Who is Clare Geradda?")
    assert "abstained" not in answer.get_attribute("class")
    assert "read “Geradda” as “Gerada”" in answer.locator(".notes").inner_text()
    assert "Royal College of GPs chair" in answer.locator("p").first.inner_text()
    page.screenshot(path=str(shots / "05c-a-slip-read.png"))


def test_upload_then_answer_from_it(page, shots: Path, tmp_path: Path) -> None:
    doc = tmp_path / "harbour-report.txt"
    doc.write_text(
        "Harbour board approves ferry upgrade\n\nBy Ana Ruiz\n\n"
        "The Kirkwall harbour board approved a new electric ferry on Monday. "
        "The ferry will cost £42m and enter service in 2031, the board's chair Ewan Flett said.\n",
        encoding="utf-8",
    )
    page.get_by_role("tab", name="Documents").click()
    rows_before = page.locator("#corpus tbody tr").count()
    page.set_input_files("#upload input[type=file]", str(doc))
    page.wait_for_selector("#upload-status .ok", timeout=120000)
    assert "uploads/harbour-report.txt" in page.inner_text("#upload-status")
    page.wait_for_function(f"document.querySelectorAll('#corpus tbody tr').length > {rows_before}")
    page.screenshot(path=str(shots / "06-upload.png"))
    answer = ask(page, "What did the Kirkwall harbour board approve?")
    assert "electric ferry" in answer.inner_text()
    answer.locator("p a.cite").first.click()
    source, _ = highlighted_matches_source(page)
    assert source.endswith("uploads/harbour-report.txt")
    page.screenshot(path=str(shots / "07-answer-from-upload.png"))


def test_rejected_upload_changes_nothing(page, shots: Path, tmp_path: Path) -> None:
    page.get_by_role("tab", name="Documents").click()
    rows_before = page.locator("#corpus tbody tr").count()
    bad = tmp_path / "scan.txt"
    bad.write_bytes(b"\x00\x01\x02PK binary junk\x00")
    page.set_input_files("#upload input[type=file]", str(bad))
    page.wait_for_selector("#upload-status .rejected", timeout=60000)
    assert "binary" in page.inner_text("#upload-status")
    assert page.locator("#corpus tbody tr").count() == rows_before
    page.screenshot(path=str(shots / "08-rejected-upload.png"))


def test_two_sessions_keep_their_own_history(browser, app: str, shots: Path) -> None:
    contexts = [browser.new_context(viewport={"width": 1400, "height": 950}) for _ in range(2)]
    a, b = (c.new_page() for c in contexts)
    for p in (a, b):
        p.goto(app)
        p.wait_for_selector("#question textarea")
    for p, q in ((a, "Who chairs the NHS Alliance?"), (b, "Who was hired to chair the London primary care panel?")):
        box = p.locator("#question textarea")
        box.fill(q)
        box.press("Enter")
    for p in (a, b):
        p.wait_for_selector("#chat .answer", timeout=60000)
    assert "Clare Gerada" not in a.inner_text("#chat") and "Michael Dixon" not in b.inner_text("#chat")
    assert "NHS Alliance?" not in b.inner_text("#chat")
    follow_a = ask(a, "Where does he work as a GP?")
    assert "Cullompton" in follow_a.inner_text()
    follow_b = ask(b, "Which college did she chair?")
    assert "Royal College of GPs" in follow_b.inner_text() and "Cullompton" not in follow_b.inner_text()
    a.screenshot(path=str(shots / "09-session-a.png"))
    b.screenshot(path=str(shots / "10-session-b.png"))
    for c in contexts:
        c.close()


def test_html_in_questions_and_documents_is_shown_as_text(page, shots: Path, tmp_path: Path) -> None:
    answer_count = page.locator("#chat .answer").count()
    ask(page, f"What about {XSS}?")
    assert page.locator("#chat .answer").count() == answer_count + 1
    assert "<script>window.__xss = 1</script>" in page.inner_text("#chat")
    doc = tmp_path / "payload.txt"
    doc.write_text(
        f"Notes from the Zanzibar clove auction\n\nThe Zanzibar clove auction raised eleven thousand dollars {XSS} "
        "for the harbour school this year.\n",
        encoding="utf-8",
    )
    page.get_by_role("tab", name="Documents").click()
    page.set_input_files("#upload input[type=file]", str(doc))
    page.wait_for_selector("#upload-status .ok", timeout=120000)
    answer = ask(page, "How much did the Zanzibar clove auction raise?")
    assert "<img src=x" in answer.inner_text()
    answer.locator("p a.cite").first.click()
    highlighted_matches_source(page)
    page.hover("#viewer mark.rag-hl")
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__xss === undefined")
    assert page.locator("#chat img, #viewer img").count() == 0
    assert page.dialogs == []
    page.screenshot(path=str(shots / "11-injection-as-text.png"))


def test_generator_answer_streams_into_the_chat(browser, tmp_path_factory, shots: Path) -> None:
    from .fake_llm import FakeLLM

    with FakeLLM() as llm:
        config = load_config(
            env={},
            corpus=str(SEEDS),
            index_dir=str(tmp_path_factory.mktemp("ui-llm-index")),
            llm_base_url=llm.url,
            llm_model="good",
            llm_timeout_s=5,
        )
        with page_of_own_app(browser, config) as page:
            page.get_by_role("tab", name="Settings").click()
            page.get_by_label("generator").check()
            answer = ask(page, "How many PCTs did Pulse approach?")
            assert "152" in answer.inner_text() and answer.locator("p a.cite").count() == 1
            answer.locator("p a.cite").first.click()
            highlighted_matches_source(page)
            page.screenshot(path=str(shots / "12-generator-answer.png"))


def test_api_with_gradio_client(app: str) -> None:
    from gradio_client import Client

    client = Client(app, verbose=False)
    first = client.predict("Who chairs the NHS Alliance?", [], 5, "extractive", api_name="/ask")
    assert not first["abstained"] and first["citations"]
    for c in first["citations"]:
        path = Path(c["source"]) if Path(c["source"]).is_absolute() else ROOT / c["source"]
        assert path.read_text(encoding="utf-8")[c["start"] : c["end"]] == c["quote"]
    follow = client.predict(
        "Where does he work as a GP?",
        [["Who chairs the NHS Alliance?", first["text"]]],
        5,
        "extractive",
        api_name="/ask",
    )
    assert "Cullompton" in follow["text"]
    with pytest.raises(Exception, match="valid names"):
        client.predict("Who?", [], 5, "oracle", api_name="/ask")


def test_the_viewer_sets_code_apart_and_hides_its_fences(browser, tmp_path_factory, shots: Path) -> None:
    """A Markdown manual's code block reads as code in the viewer, its ``` lines unseen; the quoted command
    is highlighted inside it."""
    from .test_ask import TIDEWATCH_README

    corpus = tmp_path_factory.mktemp("ui-code-corpus")
    (corpus / "tidewatch.md").write_text(TIDEWATCH_README, encoding="utf-8")
    config = load_config(env={}, corpus=str(corpus), index_dir=str(tmp_path_factory.mktemp("ui-code-index")))
    with page_of_own_app(browser, config) as page:
        answer = ask(page, "How do I install Tidewatch?")
        assert "pip install tidewatch" in answer.inner_text()
        answer.locator(".sources li", has_text="pip install tidewatch").locator("a.cite").first.click()
        page.wait_for_selector("#viewer mark.rag-hl")
        assert page.inner_text("#viewer code.block mark.rag-hl") == "pip install tidewatch"
        assert page.locator("#viewer code.block").count() == 2
        assert "```" not in page.inner_text("#viewer .doc-text")
        assert page.locator("#viewer .fence").first.is_hidden()
        page.screenshot(path=str(shots / "14-code-in-viewer.png"))
