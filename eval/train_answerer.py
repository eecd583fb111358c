"""Learn the extractive answerer's small models from data and write ``rag/models/extractive.json``.

Data: the ``tune`` articles of squad_v2_dev25 (whose unanswerable questions were written to
look answerable) that the span reader did not learn from (a reader trained with ``--squad2`` learnt
from every other one), and the ``dev`` split of our gold set over ``seeds/``; ``test`` splits are
never read here.

1. The sentence selector, a logistic regression over (question, sentence) evidence features,
   is fitted on the tune articles plus gold dev.
2. The span reader (trained on SQuAD 1.1 train, so it never saw these articles) reads each
   question's leading candidates as the answerer does; a reranker (selector logit + reader
   margin) and the answerability model (evidence of the best candidate, labelled by whether
   that candidate is right) are fitted on the same questions. A leave-one-source-out run (each
   tune article, and each seed article's gold dev questions, the unanswerable ones as one more
   source) scores every question with models not fitted on its source; the abstention threshold
   is the one that maximises end-to-end accuracy on those held-out scores, averaged over the two
   sources so that the small gold set counts as much as SQuAD (one threshold for news and
   Wikipedia alike), among thresholds that keep gold abstention recall at its floor. Read
   in-sample instead, the gold set looks surer than it is and the threshold comes out too low.

    python eval/train_answerer.py --reader rag/models/reader --limit 1200 --gold-share 0.25 --reader-candidates 3 \
        --reader-spill 0 --gold-ids-from rag/models/extractive.json   # what ships (README)
    python eval/train_answerer.py --threshold-from in-sample --out rag/models/extractive-noreader.json

Without the reader no threshold keeps held-out gold abstention at its floor short of abstaining on
nearly everything (0.89: SQuAD abstention recall 1.0), so the no-reader fallback keeps the in-sample one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "eval"))

from train_reader import trained_on  # noqa: E402

from rag import answering, conversation, evaluation, evidence, spans  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.pipeline import get_pipeline  # noqa: E402
from rag.reader import Reader  # noqa: E402

DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "squad_v2_dev25"
READER_CANDIDATES = 5
GOLD_SHARE = 0.25  # gold dev's share of the answerability fit (README: The span reader)
ABSTAIN_RECALL_FLOOR = json.loads((ROOT / "eval" / "floors.json").read_text())["dev"]["abstain_recall"]


def dataset_config(directory: Path):
    return load_config(corpus=str(directory / "documents"), index_dir=str(ROOT / ".cache" / "eval" / directory.name))


def collect(items, config, group_of):
    """Candidates with features and labels, one record per question."""
    pipeline = get_pipeline(config)
    records = []
    for item in items:
        turn = conversation.rewrite(item.question, list(item.history))
        query, _ = pipeline.query(turn.standalone)
        passages = pipeline.retriever.search(query, config)
        cands = evidence.candidates(query, passages, pipeline.data, pipeline.retriever, query.text)
        labels = [label(item, c) for c in cands]
        records.append(
            {
                "item": item,
                "query": query.text,
                "passages": passages,
                "cands": cands,
                "labels": labels,
                "group": group_of(item),
            }
        )
    return records


def label(item, c: evidence.Candidate) -> int:
    """Whether quoting this candidate's sentence answers the question."""
    source = evaluation.gold_source(item.source) if item.source else None
    return int(
        item.answerable
        and c.passage.source == source
        and any(c.start < b and a < c.end for a, b in item.spans)
        and evaluation.contains(c.text, item.answers) > 0
    )


def fit(X: np.ndarray, y: np.ndarray, names: tuple[str, ...], weights=None) -> answering.LogisticModel:
    model = LogisticRegression(C=1.0, max_iter=5000)
    model.fit(X, y, sample_weight=weights)
    return answering.LogisticModel(names, tuple(model.coef_[0].tolist()), float(model.intercept_[0]))


