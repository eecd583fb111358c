"""The chat UI: a thin Gradio shell over the ``rag`` library.

Every piece of document text and every question is HTML-escaped before it reaches the
page; citations are referred to by (turn, number) and resolved on the server from the
session's own answers, so the browser never names a file to open.
"""

from __future__ import annotations

import html
import logging
import re
from collections import Counter
from pathlib import Path
from typing import Any

import gradio as gr

from rag import Answer, Config, load_config
from rag.answering import ANSWERERS
from rag.conversation import people
from rag.errors import RagError
from rag.pipeline import check_names, forget, get_pipeline
from rag.uploads import ACCEPTED, add_files

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent
CSS = (ROOT / "style.css").read_text(encoding="utf-8")
PLACEHOLDER = (
    "<div class='viewer-empty'>Click a citation — a marker like [1] or a source below an answer — "
    "to read it in its document, highlighted.</div>"
)
REF_RE = re.compile(r"#(cite|passage)-(\d+)-(\d+)|#doc-(\d+)")

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
    )
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
        return f"<div class='answer abstained'>{badge}<p>{text}</p>{closest}</div>"
    sources = []
    for n, c in enumerate(answer.citations, start=1):
        record = documents.get(c.source)
        meta = _meta(record)
        label = f"<span class='comment-label'>{esc(c.label)}</span>" if c.label else ""
        if c.page:
            meta = f"{meta + ' · ' if meta else ''}p. {c.page}"
        sources.append(
            f"<li><a class='cite source' href='#cite-{turn}-{n}'><b>[{n}]</b> {esc(c.title or c.source)}</a>"
            f"{' <span class=meta>' + meta + '</span>' if meta else ''}{label}"
            f"<blockquote>{esc(c.quote)}</blockquote></li>"
        )
    notes = "".join(f"<div class='notes'>{esc(n)}</div>" for n in answer.notes if "fallback" in answer.answerer)
    return f"<div class='answer'><p>{text}</p><ol class='sources'>{''.join(sources)}</ol>{notes}</div>"


def render_source(record: dict[str, Any] | None, source: str, text: str, start: int, end: int, note: str = "") -> str:
    """The whole document as text, the cited span marked; ``text[start:end]`` is exactly what is highlighted."""
    title = esc(record.get("display_title") if record else source)
    meta = _meta(record)
    where = f" · characters {start}–{end}" if end > start else ""
    body = (
        f"{esc(text[:start])}<mark class='rag-hl'>{esc(text[start:end])}</mark>{esc(text[end:])}"
        if end > start
        else esc(text)
    )
    parts = [
        "<div class='viewer'>",
        f"<div class='doc-head'><div class='doc-title'>{title}</div>",
        f"<div class='doc-meta'>{meta + ' · ' if meta else ''}<code>{esc(source)}</code>{where}</div>",
        f"<div class='doc-note'>{esc(note)}</div>" if note else "",
        "</div>",
        f"<div class='doc-text'>{body}</div>",
        "</div>",
    ]
    return "".join(parts)


def example_questions(pipeline: Any, n: int = 4) -> list[str]:
    """Questions drawn from the corpus itself: the people it mentions most, and its documents' titles."""
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
    questions = [f"Who is {name}?" for name in names]
    titled = [d for d in pipeline.data.documents if d.get("title") and len(d["title"].split()) <= 9]
    questions += [f"What does “{d['title']}” say?" for d in titled[: n - len(questions)]]
    return questions[:n]


def answerer_choices(config: Config) -> list[str]:
    """The generator is offered once an LLM is configured (a server URL, an API key, or a local model file)."""
    ready = bool(config.llm_base_url or config.llm_api_key or (config.generator == "local" and config.llm_model))
    return [name for name in ANSWERERS if name != "generator" or ready]


