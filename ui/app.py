"""The chat UI: a thin Gradio shell over the ``rag`` library.

Every piece of document text and every question is HTML-escaped before it reaches the
page; citations are referred to by (answer id, number) and resolved on the server from the
session's own answers, so the browser never names a file to open. Each browser session's
conversation lives on the server under a lock of its own, so answers that run at once in one
session (an example clicked while another answer streams) each keep their own id and turn;
past ``max_concurrent`` answers at once, the app says it is busy instead of queueing without end.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

from rag import Answer, Config, load_config
from rag.answering import ANSWERERS, unmark
from rag.chunking import FENCE_RE
from rag.errors import RagError
from rag.names import people
from rag.pipeline import check_names, forget, get_pipeline
from rag.types import LEAD_SEP
from rag.uploads import ACCEPTED, add_files

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent
CSS = (ROOT / "style.css").read_text(encoding="utf-8")
PLACEHOLDER = (
    "<div class='viewer-empty'>Click a citation — a marker like [1] or a source below an answer — "
    "to read it in its document, highlighted.</div>"
)
REF_RE = re.compile(r"#(cite|passage)-(\d+)-(\d+)|#doc-([0-9a-f]{16})")
BUSY = (
    "<div class='answer busy'><div class='busy-badge'>Busy</div><p>The server is answering as many questions "
    "as it can right now; ask again in a moment.</p></div>"
)


@dataclass
class Session:
    """One browser session's conversation, kept on the server."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    history: list[tuple[str, str]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)  # the transcript; "rid" ties a question to its reply
    answers: dict[int, dict[str, list[list[Any]]]] = field(default_factory=dict)
    next_id: int = 0


class Sessions:
    """Sessions by Gradio's session hash, the least recently used forgotten past ``limit``."""

    def __init__(self, limit: int = 2000, answers_per_session: int = 500) -> None:
        self._lock = threading.Lock()
        self._data: OrderedDict[str, Session] = OrderedDict()
        self.limit, self.answers_per_session = limit, answers_per_session

    def get(self, key: str | None) -> Session:
        with self._lock:
            session = self._data.pop(key or "", None) or Session()
            self._data[key or ""] = session
            while len(self._data) > self.limit:
                self._data.popitem(last=False)
            return session

    def drop(self, key: str | None) -> None:
        with self._lock:
            self._data.pop(key or "", None)