def fit_select(records) -> answering.LogisticModel:
    usable = [r for r in records if any(r["labels"])]
    X = np.asarray([[c.features[n] for n in evidence.SENTENCE_FEATURES] for r in usable for c in r["cands"]])
    y = np.asarray([label for r in usable for label in r["labels"]])
    return fit(X, y, evidence.SENTENCE_FEATURES)


def read(records, select, reader: Reader | None, k: int = READER_CANDIDATES, spill: float | None = None) -> None:
    """Order by the selector, then let the reader (if any) score the leaders (in place); a leader the
    reader answered from a neighbour (``spill``) is that neighbour now, and is labelled as such."""
    for r in records:
        for c in r["cands"]:
            c.features["select_logit"] = select.logit(c.features)
        order = sorted(
            range(len(r["cands"])),
            key=lambda i: (-r["cands"][i].features["select_logit"], r["cands"][i].passage.rank, r["cands"][i].start),
        )
        r["cands"] = [r["cands"][i] for i in order]
        r["labels"] = [r["labels"][i] for i in order]
        leaders = r["cands"][:k]
        if reader is None:
            for c in leaders:
                c.features["reader"] = 0.0
        else:
            r["cands"][: len(leaders)] = spans.read(reader, r["query"], leaders, spill)
            r["labels"][: len(leaders)] = [label(r["item"], c) for c in r["cands"][: len(leaders)]]


def fit_rerank(records, k: int = READER_CANDIDATES) -> answering.LogisticModel:
    usable = [r for r in records if any(r["labels"][:k])]
    X = np.asarray([[c.features[n] for n in answering.RERANK_FEATURES] for r in usable for c in r["cands"][:k]])
    y = np.asarray([label for r in usable for label in r["labels"][:k]])
    return fit(X, y, answering.RERANK_FEATURES)


def question_rows(records, rerank, k: int = READER_CANDIDATES):
    """Per question: answerability features of the best candidate, whether it is right, the item, its source."""
    rows = []
    for r in records:
        if not r["cands"]:
            continue
        leaders = r["cands"][:k]
        scored = sorted(range(len(leaders)), key=lambda i: -rerank.logit(leaders[i].features))
        ranked = [leaders[i] for i in scored] + r["cands"][k:]
        top_label = r["labels"][scored[0]]
        rows.append((evidence.answerable_features(ranked, r["passages"]), top_label, r["item"], r["group"]))
    return rows


def fit_answerable(rows, gold_share: float | None = GOLD_SHARE) -> answering.LogisticModel:
    """News gets ``gold_share`` of the total weight (None: one question, one vote), so that one
    probability can mean the same on both corpora without overfitting the small gold set."""
    X = np.asarray([[f[n] for n in evidence.ANSWERABLE_FEATURES] for f, *_ in rows])
    y = np.asarray([label for _, label, *_ in rows])
    gold = np.asarray([is_gold(group) for *_, group in rows])
    if gold_share is None or not gold.any() or gold.all():
        return fit(X, y, evidence.ANSWERABLE_FEATURES)
    weights = np.where(gold, gold_share / gold.sum(), (1 - gold_share) / (~gold).sum()) * len(rows)
    return fit(X, y, evidence.ANSWERABLE_FEATURES, weights)


def probabilities(rows, model):
    """(probability of a right answer, whether the top candidate is right, whether the question is answerable)."""
    return [
        (1 / (1 + np.exp(-model.logit(feats))), bool(top_right), item.answerable) for feats, top_right, item, _ in rows
    ]


def decide(scored, threshold):
    out = []
    for p, top_right, answerable in scored:
        abstain = p < threshold
        correct = abstain if not answerable else (not abstain and top_right)
        out.append((correct, abstain, answerable))
    return out


def outcomes(rows, model, threshold):
    return decide(probabilities(rows, model), threshold)


def summary(outs) -> dict:
    outs = list(outs)
    abstained = [o for o in outs if o[1]]
    unanswerable = [o for o in outs if not o[2]]
    true_abstain = sum(1 for o in abstained if not o[2])
    return {
        "n": len(outs),
        "accuracy": float(np.mean([o[0] for o in outs])),
        "abstain_precision": true_abstain / len(abstained) if abstained else float("nan"),
        "abstain_recall": true_abstain / len(unanswerable) if unanswerable else float("nan"),
    }


