"""Fine-tune the answer-sentence reader: a small cross-encoder scoring (question, sentence) pairs.

It starts from the first ``--layers`` transformer layers of all-MiniLM-L6-v2 and learns
P(the sentence holds the answer) from the pairs written by ``eval/make_reader_data.py``.
Whole articles are held out (``--holdout``) so the answerability model can later be
calibrated on scores the reader never trained on. Runs on a GPU when there is one (minutes)
or on the CPU (about an hour); nothing else depends on a GPU.

    python eval/train_reader.py --base MODEL_DIR --pairs .cache/reader/pairs.jsonl.gz --out .cache/reader/model
    python eval/train_reader.py ... --export rag/models/reader   # then: ONNX, int8-quantised, + tokenizer.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn.functional import binary_cross_entropy_with_logits
from transformers import AutoModelForSequenceClassification, AutoTokenizer

HOLDOUT = ("Harvard_University.txt", "Oxygen.txt", "Scottish_Parliament.txt", "Yuan_dynasty.txt")


def load_pairs(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def batches(rows: list[dict], size: int, shuffle: bool, seed: int):
    order = list(range(len(rows)))
    if shuffle:
        random.Random(seed).shuffle(order)
    for i in range(0, len(order), size):
        yield [rows[j] for j in order[i : i + size]]


def question_batches(rows: list[dict], pairs_per_batch: int, seed: int):
    """Whole questions per batch, so each question's candidates compete in one softmax."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["qid"], []).append(r)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    batch: list[list[dict]] = []
    size = 0
    for k in keys:
        batch.append(groups[k])
        size += len(groups[k])
        if size >= pairs_per_batch:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def listwise_loss(logits: torch.Tensor, groups: list[list[dict]], null: torch.Tensor) -> torch.Tensor:
    """-log P(a right sentence), where "no sentence answers" (the learned ``null`` logit) competes too."""
    losses, at = [], 0
    for group in groups:
        scores = torch.cat([logits[at : at + len(group)], null.view(1)])
        labels = torch.tensor(
            [r["label"] == 1 for r in group] + [not any(r["label"] for r in group)], device=logits.device
        )
        losses.append(torch.logsumexp(scores, 0) - torch.logsumexp(scores[labels], 0))
        at += len(group)
    return torch.stack(losses).mean()


def encode(tokenizer, rows: list[dict], device: str, max_len: int) -> dict:
    enc = tokenizer(
        [r["question"] for r in rows],
        [r["sentence"] for r in rows],
        truncation="only_second",
        max_length=max_len,
        padding=True,
        return_tensors="pt",
    )
    return {k: v.to(device) for k, v in enc.items()}


@torch.no_grad()
def score(model, tokenizer, rows: list[dict], device: str, max_len: int) -> np.ndarray:
    model.eval()
    out = []
    for batch in batches(rows, 512, False, 0):
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            out.append(model(**encode(tokenizer, batch, device, max_len)).logits.float().squeeze(-1).cpu().numpy())
    model.train()
    return np.concatenate(out) if out else np.zeros(0)


def evaluate(rows: list[dict], logits: np.ndarray, null: float = 0.0) -> dict:
    """Top-1 sentence accuracy on answerable questions and the best end-to-end accuracy over thresholds."""
    by_q: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        by_q.setdefault(r["qid"], []).append(i)
    top_right, best, answerable = [], [], []
    for idx in by_q.values():
        j = max(idx, key=lambda i: logits[i])
        top_right.append(rows[j]["label"] == 1)
        best.append(float(logits[j]) - null)
        answerable.append(rows[idx[0]]["answerable"])
    top_right, best, answerable = map(np.asarray, (top_right, best, answerable))
    accs = []
    for t in np.quantile(best, np.linspace(0.02, 0.98, 49)):
        answer = best >= t
        correct = np.where(answerable, answer & top_right, ~answer)
        accs.append((float(correct.mean()), float(t)))
    acc, threshold = max(accs)
    return {
        "questions": len(by_q),
        "top1_answerable": float(top_right[answerable].mean()) if answerable.any() else float("nan"),
        "best_accuracy": acc,
        "best_threshold_logit": threshold,
        "always_answer_accuracy": float(np.where(answerable, top_right, False).mean()),
    }