def doc_key(source: str) -> str:
    """A document's link token: stable while the document is indexed, whatever others upload meanwhile."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


# Registered once when the viewer mounts: any click on a citation anywhere on the page asks the server to open it.
VIEWER_JS = """
document.addEventListener('click', (event) => {
  const link = event.target.closest('a.cite');
  if (!link) return;
  event.preventDefault();
  trigger('click', {ref: link.getAttribute('href')});
});
watch('value', () => {
  // after the new document has been laid out, bring the highlight to the middle of the viewer
  requestAnimationFrame(() => setTimeout(() => {
    const mark = element.querySelector('mark.rag-hl');
    if (mark) mark.scrollIntoView({block: 'center', behavior: 'instant'});
  }, 30));
});
"""


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _meta(record: dict[str, Any] | None) -> str:
    if not record:
        return ""
    return " · ".join(esc(x) for x in (record.get("author"), record.get("date")) if x)


def render_answer(answer: Answer, turn: int, documents: dict[str, dict[str, Any]]) -> str:
    """The answer with clickable markers, then its sources; abstentions show what was considered instead."""
    text = re.sub(
        r"\[(\d+)\]", lambda m: f"<a class='cite' href='#cite-{turn}-{m.group(1)}'>[{m.group(1)}]</a>", esc(answer.text)
    ).replace("\n", "<br>")  # a list's items, one a line
    lead = esc(unmark(answer.span.quote).strip(" ,;:")) + LEAD_SEP if answer.span is not None else None
    if lead and text.startswith(lead):  # a short answer that leads (one that would echo its sentence does not)
        text = f"<b class='short-answer'>{lead[: -len(LEAD_SEP)]}</b>{LEAD_SEP}{text[len(lead) :]}"
    if answer.abstained:
        items = "".join(
            f"<li><a class='cite passage' href='#passage-{turn}-{i}'>{esc(p.title)}</a>"
            f"<span class='snippet'>{esc(' '.join(p.text.split())[:220])}…</span></li>"
            for i, p in enumerate(answer.passages[:3])
        )
        closest = (
            f"<div class='closest'><div class='closest-head'>Closest passages considered</div><ol>{items}</ol></div>"
            if items
            else ""
        )
        badge = "<div class='abstain-badge'>No answer in the documents</div>"
        why = "".join(f"<div class='notes'>{esc(n)}</div>" for n in answer.notes)  # e.g. "“he” names no one…"
        return f"<div class='answer abstained'>{badge}<p>{text}</p>{why}{closest}</div>"
    sources = []
    for n, c in enumerate(answer.citations, start=1):
        record = documents.get(c.source)
        meta = _meta(record)
        quote = esc(" ".join(c.quote.split()))  # a sentence its source wraps (a PDF's lines) reads as one line
        before = answer.citations[n - 2] if n > 1 else None
        if before is not None and (c.source, c.page, c.label) == (before.source, before.page, before.label):
            sources.append(  # its source named once (a list's items)
                f"<li class='same-source'><a class='cite source' href='#cite-{turn}-{n}'><b>[{n}]</b></a>"
                f"<blockquote>{quote}</blockquote></li>"
            )
            continue
        label = f"<span class='comment-label'>{esc(c.label)}</span>" if c.label else ""
        if c.page:
            meta = f"{meta + ' · ' if meta else ''}p. {c.page}"
        sources.append(
            f"<li><a class='cite source' href='#cite-{turn}-{n}'><b>[{n}]</b> {esc(c.title or c.source)}</a>"
            f"{' <span class=meta>' + meta + '</span>' if meta else ''}{label}"
            f"<blockquote>{quote}</blockquote></li>"
        )
    notes = "".join(f"<div class='notes'>{esc(n)}</div>" for n in answer.notes)  # how the question was read
    return f"<div class='answer'><p>{text}</p><ol class='sources'>{''.join(sources)}</ol>{notes}</div>"


def render_source(
    record: dict[str, Any] | None,
    source: str,
    text: str,
    start: int,
    end: int,
    note: str = "",
    inner: tuple[int, int] | None = None,
) -> str:
    """The whole document as text, the cited span marked; ``text[start:end]`` is exactly what is highlighted,
    and ``inner`` (the short answer, inside it) is marked again within it."""
    title = esc(record.get("display_title") if record else source)
    meta = _meta(record)
    where = f" · characters {start}–{end}" if end > start else ""
    inner = inner if inner is not None and start <= inner[0] < inner[1] <= end else None
    body, at = [], 0
    for a0, a1, b0, b1 in code_blocks(text):
        if start < a1 < end or start < b0 < end:  # a quote across a fence: the block is shown as written
            continue
        body += [_marked(text, at, a0, start, end, inner), f"<span class='fence'>{esc(text[a0:a1])}</span>"]
        body += [f"<code class='block'>{_marked(text, a1, b0, start, end, inner)}</code>"]
        body += [f"<span class='fence'>{esc(text[b0:b1])}</span>"]
        at = b1
    body.append(_marked(text, at, len(text), start, end, inner))
    parts = [
        "<div class='viewer'>",
        f"<div class='doc-head'><div class='doc-title'>{title}</div>",
        f"<div class='doc-meta'>{meta + ' · ' if meta else ''}<code>{esc(source)}</code>{where}</div>",
        f"<div class='doc-note'>{esc(note)}</div>" if note else "",
        "</div>",
        f"<div class='doc-text'>{''.join(body)}</div>",
        "</div>",
    ]
    return "".join(parts)


def code_blocks(text: str) -> list[tuple[int, int, int, int]]:
    """Each fenced code block of a Markdown document's text as (opening fence, code, closing fence, end):
    the viewer sets the code apart and hides the fences, which are markup, not what the document says."""
    lines = [(m.start(), text.find("\n", m.end()) + 1 or len(text)) for m in FENCE_RE.finditer(text)]
    return [(a0, a1, b0, b1) for (a0, a1), (b0, b1) in zip(lines[::2], lines[1::2], strict=False)]


def _marked(text: str, lo: int, hi: int, start: int, end: int, inner: tuple[int, int] | None) -> str:
    """``text[lo:hi]`` as HTML, with the part of the quote ``text[start:end]`` (and of the short answer
    ``inner``) that lies in it marked."""
    a, b = max(lo, start), min(hi, end)
    if a >= b:
        return esc(text[lo:hi])
    marked = esc(text[a:b])
    if inner is not None and a <= inner[0] < inner[1] <= b:
        marked = f"{esc(text[a : inner[0]])}<mark class='rag-span'>{esc(text[inner[0] : inner[1]])}</mark>"
        marked += esc(text[inner[1] : b])
    return f"{esc(text[lo:a])}<mark class='rag-hl'>{marked}</mark>{esc(text[b:hi])}"


def example_questions(pipeline: Any, n: int = 4) -> list[str]:
    """Questions drawn from the corpus itself: what it holds, the people it mentions most, and its
    documents' titles."""
    counts: Counter[str] = Counter()
    fullest: dict[str, str] = {}
    for chunk in pipeline.data.chunks:
        if chunk.kind == "body":
            for name in set(people(chunk.text)):
                surname = name.split()[-1]
                counts[surname] += 1
                plain = re.sub(r"^(?:Dr|Mr|Mrs|Ms|Prof|Professor|Sir|Dame)\.?\s+", "", name)
                if len(plain.split()) > len(fullest.get(surname, "").split()):
                    fullest[surname] = plain
    names = [fullest[s] for s, c in counts.most_common() if c >= 2 and len(fullest[s].split()) >= 2][:2]
    questions = ["What documents do you have?"] + [f"Who is {name}?" for name in names]
    titles = dict.fromkeys(
        d["title"] for d in pipeline.data.documents if d.get("title") and len(d["title"].split()) <= 9
    )
    questions += [f"What does “{title}” say?" for title in list(titles)[: n - len(questions)]]  # each title once
    return questions[:n]