def best_threshold(groups, honest=None) -> float:
    """Best mean accuracy over the groups of scored questions, among thresholds that abstain on enough of
    ``honest``'s unanswerable questions (the gold floor on abstention recall, README: Quality floors)."""
    grid = np.linspace(0.05, 0.95, 91)
    scores = [np.mean([summary(decide(scored, t))["accuracy"] for scored in groups if scored]) for t in grid]
    if honest and any(not answerable for *_, answerable in honest):
        ok = [summary(decide(honest, t))["abstain_recall"] >= ABSTAIN_RECALL_FLOOR for t in grid]
        scores = [s if keep else -1.0 for s, keep in zip(scores, ok, strict=True)]
    return float(grid[int(np.argmax(scores))])


def is_gold(group: str) -> bool:
    return group.startswith("gold:")


def stage_two(records, with_reader: bool = True, gold_share: float | None = GOLD_SHARE, k: int = READER_CANDIDATES):
    if with_reader:
        rerank = fit_rerank(records, k)
    else:
        rerank = answering.LogisticModel(answering.RERANK_FEATURES, (1.0, 0.0), 0.0)
    rows = question_rows(records, rerank, k)
    answerable = fit_answerable(rows, gold_share)
    squad = probabilities([r for r in rows if not is_gold(r[3])], answerable)
    gold = probabilities([r for r in rows if is_gold(r[3])], answerable)
    threshold = best_threshold([squad, gold], honest=gold)
    return rerank, answerable, threshold


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(DEFAULT_DATASET))
    ap.add_argument("--gold", default=str(ROOT / "eval" / "gold.jsonl"))
    ap.add_argument("--reader", default="none", help="a reader folder from eval/train_reader.py, or none (default)")
    ap.add_argument("--out", default=str(answering.MODEL_PATH))
    ap.add_argument("--limit", type=int, help="a random sample of N tune questions (seed 0)")
    ap.add_argument(
        "--gold-ids-from",
        help="fit on only the gold dev questions a models file lists under trained_on.gold_ids (to rebuild it "
        "after questions were added to the gold set)",
    )
    ap.add_argument(
        "--gold-share", type=float, default=GOLD_SHARE, help="gold dev's share of the answerability fit (-1: by count)"
    )
    ap.add_argument(
        "--threshold-from",
        choices=("held-out", "in-sample"),
        default="held-out",
        help="read the abstention threshold off held-out scores (default) or the final fit's own",
    )
    ap.add_argument(
        "--reader-candidates",
        type=int,
        default=READER_CANDIDATES,
        help="sentences the reader reads per question (each costs a transformer pass at run time)",
    )
    ap.add_argument(
        "--reader-spill",
        type=float,
        help="answer from a leading sentence's neighbour when the reader's span there beats its best in the "
        "sentence by this margin or more (default: never)",
    )
    args = ap.parse_args()
    if not 1 <= args.reader_candidates <= 50:
        ap.error(f"--reader-candidates is {args.reader_candidates}; from 1 to 50 (the shipped answerer reads 3)")
    k = args.reader_candidates
    share = None if args.gold_share is None or args.gold_share < 0 else args.gold_share
    started = time.time()

    directory = Path(args.dataset).resolve()
    split = {d: name for name, docs in json.loads((directory / "split.json").read_text()).items() for d in docs}
    # a reader may have learnt from some tune articles (half of them: train_reader.reader_articles); those
    # neither fit nor judge what follows
    held = set(trained_on(Path(args.reader))) if args.reader != "none" else set()
    squad = [i for i in evaluation.load_dataset(directory, split) if i.split == "tune" and i.article not in held]
    if args.limit:
        squad = evaluation.select(squad, "tune", args.limit, seed=0)
    gold = [i for i in evaluation.load_gold(Path(args.gold)) if i.split == "dev"]
    if args.gold_ids_from:
        listed = json.loads(Path(args.gold_ids_from).read_text(encoding="utf-8"))["trained_on"].get("gold_ids")
        if not listed:
            ap.error(f"{args.gold_ids_from} lists no trained_on.gold_ids; it predates the record, so refit without it")
        keep = set(listed)
        missing = sorted(keep - {i.id for i in gold})
        if missing:
            ap.error(f"{args.gold_ids_from} was fitted on gold dev questions {args.gold} lacks: {', '.join(missing)}")
        gold = [i for i in gold if i.id in keep]
    print(f"{len(squad)} squad tune questions, {len(gold)} gold dev questions", flush=True)
    squad_records = collect(squad, dataset_config(directory), lambda i: i.article or "none")
    gold_records = collect(gold, load_config(), lambda i: f"gold:{Path(i.source).name if i.source else 'none'}")
    print(f"collected candidates in {time.time() - started:.0f} s", flush=True)

    second = squad_records + gold_records
    select = fit_select(second)
    read(second, select, None if args.reader == "none" else Reader(Path(args.reader)), k, args.reader_spill)

    folds, pooled, scored = [], {"squad": [], "gold": []}, {"squad": [], "gold": []}
    for held_out in sorted({r["group"] for r in second}):
        rerank, answerable, threshold = stage_two(
            [r for r in second if r["group"] != held_out], args.reader != "none", share, k
        )
        held = probabilities(question_rows([r for r in second if r["group"] == held_out], rerank, k), answerable)
        kind = "gold" if is_gold(held_out) else "squad"
        pooled[kind].extend(decide(held, threshold))
        scored[kind].extend(held)
        folds.append({"source": held_out, **summary(decide(held, threshold))})
    for f in folds:
        print("held out", f, flush=True)
    held_out_figures = {k: summary(v) for k, v in pooled.items()}
    print("each source held out in turn, pooled:", held_out_figures, flush=True)
    # the threshold is read off held-out probabilities: in-sample, the small gold set looks surer than it is
    threshold = best_threshold([scored["squad"], scored["gold"]], honest=scored["gold"])
    at_threshold = {k: summary(decide(v, threshold)) for k, v in scored.items()}
    print(f"threshold {threshold:.2f} from held-out probabilities:", at_threshold, flush=True)

    rerank, answerable, in_sample = stage_two(second, args.reader != "none", share, k)
    if args.threshold_from == "in-sample":
        threshold = in_sample
    rows = question_rows(second, rerank, k)
    fit_figures = {
        "squad_holdout": summary(outcomes([r for r in rows if not is_gold(r[3])], answerable, threshold)),
        "gold_dev": summary(outcomes([r for r in rows if is_gold(r[3])], answerable, threshold)),
    }
    print("threshold", threshold, fit_figures, flush=True)

    def dump(model: answering.LogisticModel) -> dict:
        return {"features": list(model.names), "weights": list(model.weights), "bias": model.bias}

    payload = {
        "select": dump(select),
        "rerank": dump(rerank),
        "answerable": dump(answerable),
        "threshold": threshold,
        "reader_candidates": k if args.reader != "none" else 0,
        "reader_spill": args.reader_spill if args.reader != "none" else None,
        "trained_on": {
            "select": "squad_v2_dev25 tune articles the reader did not learn from, gold dev",
            "rerank_answerable_threshold": "squad_v2_dev25 tune articles the reader did not learn from, gold dev",
            "squad_articles": sorted({i.article for i in squad if i.article}),
            "gold_ids": [i.id for i in gold],
            "reader": args.reader,
            "script": "eval/train_answerer.py",
        },
        "gold_share": share,
        "fit": fit_figures,
        "leave_one_source_out": folds,
        "leave_one_source_out_pooled": held_out_figures,
        "held_out_at_threshold": at_threshold,
        "threshold_from": args.threshold_from,
    }
    Path(args.out).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