def render_corpus(pipeline: Any) -> str:
    """The indexed documents; a title opens the document in the viewer."""
    files = pipeline.data.manifest.get("files", {})
    rows = "".join(
        f"<tr><td><a class='cite doc' href='#doc-{i}'>{esc(d.get('display_title'))}</a>"
        f"<div class='src'>{esc(d['source'])}</div></td><td>{esc(d.get('author') or '')}</td>"
        f"<td>{esc(d.get('date') or '')}</td><td class='num'>{files.get(d['source'], {}).get('chunks', 0)}</td></tr>"
        for i, d in enumerate(pipeline.data.documents)
    )
    total = sum(f.get("chunks", 0) for f in files.values())
    return (
        f"<div class='corpus-summary'>{len(pipeline.data.documents)} documents · {total} chunks</div>"
        "<table class='corpus'><thead><tr><th>Title</th><th>Author</th><th>Date</th><th>Chunks</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def build(config: Config) -> gr.Blocks:
    def pipeline(progress: Any = None) -> Any:
        def report(stage: str, done: int, total: int) -> None:
            if progress is not None:
                progress((done, total), desc=stage)

        return get_pipeline(config, progress=report)

    def respond(
        message: str,
        chat: list,
        history: list,
        answers: list,
        top_k: float,
        answerer: str,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 - Gradio injects the tracker through this default
    ):
        message = (message or "").strip()
        if not message:
            yield gr.skip(), chat, history, answers
            return
        chat = [*chat, {"role": "user", "content": esc(message)}]
        yield (
            "",
            [*chat, {"role": "assistant", "content": "<div class='thinking'>Searching the documents…</div>"}],
            history,
            answers,
        )
        try:
            cfg = config.replace(top_k=int(top_k), answerer=answerer)
            check_names(cfg)
            p = pipeline(progress)
            answer, written = None, ""
            for item in p.stream(message, history, cfg):
                if isinstance(item, Answer):
                    answer = item
                    continue
                written += item
                draft = f"<div class='answer drafting'><p>{esc(written)}</p><div class='checking'>writing…</div></div>"
                yield "", [*chat, {"role": "assistant", "content": draft}], history, answers
            if answer is None:
                raise RagError("no answer was produced")
        except RagError as e:
            yield (
                "",
                [*chat, {"role": "assistant", "content": f"<div class='error'>⚠ {esc(e)}</div>"}],
                history,
                answers,
            )
            return
        turn = len(answers)
        entry = {
            "citations": [[c.source, c.start, c.end, c.label or ""] for c in answer.citations],
            "passages": [[q.source, q.chunk.start, q.chunk.end, q.chunk.label or ""] for q in answer.passages],
        }
        content = render_answer(answer, turn, p.documents)
        yield (
            "",
            [*chat, {"role": "assistant", "content": content}],
            [*history, (message, answer.text)],
            [*answers, entry],
        )

    def open_ref(answers: list, evt: gr.EventData):
        data = getattr(evt, "_data", None)
        ref = data.get("ref") if isinstance(data, dict) else None
        match = REF_RE.fullmatch(ref) if isinstance(ref, str) else None
        if not match:
            return gr.skip(), gr.skip()
        p = pipeline()
        try:
            if match.group(4) is not None:
                source, start, end, label = p.data.documents[int(match.group(4))]["source"], 0, 0, ""
            else:
                kind, turn, n = match.group(1), int(match.group(2)), int(match.group(3))
                entry = answers[turn]["citations"][n - 1] if kind == "cite" else answers[turn]["passages"][n]
                source, start, end, label = entry
        except (IndexError, KeyError, TypeError, ValueError):
            return gr.skip(), gr.skip()
        try:
            text = p.source_text(source)
        except OSError as e:
            return f"<div class='error'>⚠ {esc(source)} cannot be read: {esc(e)}</div>", gr.Tabs(selected="source")
        return render_source(p.documents.get(source), source, text, start, end, label), gr.Tabs(selected="source")

    def upload(files: list[str] | None, progress: gr.Progress = gr.Progress()):  # noqa: B008
        if not files:
            return gr.skip(), gr.skip(), None
        progress(0, desc="checking files")

        def report(stage: str, done: int, total: int) -> None:
            progress((done, total), desc=stage)

        try:
            result = add_files(config, [(Path(f), Path(f).name) for f in files], progress=report)
        except RagError as e:
            return f"<div class='error'>⚠ Nothing was added: {esc(e)}</div>", gr.skip(), None
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

    def new_chat():
        return [], [], [], PLACEHOLDER, ""

    def api_ask(
        question: str, history: list[list[str]] | None = None, top_k: int = 5, answerer: str = "extractive"
    ) -> dict:
        """Answer one question; history is a list of [question, answer] pairs."""
        cfg = config.replace(top_k=int(top_k), answerer=answerer)
        check_names(cfg)
        answer = pipeline().ask(question, [tuple(t) for t in (history or [])], cfg)
        return {
            "text": answer.text,
            "abstained": answer.abstained,
            "citations": [
                {
                    "source": c.source,
                    "quote": c.quote,
                    "start": c.start,
                    "end": c.end,
                    "title": c.title,
                    "label": c.label,
                }
                for c in answer.citations
            ],
        }

    p = pipeline()
    examples = example_questions(p)
    with gr.Blocks(title="Ask the documents") as demo:
        history, answers = gr.State([]), gr.State([])
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
        inputs = [box, chatbot, history, answers, top_k, answerer]
        outputs = [box, chatbot, history, answers]
        box.submit(respond, inputs, outputs, api_name=False)
        send.click(respond, inputs, outputs, api_name=False)
        try_these.click(pick_example, None, box, api_name=False).then(respond, inputs, outputs, api_name=False)
        viewer.click(open_ref, [answers], [viewer, tabs], api_name=False)
        files.upload(upload, [files], [status, table, files], api_name=False)
        clear.click(new_chat, None, [chatbot, history, answers, viewer, box], api_name=False)
        demo.load(lambda: render_corpus(pipeline()), None, table, api_name=False)
        gr.api(api_ask, api_name="ask")
    return demo


def launch(config: Config | None = None, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> gr.Blocks:
    config = config or load_config()
    get_pipeline(config)
    demo = build(config)
    demo.queue(default_concurrency_limit=8)
    demo.launch(server_name=host, server_port=port, css=CSS, prevent_thread_lock=not block, show_error=True)
    return demo
