"""Load test: N concurrent chats driven through the running app's API with gradio_client.

Starts the real app on a free loopback port (index of seeds/ in a temporary folder, or
--url for an app you already run), then for N = 1, 4, 16 runs N chats at once, each a
question and two follow-ups sent with its own history, and prints p50/p95 latency per
request and the error count.

    python eval/load_ui.py [--levels 1 4 16] [--url http://127.0.0.1:7860]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHATS = [
    ["Who chairs the NHS Alliance?", "Where does he work as a GP?", "What does he fear?"],
    ["How many PCTs did Pulse approach?", "How many of them gave details?", "Which law did it use?"],
    ["Who is Michelle Drage?", "What did she say about polysystems?", "What is her organisation planning?"],
    ["What is the capital of Australia?", "And of France?", "Who wrote that?"],
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chat(url: str, turns: list[str]) -> list[tuple[float, bool]]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    history: list[list[str]] = []
    out = []
    for question in turns:
        started = time.perf_counter()
        try:
            answer = client.predict(question, history, 5, "extractive", api_name="/ask")
            ok = isinstance(answer, dict) and "text" in answer
            history.append([question, answer["text"]])
        except Exception:
            ok = False
        out.append((time.perf_counter() - started, ok))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--url")
    args = ap.parse_args()
    demo = None
    url = args.url
    if url is None:
        from rag import load_config
        from ui.app import launch

        port = free_port()
        config = load_config(env={}, corpus=str(ROOT / "seeds"), index_dir=tempfile.mkdtemp(prefix="rag-load-"))
        demo = launch(config, port=port, block=False)
        url = f"http://127.0.0.1:{port}"
    chat(url, CHATS[0])  # warm-up
    print(f"{'chats':>6}{'requests':>10}{'p50 ms':>10}{'p95 ms':>10}{'errors':>8}{'wall s':>8}")
    for n in args.levels:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=n) as pool:
            results = [r for rs in pool.map(lambda i: chat(url, CHATS[i % len(CHATS)]), range(n)) for r in rs]
        wall = time.perf_counter() - started
        ms = np.array([t * 1000 for t, _ in results])
        errors = sum(1 for _, ok in results if not ok)
        p50, p95 = np.percentile(ms, 50), np.percentile(ms, 95)
        print(f"{n:>6}{len(results):>10}{p50:>10.0f}{p95:>10.0f}{errors:>8}{wall:>8.1f}")
    if demo is not None:
        demo.close()


if __name__ == "__main__":
    main()
