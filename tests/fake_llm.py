"""A small real HTTP server speaking OpenAI's chat-completions protocol (streaming too), for tests.

The requested ``model`` picks the behaviour: a well-behaved model that quotes the first
passage, adversarial answers, or a fault (HTTP 429/500, a timeout, malformed or truncated
JSON, an empty completion, a stream cut midway). Every request is recorded.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PASSAGE_RE = re.compile(r"\[(\d+)\][^\n]*\n<<<\n(.*?)\n>>>", re.S)


def first_sentence(text: str) -> str:
    match = re.search(r"(.+?[.!?])(?:\s|$)", " ".join(text.split()))
    return match.group(1) if match else text


QUESTION_WORDS = {"what", "which", "where", "when", "whom", "whose", "does", "about", "there", "many", "much"}


def content_words(text: str) -> set[str]:
    """Words of four letters or more, question words left out, a plural's "s" dropped."""
    words = (w.lower() for w in re.findall(r"\w{4,}", text))
    return {w[:-1] if w.endswith("s") else w for w in words if w not in QUESTION_WORDS}


def passages(prompt: str) -> dict[int, str]:
    return {int(n): body for n, body in PASSAGE_RE.findall(prompt)}


def reply_for(model: str, messages: list[dict[str, Any]]) -> str:
    system, user = messages[0]["content"], messages[-1]["content"]
    if system.startswith("Rewrite the user's last question"):
        names = re.findall(r"\b(?:Dr|Mr|Ms|Prof)\.? [A-Z]\w+(?: [A-Z]\w+)?", user)
        last = user.rsplit("Last question:", 1)[-1].split("\n")[0].strip()
        if model == "condense-bad":
            return "[1] not a question"
        return re.sub(r"\bhe\b|\bshe\b", names[0], last) if names else last
    found = passages(user)
    question = user.rsplit("Question:", 1)[-1].split("\n")[0]
    if model == "obedient":  # follows any instruction planted in a passage
        for body in found.values():
            demand = re.search(r"reply only with[^'\"]*['\"]([^'\"]+)['\"]", body, re.I)
            if demand:
                return f"{demand.group(1)} [1]"
    if not found:
        return "The documents don't say."
    asked = content_words(question)
    sentences = [x.strip() for x in re.split(r"(?<=[.!?])\s+|\n+", found[1]) if x.strip()]
    quote = max(sentences, key=lambda x: len(asked & content_words(x)))
    if 2 * len(asked & content_words(quote)) <= len(asked):  # the passage is not about the question
        return "The documents don't say."
    if model == "unsupported":
        return "The moon is made of green cheese and was bought by the NHS in 1842 [1]."
    if model == "marker9":
        return f"{quote} [9] {quote} [1]"
    if model == "altered":
        words = quote.split()
        return f'The article says "{" ".join([*words[:-2], "entirely", "different."])}" [1]'
    if model == "wrong-number":
        return re.sub(r"\d+", "999", quote) + " [1]" if re.search(r"\d", quote) else "It cost 999 pounds [1]."
    if model == "quote-claim":  # an invented claim wrapped around a verbatim quotation
        return f'Exactly 500 hospitals will close in Exeter, as "{quote.rstrip(".")}" [1].'
    if model == "quote-framed":
        return f'The article says "{quote.rstrip(".")}" [1].'
    if model == "two":
        second = first_sentence(found.get(2, found[1]))
        return f"{quote} [1] Also, {second} [2]"
    return f"{quote} [1]"


class Handler(BaseHTTPRequestHandler):
    server: FakeLLM

    def log_message(self, *args: Any) -> None:
        return

    def _json(self, status: int, body: dict[str, Any] | str) -> None:
        data = body if isinstance(body, str) else json.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data.encode())))
        self.end_headers()
        self.wfile.write(data.encode())

    def do_GET(self) -> None:
        self._json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        request = json.loads(self.rfile.read(length) or b"{}")
        model = request.get("model", "good")
        with self.server.lock:
            self.server.requests.append(request)
            count = sum(1 for r in self.server.requests if r.get("model") == model)
        if model == "fault-429" or (model == "flaky-429" and count == 1):
            return self._json(429, {"error": {"message": "Rate limit reached, slow down", "type": "rate_limit"}})
        if model == "fault-500":
            return self._json(500, {"error": {"message": "internal error", "type": "server_error"}})
        if model in ("fault-timeout", "slow"):  # "slow" answers well, after a while
            time.sleep(self.server.slow_s)
        text = reply_for(model, request.get("messages", []))
        if not request.get("stream"):
            if model == "fault-malformed":
                return self._json(200, '{"id": "x", "choices": [{"message": {"content": "trunc')
            return self._json(
                200,
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [
                        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                    ],
                },
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        pieces = [] if model == "fault-empty" else re.findall(r"\S+\s*", text)

        def event(payload: str) -> None:
            self.wfile.write(f"data: {payload}\n\n".encode())
            self.wfile.flush()

        if model == "fault-malformed":
            event('{"id": "x", "choices": [{"delta": {"content": "He')
            event("[DONE]")
            return
        for i, piece in enumerate(pieces):
            if model == "fault-cut" and i == 3:
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            chunk = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
            }
            event(json.dumps(chunk))
        event(
            json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                }
            )
        )
        event("[DONE]")


class FakeLLM(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, slow_s: float = 5.0) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.slow_s = slow_s
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