def answerer_choices(config: Config) -> list[str]:
    """The generator is offered once an LLM is configured (a server URL, an API key, or a local model file)."""
    ready = bool(config.llm_base_url or config.llm_api_key or (config.generator == "local" and config.llm_model))
    return [name for name in ANSWERERS if name != "generator" or ready]


def render_corpus(pipeline: Any) -> str:
    """The indexed documents; a title opens the document in the viewer."""
    files = pipeline.data.manifest.get("files", {})
    rows = "".join(
        f"<tr><td><a class='cite doc' href='#doc-{doc_key(d['source'])}'>{esc(d.get('display_title'))}</a>"
        f"<div class='src'>{esc(d['source'])}</div></td><td>{esc(d.get('author') or '')}</td>"
        f"<td>{esc(d.get('date') or '')}</td><td class='num'>{files.get(d['source'], {}).get('chunks', 0)}</td></tr>"
        for d in pipeline.data.documents
    )
    total = sum(f.get("chunks", 0) for f in files.values())
    return (
        f"<div class='corpus-summary'>{len(pipeline.data.documents)} documents · {total} chunks</div>"
        "<table class='corpus'><thead><tr><th>Title</th><th>Author</th><th>Date</th><th>Chunks</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def locate(text: str, start: int, end: int, quote: str) -> tuple[int, int, str]:
    """Where to highlight: the recorded offsets when the text there is still the quote; else the quote's
    one other place in a changed document; else nothing, and a note that says why."""
    if quote and text[start:end] == quote:
        return start, end, ""
    at = text.find(quote) if quote else -1
    if at >= 0 and text.find(quote, at + 1) < 0:
        return at, at + len(quote), "The document changed after this answer; the quote was found at a new place."
    return 0, 0, "The document changed after this answer and no longer holds the quoted words."


def build(config: Config) -> gr.Blocks:
    sessions = Sessions()
    admission = threading.BoundedSemaphore(config.max_concurrent)

    def pipeline(progress: Any = None) -> Any:
        def report(stage: str, done: int, total: int) -> None:
            if progress is not None:
                progress((done, total), desc=stage)

        return get_pipeline(config, progress=report)

    def transcript(session: Session) -> list[dict[str, Any]]:
        with session.lock:
            return [{"role": m["role"], "content": m["content"]} for m in session.messages]

    def put(session: Session, rid: object, content: str) -> None:
        with session.lock:
            for m in session.messages:
                if m.get("rid") == rid and m["role"] == "assistant":
                    m["content"] = content

    def answer_once(session: Session, message: str, top_k: float, answerer: str, progress: Any = None):
        """Yield (draft html) while the answer is written, then (answer id, Answer, final html)."""
        with session.lock:
            rid, session.next_id = session.next_id, session.next_id + 1
            history = list(session.history)
        cfg = config.replace(top_k=int(top_k), answerer=answerer)
        check_names(cfg)
        p = pipeline(progress)
        answer, written = None, ""
        for item in p.stream(message, history, cfg):
            if isinstance(item, Answer):
                answer = item
                continue
            written += item
            yield f"<div class='answer drafting'><p>{esc(written)}</p><div class='checking'>writing…</div></div>"
        if answer is None:
            raise RagError("no answer was produced")
        span = answer.span
        entry = {
            "span": [[span.start, span.end, span.quote]] if span is not None else [],
            "citations": [[c.source, c.start, c.end, c.label or "", c.quote] for c in answer.citations],
            "passages": [[q.source, q.chunk.start, q.chunk.end, q.chunk.label or "", q.text] for q in answer.passages],
        }
        with session.lock:
            session.answers[rid] = entry
            while len(session.answers) > sessions.answers_per_session:
                session.answers.pop(next(iter(session.answers)))
            session.history.append((message, answer.text))
        yield rid, answer, render_answer(answer, rid, p.documents)

    def respond(
        message: str,
        top_k: float,
        answerer: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects the tracker through this default
    ):
        session = sessions.get(request.session_hash)
        message = (message or "").strip()
        if not message:
            yield gr.skip(), transcript(session)
            return
        if not admission.acquire(blocking=False):
            yield message, [*transcript(session), {"role": "assistant", "content": BUSY}]
            return
        try:
            with session.lock:
                mark = object()
                session.messages.append({"role": "user", "content": esc(message), "rid": mark})
                thinking = "<div class='thinking'>Searching the documents…</div>"
                session.messages.append({"role": "assistant", "content": thinking, "rid": mark})
            yield "", transcript(session)
            try:
                for item in answer_once(session, message, top_k, answerer, progress):
                    put(session, mark, item[2] if isinstance(item, tuple) else item)
                    yield "", transcript(session)
            except RagError as e:
                put(session, mark, f"<div class='error'>⚠ {esc(e)}</div>")
                yield "", transcript(session)
        finally:
            admission.release()

    def open_ref(request: gr.Request, evt: gr.EventData):
        data = getattr(evt, "_data", None)
        return open_view(data.get("ref") if isinstance(data, dict) else None, request)

    def open_view(ref: object, request: gr.Request):
        match = REF_RE.fullmatch(ref) if isinstance(ref, str) else None
        if not match:
            return gr.skip(), gr.skip()
        p = pipeline()
        session = sessions.get(request.session_hash)
        short = None
        if match.group(4) is not None:
            source = next((d["source"] for d in p.data.documents if doc_key(d["source"]) == match.group(4)), None)
            if source is None:
                return "<div class='error'>⚠ That document is no longer indexed.</div>", gr.Tabs(selected="source")
            start, end, label, quote = 0, 0, "", ""
        else:
            kind, rid, n = match.group(1), int(match.group(2)), int(match.group(3))
            with session.lock:
                entry = session.answers.get(rid)
            try:
                rows = entry["citations"] if kind == "cite" else entry["passages"]  # type: ignore[index]
                source, start, end, label, quote = rows[n - 1] if kind == "cite" else rows[n]
                short = entry["span"][0] if kind == "cite" and n == 1 and entry["span"] else None  # type: ignore[index]
            except (IndexError, KeyError, TypeError, ValueError):
                return gr.skip(), gr.skip()
        try:
            text = p.source_text(source)
        except OSError as e:
            return f"<div class='error'>⚠ {esc(source)} cannot be read: {esc(e)}</div>", gr.Tabs(selected="source")
        note, inner = label, None
        if quote:
            moved_from = start
            start, end, changed = locate(text, start, end, quote)
            note = " — ".join(x for x in (label, changed) if x)
            if short is not None and end > start:
                a, b = short[0] + start - moved_from, short[1] + start - moved_from
                inner = (a, b) if text[a:b] == short[2] else None
        html_ = render_source(p.documents.get(source), source, text, start, end, note, inner)
        return html_, gr.Tabs(selected="source")

    def upload(files: list[str] | None, progress: gr.Progress = gr.Progress()):  # noqa: B008
        if not files:
            return gr.skip(), gr.skip(), None
        if not admission.acquire(blocking=False):
            return "<div class='error'>⚠ The server is busy; add the files again in a moment.</div>", gr.skip(), None
        try:
            progress(0, desc="checking files")

            def report(stage: str, done: int, total: int) -> None:
                progress((done, total), desc=stage)

            try:
                result = add_files(config, [(Path(f), Path(f).name) for f in files], progress=report)
            except RagError as e:
                return f"<div class='error'>⚠ Nothing was added: {esc(e)}</div>", gr.skip(), None
        finally:
            admission.release()
        forget(config)
        lines = [f"<li class='ok'>Added <code>{esc(s)}</code></li>" for s in result.added]
        lines += [f"<li class='rejected'>Rejected: {esc(why)}</li>" for _, why in result.rejected]
        if result.report is not None:
            r = result.report
            lines.append(
                f"<li>{r.added} added, {r.updated} updated, {r.unchanged} unchanged; "
                f"{r.chunks_embedded} of {r.chunks} chunks embedded</li>"
            )
        return f"<ul class='upload-status'>{''.join(lines)}</ul>", render_corpus(pipeline()), None

    def pick_example(evt: gr.SelectData) -> str:
        value = evt.value
        return str(value[0] if isinstance(value, list) and value else value)

    def new_chat(request: gr.Request):
        sessions.drop(request.session_hash)
        return [], PLACEHOLDER, ""

    def api_ask(
        question: str, history: list[list[str]] | None = None, top_k: int = 5, answerer: str = "extractive"
    ) -> dict:
        """Answer one question; history is a list of [question, answer] pairs."""
        cfg = config.replace(top_k=int(top_k), answerer=answerer)
        check_names(cfg)
        if not admission.acquire(blocking=False):
            return {"busy": True, "text": "The server is busy; ask again in a moment.", "citations": []}
        try:
            answer = pipeline().ask(question, [tuple(t) for t in (history or [])], cfg)
        finally:
            admission.release()
        return {"busy": False, **_answer_dict(answer)}

    def api_chat(question: str, request: gr.Request, top_k: int = 5, answerer: str = "extractive") -> dict:
        """One turn of this session's conversation, as the chat box runs it: the reply carries the answer's
        id, and its citations open with /open (refs "#cite-ID-N")."""
        session = sessions.get(request.session_hash)
        if not admission.acquire(blocking=False):
            return {"busy": True, "text": "The server is busy; ask again in a moment.", "citations": []}
        try:
            *_, (rid, answer, _) = answer_once(session, question, top_k, answerer)
        finally:
            admission.release()
        return {"busy": False, "id": rid, **_answer_dict(answer)}

    def api_open(ref: str, request: gr.Request) -> str:
        """The source viewer's HTML for a citation of this session ("#cite-ID-N") or a document."""
        html_, _ = open_view(ref, request)
        return html_ if isinstance(html_, str) else ""

    p = pipeline()
    examples = example_questions(p)
    with gr.Blocks(title="Ask the documents") as demo:
        gr.HTML(
            "<div class='app-head'><h1>Ask the documents</h1>"
            "<p>Answers quote the documents word for word — click a citation to see it in place.</p></div>"
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    elem_id="chat",
                    height=560,
                    render_markdown=False,
                    sanitize_html=True,
                    placeholder="Ask anything the documents might answer — or try an example below.",
                    buttons=["copy"],
                    feedback_options=None,
                )
                with gr.Row():
                    box = gr.Textbox(
                        label="Question",
                        elem_id="question",
                        placeholder="Ask a question…",
                        scale=6,
                        autofocus=True,
                        max_lines=4,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                try_these = gr.Dataset(
                    components=[box], samples=[[q] for q in examples], label="Try", elem_id="examples"
                )
                clear = gr.Button("New chat", elem_id="new-chat", size="sm")
            with gr.Column(scale=2, min_width=360), gr.Tabs(selected="source", elem_id="side") as tabs:
                with gr.Tab("Source", id="source"):
                    viewer = gr.HTML(PLACEHOLDER, js_on_load=VIEWER_JS, elem_id="viewer")
                with gr.Tab("Documents", id="documents"):
                    table = gr.HTML(render_corpus(p), elem_id="corpus")
                    files = gr.File(
                        label=f"Add documents ({', '.join(ACCEPTED)}; up to {config.max_file_mb:g} MB each)",
                        file_count="multiple",
                        file_types=list(ACCEPTED),
                        elem_id="upload",
                    )
                    status = gr.HTML("", elem_id="upload-status")
                with gr.Tab("Settings", id="settings"):
                    top_k = gr.Slider(
                        1, 20, value=config.top_k, step=1, label="Passages to read (top-k)", elem_id="top-k"
                    )
                    answerer = gr.Radio(
                        answerer_choices(config), value=config.answerer, label="Answerer", elem_id="answerer"
                    )
        inputs = [box, top_k, answerer]
        outputs = [box, chatbot]
        box.submit(respond, inputs, outputs, api_name=False)
        send.click(respond, inputs, outputs, api_name=False)
        try_these.select(pick_example, None, box, api_name=False).then(respond, inputs, outputs, api_name=False)
        viewer.click(open_ref, None, [viewer, tabs], api_name=False)
        files.upload(upload, [files], [status, table, files], api_name=False)
        clear.click(new_chat, None, [chatbot, viewer, box], api_name=False)
        chatbot.clear(new_chat, None, [chatbot, viewer, box], api_name=False)
        demo.load(lambda: render_corpus(pipeline()), None, table, api_name=False)
        gr.api(api_ask, api_name="ask")
        gr.api(api_chat, api_name="chat")
        gr.api(api_open, api_name="open")
    return demo


def _answer_dict(answer: Answer) -> dict[str, Any]:
    span = answer.span
    return {
        "text": answer.text,
        "span": {"quote": span.quote, "start": span.start, "end": span.end} if span is not None else None,
        "abstained": answer.abstained,
        "citations": [
            {"source": c.source, "quote": c.quote, "start": c.start, "end": c.end, "title": c.title, "label": c.label}
            for c in answer.citations
        ],
    }


def launch(config: Config | None = None, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> gr.Blocks:
    config = config or load_config()
    get_pipeline(config)
    demo = build(config)
    # More workers than answer slots, so a request past the slots is told "busy" at once instead of
    # waiting in Gradio's queue; the queue itself is bounded too.
    demo.queue(default_concurrency_limit=config.max_concurrent * 4, max_size=config.max_concurrent * 32)
    demo.launch(server_name=host, server_port=port, css=CSS, prevent_thread_lock=not block, show_error=True)
    return demo
