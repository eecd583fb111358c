"""Learn the extractive answerer's two small models from data and write ``rag/models/extractive.json``.

Training data: the ``tune`` articles of squad_v2_dev25 (whose unanswerable questions were
written to look answerable) and the ``dev`` split of our gold set over ``seeds/``. The
``test`` splits are never read here. The sentence selector is a logistic regression over
(question, sentence) evidence features, labelled by whether the sentence holds a gold
answer; the answerability model is a logistic regression over the best sentence's
evidence, labelled by whether that sentence is right. The abstention threshold maximises
end-to-end accuracy (answered right, or abstained when there is no answer), averaged over
the two sources so the small gold set counts as much as the large one.

    python eval/train_answerer.py [--dataset ../shared/data/squad_v2_dev25] [--out rag/models/extractive.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import answering, conversation, evaluation  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.pipeline import get_pipeline  # noqa: E402

DEFAULT_DATASET = ROOT.parent / "shared" / "data" / "squad_v2_dev25"


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
        cands = answering.candidates(query, passages, pipeline.data, pipeline.retriever, query.text)
        source = evaluation._display(item.source) if item.source else None
        labels = []
        for c in cands:
            hit = (
                item.answerable
                and c.passage.source == source
                and any(c.start < b and a < c.end for a, b in item.spans)
                and evaluation.contains(c.text, item.answers) > 0
            )
            labels.append(int(hit))
        records.append({"item": item, "passages": passages, "cands": cands, "labels": labels, "group": group_of(item)})
    return records


def matrix(records, names):
    rows = [[c.features[n] for n in names] for r in records for c in r["cands"]]
    return np.asarray(rows, dtype=np.float64)


def fit_select(records):
    usable = [r for r in records if any(r["labels"])]
    X = matrix(usable, answering.SENTENCE_FEATURES)
    y = np.asarray([label for r in usable for label in r["labels"]])
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(X, y)
    return answering.LogisticModel(
        answering.SENTENCE_FEATURES, tuple(model.coef_[0].tolist()), float(model.intercept_[0])
    )


def question_rows(records, select):
    """Per question: answerability features of the best candidate, whether it is right, and the item."""
    out = []
    for r in records:
        scored = [
            answering.Candidate(c.passage, c.start, c.end, c.text, c.features, select.logit(c.features))
            for c in r["cands"]
        ]
        order = sorted(range(len(scored)), key=lambda i: (-scored[i].score, scored[i].passage.rank, scored[i].start))
        if not order:
            continue
        ranked = [scored[i] for i in order]
        feats = answering.answerable_features(ranked, r["passages"])
        out.append((feats, r["labels"][order[0]], r["item"], r["group"]))
    return out


def fit_answerable(rows):
    X = np.asarray([[f[n] for n in answering.ANSWERABLE_FEATURES] for f, *_ in rows])
    y = np.asarray([label for _, label, *_ in rows])
    model = LogisticRegression(C=1.0, max_iter=2000)
    model.fit(X, y)
    return answering.LogisticModel(
        answering.ANSWERABLE_FEATURES, tuple(model.coef_[0].tolist()), float(model.intercept_[0])
    )


def outcomes(rows, model, threshold):
    """(correct, abstained, answerable) per question at ``threshold``."""
    out = []
    for feats, top_right, item, _ in rows:
        p = 1 / (1 + np.exp(-model.logit(feats)))
        abstain = p < threshold
        correct = abstain if not item.answerable else (not abstain and bool(top_right))
        out.append((correct, abstain, item.answerable))
    return out


def summary(outs):
    outs = list(outs)
    abstained = [o for o in outs if o[1]]
    unans = [o for o in outs if not o[2]]
    true_abs = sum(1 for o in abstained if not o[2])
    return {
        "n": len(outs),
        "accuracy": float(np.mean([o[0] for o in outs])),
        "abstain_precision": true_abs / len(abstained) if abstained else float("nan"),
        "abstain_recall": true_abs / len(unans) if unans else float("nan"),
    }


def best_threshold(groups_rows, model):
    grid = np.linspace(0.05, 0.95, 91)
    scores = [np.mean([summary(outcomes(rows, model, t))["accuracy"] for rows in groups_rows]) for t in grid]
    return float(grid[int(np.argmax(scores))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default=str(DEFAULT_DATASET))
    ap.add_argument("--gold", default=str(ROOT / "eval" / "gold.jsonl"))
    ap.add_argument("--out", default=str(answering.MODEL_PATH))
    args = ap.parse_args()
    started = time.time()

    directory = Path(args.dataset).resolve()
    split = {d: name for name, docs in json.loads((directory / "split.json").read_text()).items() for d in docs}
    squad = [i for i in evaluation.load_dataset(directory, split) if i.split == "tune"]
    gold = [i for i in evaluation.load_gold(Path(args.gold)) if i.split == "dev"]
    print(f"training on {len(squad)} squad tune questions and {len(gold)} gold dev questions", flush=True)

    squad_records = collect(squad, dataset_config(directory), lambda i: i.article or "none")
    gold_records = collect(gold, load_config(), lambda i: "gold")
    print(f"collected candidates in {time.time() - started:.0f} s", flush=True)

    # Cross-validated estimate: hold out squad articles in turn (unanswerables go with their article).
    folds = []
    groups = np.asarray([r["group"] for r in squad_records])
    for train_idx, held_idx in GroupKFold(n_splits=6).split(squad_records, groups=groups):
        train = [squad_records[i] for i in train_idx] + gold_records
        held = [squad_records[i] for i in held_idx]
        select = fit_select(train)
        rows_train = question_rows(train, select)
        answerable = fit_answerable(rows_train)
        t = best_threshold(
            [[r for r in rows_train if r[3] != "gold"], [r for r in rows_train if r[3] == "gold"]], answerable
        )
        folds.append(summary(outcomes(question_rows(held, select), answerable, t)))
    cv = {k: float(np.nanmean([f[k] for f in folds])) for k in ("accuracy", "abstain_precision", "abstain_recall")}
    print("held-out squad articles (6-fold):", cv, flush=True)

    select = fit_select(squad_records + gold_records)
    squad_rows, gold_rows = question_rows(squad_records, select), question_rows(gold_records, select)
    answerable = fit_answerable(squad_rows + gold_rows)
    threshold = best_threshold([squad_rows, gold_rows], answerable)
    fit = {
        "squad_tune": summary(outcomes(squad_rows, answerable, threshold)),
        "gold_dev": summary(outcomes(gold_rows, answerable, threshold)),
    }
    print("threshold", threshold, fit, flush=True)

    payload = {
        "select": {"features": list(select.names), "weights": list(select.weights), "bias": select.bias},
        "answerable": {
            "features": list(answerable.names),
            "weights": list(answerable.weights),
            "bias": answerable.bias,
        },
        "threshold": threshold,
        "trained_on": {
            "squad_v2_dev25": "tune articles",
            "gold": "dev split",
            "questions": len(squad) + len(gold),
            "script": "eval/train_answerer.py",
        },
        "fit": fit,
        "cross_validated_squad": cv,
    }
    Path(args.out).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
