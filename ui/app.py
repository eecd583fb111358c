"""The chat UI: a thin Gradio shell over ``rag.ask``."""

from __future__ import annotations

import html
import logging
from typing import Any

import gradio as gr

from rag import Answer, Config, ask, load_config
from rag.errors import RagError
from rag.pipeline import get_pipeline

log = logging.getLogger(__name__)


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def render(answer: Answer) -> str:
    """Answer text, then its numbered sources; all document text escaped, never interpreted."""
    parts = [f"<p>{_escape(answer.text)}</p>"]
    if answer.citations:
        items = []
        for n, c in enumerate(answer.citations, start=1):
            who = f" — {_escape(c.label)}" if c.label else ""
            items.append(f"<li><b>[{n}]</b> <i>{_escape(c.title or c.source)}</i>{who}<br>“{_escape(c.quote)}”</li>")
        parts.append("<ol class='sources'>" + "".join(items) + "</ol>")
    elif answer.abstained and answer.passages:
        closest = "".join(
            f"<li>{_escape(p.title)}: {_escape(' '.join(p.text.split())[:200])}…</li>" for p in answer.passages[:3]
        )
        parts.append(f"<details><summary>Closest passages considered</summary><ul>{closest}</ul></details>")
    return "".join(parts)


def build(config: Config) -> gr.Blocks:
    def respond(message: str, chat: list[dict[str, Any]], history: list[tuple[str, str]]):
        try:
            answer = ask(message, history=history, config=config)
        except RagError as e:
            chat = [
                *chat,
                {"role": "user", "content": _escape(message)},
                {"role": "assistant", "content": f"⚠️ {_escape(str(e))}"},
            ]
            return "", chat, history
        chat = [*chat, {"role": "user", "content": _escape(message)}, {"role": "assistant", "content": render(answer)}]
        return "", chat, [*history, (message, answer.text)]

    with gr.Blocks(title="Ask the documents") as demo:
        gr.Markdown("## Ask the documents\nEvery answer quotes its source exactly.")
        chatbot = gr.Chatbot(label="Conversation", height=520)
        history = gr.State([])
        box = gr.Textbox(label="Question", placeholder="Who chairs the NHS Alliance?")
        clear = gr.Button("New chat")
        box.submit(respond, [box, chatbot, history], [box, chatbot, history])
        clear.click(lambda: ([], []), None, [chatbot, history])
    return demo


def launch(config: Config | None = None, host: str = "127.0.0.1", port: int = 7860) -> None:
    config = config or load_config()
    get_pipeline(config)
    build(config).launch(server_name=host, server_port=port)