def export(model_dir: Path, target: Path, max_len: int, null_logit: float) -> None:
    """ONNX, dynamically quantised to int8 for the CPU, beside the fast tokenizer's JSON."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = AutoModelForSequenceClassification.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    target.mkdir(parents=True, exist_ok=True)
    sample = tokenizer(["a question"], ["a sentence"], return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    raw = target / "reader-fp32.onnx"
    torch.onnx.export(
        model,
        tuple(sample[n] for n in names),
        str(raw),
        input_names=names,
        output_names=["logits"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names},
        opset_version=17,
        dynamo=False,
    )
    quantize_dynamic(str(raw), str(target / "reader.onnx"), weight_type=QuantType.QInt8)
    raw.unlink()
    tokenizer.backend_tokenizer.save(str(target / "tokenizer.json"))
    (target / "reader.json").write_text(json.dumps({"max_length": max_len, "null_logit": null_logit}, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help="all-MiniLM-L6-v2 folder")
    ap.add_argument("--pairs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--epochs", type=float, default=3)
    ap.add_argument("--lr", type=float, default=6e-5)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--pos-weight", type=float, default=3.0)
    ap.add_argument("--loss", choices=["listwise", "pointwise"], default="listwise")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", help="also write the int8 ONNX reader here")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.time()

    rows = load_pairs(Path(args.pairs))
    train = [r for r in rows if r["article"] not in HOLDOUT]
    held = [r for r in rows if r["article"] in HOLDOUT]
    print(f"{len(train)} training pairs, {len(held)} held-out pairs, device {device}", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(args.base)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.base, num_labels=1, num_hidden_layers=args.layers, torch_dtype=torch.float32
    ).to(device)
    total = int(len(train) / args.batch * args.epochs)
    null = torch.nn.Parameter(torch.zeros((), device=device))
    optim = torch.optim.AdamW([*model.parameters(), null], lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, s / max(1, total // 10)) * max(0.0, 1 - s / max(1, total))
    )
    pos_weight = torch.tensor([args.pos_weight], device=device)
    step = 0
    for epoch in range(math.ceil(args.epochs)):
        if args.loss == "listwise":
            epoch_batches = question_batches(train, args.batch, args.seed + epoch)
        else:
            epoch_batches = ([[r] for r in b] for b in batches(train, args.batch, True, args.seed + epoch))
        for groups in epoch_batches:
            if step >= total:
                break
            batch = [r for g in groups for r in g]
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
                logits = model(**encode(tokenizer, batch, device, args.max_len)).logits.float().squeeze(-1)
            if args.loss == "listwise":
                loss = listwise_loss(logits, groups, null)
            else:
                labels = torch.tensor([float(r["label"]) for r in batch], device=device)
                loss = binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad(set_to_none=True)
            step += 1
            if step % 200 == 0:
                print(f"step {step}/{total} loss {loss.item():.4f} {time.time() - started:.0f}s", flush=True)
        metrics = evaluate(held, score(model, tokenizer, held, device, args.max_len), float(null.detach()))
        print(f"epoch {epoch + 1}: held-out {metrics}", flush=True)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    summary = {
        "layers": args.layers,
        "epochs": args.epochs,
        "lr": args.lr,
        "loss": args.loss,
        "null_logit": float(null.detach()),
        "held_out_articles": list(HOLDOUT),
        "held_out": metrics,
        "train_pairs": len(train),
        "seconds": round(time.time() - started),
    }
    (out / "training.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary), flush=True)
    if args.export:
        export(out, Path(args.export), args.max_len, float(null.detach()))


if __name__ == "__main__":
    main()
