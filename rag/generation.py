"""Language-model generators behind one small protocol: a stream of text pieces for a chat prompt.

``openai`` talks to any OpenAI-compatible chat-completions server (llama.cpp's server, vLLM,
Ollama, hosted APIs); ``local`` runs a GGUF file or a transformers model folder in-process on
the CPU. Every call has a timeout; transient failures (timeouts, refused connections, HTTP
429/5xx) are retried a bounded number of times, and only before any text has arrived.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from .config import Config
from .errors import ConfigError, RagError, UnknownNameError

log = logging.getLogger(__name__)

Message = dict[str, str]


class GenerationError(RagError):
    """The model could not produce an answer; the message says why and what to check."""


class Generator(Protocol):
    name: str

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        """Yield the reply in pieces as the model writes it; raise ``GenerationError`` on failure."""
        ...


class OpenAIGenerator:
    """Any server that speaks OpenAI's chat-completions protocol, streaming."""

    name = "openai"
    RETRIES = 2

    def __init__(self, config: Config) -> None:
        import openai

        if not config.llm_base_url and not (config.llm_api_key or os.environ.get("OPENAI_API_KEY")):
            raise ConfigError(
                "the openai generator needs RAG_LLM_BASE_URL (e.g. http://127.0.0.1:8080/v1 for llama.cpp's server) "
                "or an API key in RAG_LLM_API_KEY / OPENAI_API_KEY for OpenAI itself"
            )
        self.model = config.llm_model or "default"
        self.timeout = config.llm_timeout_s
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=config.llm_base_url or None,
            api_key=config.llm_api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
            timeout=config.llm_timeout_s,
            max_retries=0,
        )
        self._where = config.llm_base_url or "api.openai.com"

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        errors = self._openai
        transient = (
            errors.APITimeoutError,
            errors.APIConnectionError,
            errors.RateLimitError,
            errors.InternalServerError,
        )
        for attempt in range(self.RETRIES + 1):
            produced = False
            try:
                response = self._client.chat.completions.create(
                    model=self.model, messages=list(messages), max_tokens=max_tokens, temperature=0.0, stream=True
                )
                finished = False
                for event in response:
                    choices = getattr(event, "choices", None) or []
                    piece = choices[0].delta.content if choices and choices[0].delta else None
                    finished = finished or bool(choices and choices[0].finish_reason)
                    if piece:
                        produced = True
                        yield piece
                if not finished:
                    raise GenerationError(
                        f"the LLM server at {self._where} closed the stream before the answer was finished "
                        "(the stream was cut); the partial answer was discarded"
                    )
                return
            except transient as e:
                if produced or attempt == self.RETRIES:
                    raise GenerationError(self._describe(e, produced)) from None
                wait = 0.5 * 2**attempt
                log.warning("LLM call failed (%s); retrying in %.1f s", type(e).__name__, wait)
                time.sleep(wait)
            except errors.APIStatusError as e:
                raise GenerationError(self._describe(e, produced)) from None
            except (errors.APIError, ValueError, KeyError, AttributeError, TypeError) as e:
                raise GenerationError(
                    f"the LLM server at {self._where} sent a reply that could not be read ({type(e).__name__}: {e}); "
                    "check that it speaks the OpenAI chat-completions protocol"
                ) from None

    def _describe(self, e: Exception, produced: bool) -> str:
        errors = self._openai
        cut = " after it had started answering (the stream was cut)" if produced else ""
        if isinstance(e, errors.APITimeoutError):
            return (
                f"the LLM server at {self._where} did not answer within {self.timeout:g} s{cut}; "
                "raise RAG_LLM_TIMEOUT_S or use a smaller model"
            )
        if isinstance(e, errors.APIConnectionError):
            return (
                f"cannot reach the LLM server at {self._where}{cut} ({e}); "
                "check RAG_LLM_BASE_URL and that the server is running"
            )
        if isinstance(e, errors.APIStatusError):
            return (
                f"the LLM server at {self._where} answered HTTP {e.status_code}{cut}: "
                f"{str(e.message)[:200]}; check RAG_LLM_MODEL and RAG_LLM_API_KEY"
            )
        return f"the LLM call to {self._where} failed{cut}: {e}"


class LocalGenerator:
    """A GGUF file (llama.cpp when installed, else transformers) or a transformers model folder, in-process.

    The model is loaded once per process and file, whatever the settings of the generator that asked
    for it, and runs one answer at a time under the model's own lock.
    """

    name = "local"

    def __init__(self, config: Config) -> None:
        path = Path(config.llm_model or "").expanduser()
        if not config.llm_model or not path.exists():
            raise ConfigError(
                f"the local generator needs RAG_LLM_MODEL set to a GGUF file or a transformers model folder; "
                f"{config.llm_model or '(unset)'} does not exist. `make models` fetches SmolLM2-135M-Instruct "
                "into .cache/models/"
            )
        self.path = path
        self.timeout = config.llm_timeout_s
        self.model = _load_local(str(path.resolve()))

    def stream(self, messages: Sequence[Message], max_tokens: int) -> Iterator[str]:
        return self.model.stream(list(messages), max_tokens, self.timeout)


