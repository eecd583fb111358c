"""The app's sessions, races and admission, through its HTTP API (gradio_client against the real server)."""

from __future__ import annotations

import html
import re
import shutil
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rag import load_config
from rag.config import Config
from rag.uploads import add_files

from .conftest import SEEDS
from .fake_llm import FakeLLM

MARK_RE = re.compile(r"<mark class='rag-hl'>(.*?)</mark>", re.S)
SPAN_RE = re.compile(r"<mark class='rag-span'>(.*?)</mark>", re.S)  # the short answer, marked inside the quote


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(config: Config) -> tuple[str, object]:
    from ui.app import launch

    port = free_port()
    return f"http://127.0.0.1:{port}", launch(config, port=port, block=False)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sessions-corpus")
    for path in SEEDS.iterdir():
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def app(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Config]]:
    config = load_config(env={}, corpus=str(corpus), index_dir=str(tmp_path_factory.mktemp("sessions-index")))
    url, demo = serve(config)
    yield url, config
    demo.close()  # type: ignore[attr-defined]


def client(url: str) -> object:
    from gradio_client import Client

    return Client(url, verbose=False)


def highlighted(viewer_html: str) -> str | None:
    found = MARK_RE.search(SPAN_RE.sub(r"\1", viewer_html))
    return html.unescape(found.group(1)) if found else None


def test_two_answers_at_once_in_one_session_each_open_their_own_quote(app: tuple[str, Config]) -> None:
    url, _ = app
    one = client(url)  # one browser session
    questions = ["Who chairs the NHS Alliance?", "How many PCTs did Pulse approach?", "Who is Michelle Drage?"]
    jobs = [one.submit(q, api_name="/chat") for q in questions]  # type: ignore[attr-defined]
    replies = [job.result(timeout=120) for job in jobs]
    ids = [r["id"] for r in replies]
    assert len(set(ids)) == len(ids), f"every answer has its own id: {ids}"
    for reply in replies:
        for n, c in enumerate(reply["citations"], start=1):
            shown = one.predict(f"#cite-{reply['id']}-{n}", api_name="/open")  # type: ignore[attr-defined]
            assert highlighted(shown) == c["quote"]


def test_sessions_cannot_open_each_others_answers(app: tuple[str, Config]) -> None:
    url, _ = app
    alice, bob = client(url), client(url)
    reply = alice.predict("Who chairs the NHS Alliance?", api_name="/chat")  # type: ignore[attr-defined]
    assert highlighted(alice.predict(f"#cite-{reply['id']}-1", api_name="/open"))  # type: ignore[attr-defined]
    assert bob.predict(f"#cite-{reply['id']}-1", api_name="/open") == ""  # type: ignore[attr-defined]


def test_the_viewer_checks_the_quote_before_highlighting(app: tuple[str, Config], corpus: Path) -> None:
    url, _ = app
    c = client(url)
    reply = c.predict("How many PCTs did Pulse approach?", api_name="/chat")  # type: ignore[attr-defined]
    cited = reply["citations"][0]
    path = corpus / Path(cited["source"]).name
    original = path.read_text(encoding="utf-8")
    try:
        path.write_text("Correction appended above the article.\n\n" + original, encoding="utf-8")
        moved = c.predict(f"#cite-{reply['id']}-1", api_name="/open")  # type: ignore[attr-defined]
        assert highlighted(moved) == cited["quote"] and "found at a new place" in moved
        path.write_text(original.replace(cited["quote"], "(paragraph withdrawn)"), encoding="utf-8")
        gone = c.predict(f"#cite-{reply['id']}-1", api_name="/open")  # type: ignore[attr-defined]
        assert highlighted(gone) is None and "no longer holds the quoted words" in gone
    finally:
        path.write_text(original, encoding="utf-8")


def test_a_document_link_survives_another_sessions_upload(app: tuple[str, Config], tmp_path: Path) -> None:
    from ui.app import doc_key

    url, config = app
    c = client(url)
    c.predict("Who chairs the NHS Alliance?", api_name="/chat")  # type: ignore[attr-defined]
    target = sorted(SEEDS.iterdir())[0]
    source = str(Path(config.corpus or "") / target.name)
    before = c.predict(f"#doc-{doc_key(source)}", api_name="/open")  # type: ignore[attr-defined]
    early = tmp_path / "blob"
    early.write_text("An earlier note about the harbour, uploaded by someone else.\n", encoding="utf-8")
    add_files(config, [(early, "000-first.txt")])  # sorts before every seed: the document list shifts
    after = c.predict(f"#doc-{doc_key(source)}", api_name="/open")  # type: ignore[attr-defined]
    assert "doc-title" in before and before == after


def test_past_the_limit_the_app_says_busy_at_once(corpus: Path, tmp_path: Path) -> None:
    with FakeLLM(slow_s=6.0) as llm:
        config = load_config(
            env={},
            corpus=str(corpus),
            index_dir=str(tmp_path / "index"),
            max_concurrent=1,
            llm_base_url=llm.url,
            llm_model="slow",
            llm_timeout_s=30,
        )
        url, demo = serve(config)
        try:
            first = client(url)
            slow = first.submit("Who chairs the NHS Alliance?", 5, "generator", api_name="/chat")  # type: ignore[attr-defined]
            time.sleep(1.5)  # the slow model now holds the one answer slot
            started = time.monotonic()
            with ThreadPoolExecutor(4) as pool:
                others = list(
                    pool.map(lambda _: client(url).predict("Who chairs the NHS Alliance?", api_name="/chat"), range(4))  # type: ignore[attr-defined]
                )
            assert all(o["busy"] for o in others) and time.monotonic() - started < 5, "answered busy at once"
            assert not slow.result(timeout=60)["busy"]
            assert not client(url).predict("Who chairs the NHS Alliance?", api_name="/chat")["busy"]  # type: ignore[attr-defined]
        finally:
            demo.close()  # type: ignore[attr-defined]


def test_only_a_leading_short_answer_is_bold() -> None:
    from rag import Answer, Citation
    from rag.answering import compose
    from ui.app import render_answer

    quote = "Fares rose — the council said — by a tenth."
    sentence = Citation(source="a.txt", quote=quote, start=0, end=len(quote))
    short = Citation(source="a.txt", quote="by a tenth", start=32, end=42)
    echo = Citation(source="a.txt", quote="Fares rose — the council said — by a tenth", start=0, end=42)

    def shown(span: Citation) -> str:
        return render_answer(Answer(compose([sentence], span), abstained=False, citations=[sentence], span=span), 1, {})

    led = shown(short)
    assert "<b class='short-answer'>by a tenth</b> — Fares rose" in led
    plain = shown(echo)
    assert "short-answer" not in plain and "Fares rose — the council said — by a tenth." in plain


def test_the_examples_name_each_title_once(tmp_path: Path) -> None:
    """A web book's chapters may share one title; the examples offered each title once, not three alike."""
    from rag.pipeline import get_pipeline
    from ui.app import example_questions

    docs = tmp_path / "docs"
    docs.mkdir()
    for n, text in enumerate(["Tidewatch predicts the tides.", "Tidewatch reads tables.", "Ferries sail at dawn."]):
        title = "Ferry notes" if n == 2 else "The Tide Book"
        (docs / f"{n}.md").write_text(
            f"# {title}\n\n{text} It is used in Orkney and Shetland harbours.\n", encoding="utf-8"
        )
    config = load_config(env={}, corpus=str(docs), index_dir=str(tmp_path / "index"))
    examples = example_questions(get_pipeline(config))
    assert examples.count("What does “The Tide Book” say?") == 1 and "What does “Ferry notes” say?" in examples
