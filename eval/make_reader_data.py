"""Write (question, sentence, label) pairs for training the answer-sentence reader.

Pairs come from the ``tune`` articles of squad_v2_dev25 only: every sentence of the
passages our retrieval returns for a question (top 8), labelled 1 when it holds a gold
answer span. The gold sentence is added when retrieval missed it, and for unanswerable
questions the sentence holding the crowd worker's tempting wrong answer is added as a
hard negative. Each pair carries its article, so training can hold articles out.

    python eval/make_reader_data.py [--dataset ../shared/data/squad_v2_dev25] [--out .cache/reader/pairs.jsonl.gz]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import evaluation  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.pipeline import get_pipeline  # noqa: E402

DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "squad_v2_dev25"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(DEFAULT_DATASET))
    ap.add_argument("--out", default=str(ROOT / ".cache" / "reader" / "pairs.jsonl.gz"))
    ap.add_argument("--top-k", type=int, default=8)
    args = ap.parse_args()
    started = time.time()
    directory = Path(args.dataset).resolve()
    split = {d: n for n, docs in json.loads((directory / "split.json").read_text()).items() for d in docs}
    rows = [json.loads(line) for line in (directory / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    plausible = {
        r["id"]: [(p["answer_start"], p["answer_start"] + len(p["text"])) for p in r.get("plausible_answers") or []]
        for r in rows
    }
    items = [i for i in evaluation.load_dataset(directory, split) if i.split == "tune"]
    config = load_config(
        corpus=str(directory / "documents"), index_dir=str(ROOT / ".cache" / "eval" / directory.name), top_k=args.top_k
    )
    pipeline = get_pipeline(config)
    data = pipeline.data
    doc_index = {d["source"]: i for i, d in enumerate(data.documents)}
    texts = {d["source"]: pipeline.source_text(d["source"]) for d in data.documents}

    def sentence_at(source: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
        d = doc_index.get(source)
        if d is None:
            return []
        rows_ = data.sentence_spans[data.sentence_spans[:, 0] == d]
        return [(int(a), int(b)) for _, a, b in rows_ if any(a <= s < b for s, _ in spans)]

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n_pairs = 0
    with gzip.open(out, "wt", encoding="utf-8") as f:
        for item in items:
            query, _ = pipeline.query(item.question)
            passages = pipeline.retriever.search(query, config)
            seen: set[tuple[str, int, int]] = set()
            cands = []
            for p in passages:
                for a, b in p.chunk.sentences:
                    if (p.source, a, b) not in seen:
                        seen.add((p.source, a, b))
                        cands.append((p.source, a, b))
            gold_source = evaluation._display(item.source) if item.source else None
            article = evaluation._display(str(directory / "documents" / item.article)) if item.article else None
            extra = sentence_at(gold_source, list(item.spans)) if gold_source else []
            extra_neg = sentence_at(article, plausible.get(item.id, [])) if not item.answerable and article else []
            for a, b in extra + extra_neg:
                source = gold_source if (a, b) in extra else article
                if (source, a, b) not in seen:
                    seen.add((source, a, b))
                    cands.append((source, a, b))
            for source, a, b in cands:
                text = texts[source][a:b]
                label = int(item.answerable and source == gold_source and any(a <= s and e <= b for s, e in item.spans))
                f.write(
                    json.dumps(
                        {
                            "qid": item.id,
                            "article": item.article,
                            "question": item.question,
                            "sentence": text,
                            "label": label,
                            "answerable": item.answerable,
                        }
                    )
                    + "\n"
                )
                n_pairs += 1
    print(f"wrote {n_pairs} pairs for {len(items)} questions to {out} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