class LocalModel:
    """One loaded model and its lock. The model writes on a worker thread that holds the lock only
    while it writes; the reader waits for pieces with the time limit in hand, and the worker stops
    (freeing the model) at the time limit, or when the reader closes the stream or stops reading."""

    ABANDONED_S = 5.0  # a reader that takes no piece for this long has gone away

    def __init__(self, run: Callable[[list[Message], int], Iterator[str]], name: str) -> None:
        self.run = run
        self.name = name
        self.lock = threading.Lock()

    def stream(self, messages: list[Message], max_tokens: int, timeout: float) -> Iterator[str]:
        deadline = time.monotonic() + timeout
        if not self.lock.acquire(timeout=timeout):
            raise GenerationError(
                f"the local model {self.name} was busy with other answers for the whole {timeout:.0f} s time "
                "limit; try again, or raise RAG_LLM_TIMEOUT_S"
            )
        pieces: queue.Queue[str | BaseException] = queue.Queue(maxsize=8)
        stop, done = threading.Event(), threading.Event()
        worker = threading.Thread(
            target=self._write, args=(messages, max_tokens, deadline, pieces, stop, done), daemon=True, name="llm"
        )
        worker.start()  # from here on the worker owns the lock and releases it
        try:
            while True:
                left = deadline - time.monotonic()
                try:
                    item = pieces.get(timeout=max(0.0, min(0.2, left)))
                except queue.Empty:
                    if done.is_set() and pieces.empty():
                        return
                    if left <= 0:
                        log.warning("local model stopped at the %.0f s time limit", timeout)
                        return
                    continue
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    def _write(
        self,
        messages: list[Message],
        max_tokens: int,
        deadline: float,
        pieces: queue.Queue[str | BaseException],
        stop: threading.Event,
        done: threading.Event,
    ) -> None:
        try:
            for piece in self.run(messages, max_tokens):
                if stop.is_set() or time.monotonic() > deadline:
                    break
                try:
                    pieces.put(piece, timeout=self.ABANDONED_S)
                except queue.Full:
                    log.warning("a local-model stream was abandoned by its reader; the model is free again")
                    break
        except Exception as e:  # handed to the reader, who raises it
            with contextlib.suppress(queue.Full):
                pieces.put(GenerationError(f"the local model {self.name} failed: {e}"), timeout=1)
        finally:
            self.lock.release()
            done.set()


@functools.lru_cache(maxsize=2)
def _load_local(path: str) -> LocalModel:
    return LocalModel(_load_backend(path), Path(path).name)


def _load_backend(path: str) -> Callable[[list[Message], int], Iterator[str]]:
    threads = max(1, (os.cpu_count() or 2))
    if path.endswith(".gguf"):
        try:
            from llama_cpp import Llama
        except ImportError:
            return _transformers_backend(path, gguf=True)
        try:
            llm = Llama(model_path=path, n_ctx=4096, n_threads=threads, verbose=False)
        except (ValueError, RuntimeError) as e:
            raise GenerationError(f"llama.cpp could not load {path}: {e}") from None

        def run(messages: list[Message], max_tokens: int) -> Iterator[str]:
            for chunk in llm.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=0.0, stream=True
            ):
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

        atexit.register(llm.close)  # free the model before the interpreter tears llama.cpp's bindings down
        log.info("loaded %s with llama.cpp", path)
        return run
    return _transformers_backend(path, gguf=False)


def _transformers_backend(path: str, gguf: bool) -> Callable[[list[Message], int], Iterator[str]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

    where = (
        {"pretrained_model_name_or_path": str(Path(path).parent), "gguf_file": Path(path).name}
        if gguf
        else {"pretrained_model_name_or_path": path}
    )
    try:
        tokenizer = AutoTokenizer.from_pretrained(**where)
        model = AutoModelForCausalLM.from_pretrained(**where, torch_dtype=torch.float32).eval()
    except (OSError, ValueError, ImportError) as e:
        raise GenerationError(f"transformers could not load {path}: {e}") from None

    def run(messages: list[Message], max_tokens: int) -> Iterator[str]:
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        thread = threading.Thread(
            target=model.generate,
            kwargs={**inputs, "max_new_tokens": max_tokens, "do_sample": False, "streamer": streamer},
            daemon=True,
        )
        thread.start()
        yield from (piece for piece in streamer if piece)
        thread.join()

    log.info("loaded %s with transformers", path)
    return run


GENERATORS: dict[str, Callable[[Config], Generator]] = {"openai": OpenAIGenerator, "local": LocalGenerator}


@functools.lru_cache(maxsize=4)
def _cached(config: Config) -> Generator:
    return GENERATORS[config.generator](config)


def get_generator(config: Config) -> Generator:
    if config.generator not in GENERATORS:
        raise UnknownNameError("generator", config.generator, list(GENERATORS))
    return _cached(config)
