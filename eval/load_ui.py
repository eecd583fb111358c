"""Mixed load on the running app: N concurrent sessions, each chatting as a user does.

Starts the real app on a free loopback port (index of seeds/ in a temporary folder), then for
each N (default 1, 16, 64) runs N sessions at once through the app's session API with
gradio_client. Each session asks a question, asks a follow-up in the same conversation, and
opens every citation it got in the source viewer, checking in the served HTML that the
highlighted text is exactly the source's slice; every fourth session also uploads a file
(the upload handler's own call: add the file under the index lock, reload the pipeline).
A "busy" reply (past the app's max_concurrent) is counted, waited out briefly and retried, as a
user would; it is not an error. Prints p50/p95 per action, errors, wrong highlights, busy
replies and resident memory.

    python eval/load_ui.py [--levels 1 16 64] [--max-concurrent 8]
"""

from __future__ import annotations

import argparse
import html
import re
import resource
import socket
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHATS = [
    ["Who chairs the NHS Alliance?", "Where does he work as a GP?"],
    ["How many PCTs did Pulse approach?", "How many of them gave details?"],
    ["Who is Michelle Drage?", "What did she say about polysystems?"],
    ["What is the capital of Australia?", "And of France?"],
]
MARK_RE = re.compile(r"<mark class='rag-hl'>(.*?)</mark>", re.S)
SPAN_RE = re.compile(r"<mark class='rag-span'>(.*?)</mark>", re.S)  # the short answer, marked inside the quote
META_RE = re.compile(r"<code>(.*?)</code> · characters (\d+)–(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb() -> tuple[float, float]:
    """Resident memory now and at its peak, in MB."""
    now = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            now = int(line.split()[1]) / 1024
    return now, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.wrong = 0
        self.busy = 0

    def add(self, action: str, seconds: float) -> None:
        with self.lock:
            self.times[action].append(seconds * 1000)


def session(url: str, n: int, tally: Tally, texts: dict[str, str], config: object) -> None:
    from gradio_client import Client

    from rag.pipeline import forget
    from rag.uploads import add_files

    client = Client(url, verbose=False)
    for action, question in zip(("ask", "follow-up"), CHATS[n % len(CHATS)], strict=True):
        for _ in range(40):
            started = time.perf_counter()
            try:
                reply = client.predict(question, 5, "extractive", api_name="/chat")
            except Exception as e:
                with tally.lock:
                    tally.errors.append(f"{action}: {type(e).__name__}: {e}")
                return
            if not reply.get("busy"):
                tally.add(action, time.perf_counter() - started)
                break
            with tally.lock:
                tally.busy += 1
            time.sleep(0.25)
        else:
            with tally.lock:
                tally.errors.append(f"{action}: busy 40 times in a row")
            return
        for i, c in enumerate(reply["citations"], start=1):
            started = time.perf_counter()
            shown = SPAN_RE.sub(r"\1", client.predict(f"#cite-{reply['id']}-{i}", api_name="/open"))
            tally.add("open citation", time.perf_counter() - started)
            mark, meta = MARK_RE.search(shown), META_RE.search(shown)
            ok = bool(mark and meta)
            if ok:
                source, start, end = html.unescape(meta.group(1)), int(meta.group(2)), int(meta.group(3))
                text = texts.setdefault(source, Path(source).read_text(encoding="utf-8"))
                ok = html.unescape(mark.group(1)) == text[start:end] == c["quote"]
            if not ok:
                with tally.lock:
                    tally.wrong += 1
    if n % 4 == 3:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "upload.txt"
            path.write_text(f"Load note {n}: the ferry to Hoy left at {n % 12 + 1} o'clock.\n", encoding="utf-8")
            started = time.perf_counter()
            try:
                add_files(config, [(path, f"load-note-{n}.txt")])  # type: ignore[arg-type]
                forget(config)  # type: ignore[arg-type]
                tally.add("upload", time.perf_counter() - started)
            except Exception as e:
                with tally.lock:
                    tally.errors.append(f"upload: {type(e).__name__}: {e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--max-concurrent", type=int, default=8)
    args = ap.parse_args()
    from rag import load_config
    from ui.app import launch

    corpus = Path(tempfile.mkdtemp(prefix="rag-load-corpus-"))
    for path in (ROOT / "seeds").iterdir():
        (corpus / path.name).write_bytes(path.read_bytes())
    config = load_config(
        env={},
        corpus=str(corpus),
        index_dir=tempfile.mkdtemp(prefix="rag-load-"),
        max_concurrent=args.max_concurrent,
    )
    port = free_port()
    demo = launch(config, port=port, block=False)
    url = f"http://127.0.0.1:{port}"
    texts: dict[str, str] = {}
    session(url, 0, Tally(), texts, config)  # warm-up
    print(f"max_concurrent={args.max_concurrent}; {Path('/proc/cpuinfo').read_text().count('processor')} CPUs\n")
    print(f"{'sessions':>8}  {'action':<14}{'n':>6}{'p50 ms':>9}{'p95 ms':>9}")
    summary = []
    for n in args.levels:
        tally = Tally()
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool:
            list(pool.map(lambda i, t=tally: session(url, i, t, {}, config), range(n)))
        wall = time.perf_counter() - started
        for action in ("ask", "follow-up", "open citation", "upload"):
            ms = tally.times.get(action)
            if ms:
                p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
                print(f"{n:>8}  {action:<14}{len(ms):>6}{p50:>9.0f}{p95:>9.0f}")
        now, peak = rss_mb()
        summary.append((n, len(tally.errors), tally.wrong, tally.busy, wall, now, peak))
        for e in tally.errors[:5]:
            print(f"          error: {e}")
    print(f"\n{'sessions':>8}{'errors':>8}{'wrong hl':>10}{'busy':>7}{'wall s':>8}{'RSS MB':>8}{'peak MB':>9}")
    for n, errors, wrong, busy, wall, now, peak in summary:
        print(f"{n:>8}{errors:>8}{wrong:>10}{busy:>7}{wall:>8.1f}{now:>8.0f}{peak:>9.0f}")
    demo.close()


if __name__ == "__main__":
    main()
