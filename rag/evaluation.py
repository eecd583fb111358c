"""Score answers against gold question-answer pairs: answer quality, abstention, citations, retrieval, speed.

Two gold formats are read: our own ``eval/gold.jsonl`` (evidence quotes over ``seeds/``)
and the public dataset layout (``documents/`` + ``questions.jsonl`` with ``answer_start``).
"""

from __future__ import annotations

import collections
import json
import random
import re
import string
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ir_measures
import numpy as np
from ir_measures import RR, Qrel, ScoredDoc, Success

from .config import ROOT
from .documents import resolve_source
from .errors import DatasetError, RagError
from .types import Answer, Chunk

_MARKER_RE = re.compile(r"\s*\[\d+\]")
_ARTICLES_RE = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | set("‘’“”–—…£")


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    answers: tuple[str, ...]
    source: str | None
    spans: tuple[tuple[int, int], ...]
    history: tuple[tuple[str, str], ...] = ()
    kind: str = "fact"
    split: str = "test"
    article: str | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass
class ItemResult:
    item: GoldItem
    answer: Answer
    seconds: float
    relevant: set[int] = field(default_factory=set)
    citations_valid: int = 0  # of every citation the answerer made, before ask() dropped any that failed
    citations_made: int = 0


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, articles or extra spaces."""
    text = _MARKER_RE.sub("", text).lower()
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    return " ".join(_ARTICLES_RE.sub(" ", text).split())


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    return float(any(normalize(prediction) == normalize(g) for g in golds))


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    pred = normalize(prediction).split()
    best = 0.0
    for gold in golds:
        ref = normalize(gold).split()
        common = sum((collections.Counter(pred) & collections.Counter(ref)).values())
        if common:
            p, r = common / len(pred), common / len(ref)
            best = max(best, 2 * p * r / (p + r))
    return best


def contains(prediction: str, golds: Sequence[str]) -> float:
    text = f" {normalize(prediction)} "
    return float(any(f" {normalize(g)} " in text for g in golds if normalize(g)))


def answer_body(answer: Answer) -> str:
    """The answer with its citation markers removed, as scored against gold strings."""
    return _MARKER_RE.sub("", answer.text).strip()


def load_gold(path: Path, text_of: Callable[[str], str] | None = None) -> list[GoldItem]:
    """Our gold file: each answer located inside its evidence quote in the source's text (``text_of``,
    the pipeline's ``source_text``, gives the stored extraction of an HTML, PDF or Word source)."""
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        row = json.loads(line)
        spans: list[tuple[int, int]] = []
        if row.get("source") and row.get("evidence"):
            try:
                text = text_of(row["source"]) if text_of else resolve_source(row["source"]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise RagError(
                    f"{path}:{n}: cannot read {row['source']} as text ({type(e).__name__}); index it first, "
                    "so its extracted text is stored, and name it as `rag ls` does"
                ) from None
            at = text.find(row["evidence"])
            if at < 0:
                raise RagError(f"{path}:{n}: the evidence of {row['id']} is not in {row['source']}; fix the gold file")
            spans.append((at, at + len(row["evidence"])))
        items.append(
            GoldItem(
                id=row["id"],
                question=row["question"],
                answers=tuple(row.get("answers", [])),
                source=row.get("source"),
                spans=tuple(spans),
                history=tuple((q, a) for q, a in row.get("history", [])),
                kind=row.get("kind", "fact"),
                split=row.get("split", "test"),
                article=row.get("source"),
            )
        )
    return items


def load_dataset(directory: Path, splits: dict[str, str] | None = None) -> list[GoldItem]:
    """The public layout: ``documents/`` and ``questions.jsonl`` (``answer_start`` per answer, or null).

    A dataset a user brings is checked line by line, since a wrong offset or a missing document
    would otherwise just read as poor retrieval.
    """
    questions = directory / "questions.jsonl"
    if not questions.is_file() or not (directory / "documents").is_dir():
        raise DatasetError(f"{directory} is not a dataset: it needs documents/ and questions.jsonl")
    docs_dir = (directory / "documents").resolve()
    texts: dict[str, str] = {}
    items = []
    try:
        for n, line in enumerate(questions.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                items.append(_dataset_item(_json_row(line, questions, n), f"{questions}:{n}", docs_dir, texts, splits))
    except UnicodeDecodeError as e:
        raise DatasetError(f"a dataset file is not UTF-8 ({e.reason} at byte {e.start}); convert it to UTF-8") from None
    if not items:
        raise DatasetError(f"{questions} holds no questions; add one JSON object a line")
    return items


def _json_row(line: str, path: Path, n: int) -> dict:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise DatasetError(f"{path}:{n} is not valid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(row, dict):
        raise DatasetError(f"{path}:{n} must be a JSON object, not {type(row).__name__}")
    return row


def _dataset_item(
    row: dict, where: str, docs_dir: Path, texts: dict[str, str], splits: dict[str, str] | None
) -> GoldItem:
    for key in ("id", "question"):
        if not isinstance(row.get(key), str | int) or not str(row[key]).strip():
            raise DatasetError(f"{where}: {key!r} is missing or empty; every question needs an id and a question")
    answers = row.get("answers") or []
    if not isinstance(answers, list) or not all(isinstance(a, str) and a for a in answers):
        raise DatasetError(f"{where}: 'answers' must be a list of non-empty strings (empty when unanswerable)")
    document = row.get("document")
    spans: list[tuple[int, int]] = []
    if document is not None:
        path = (docs_dir / str(document)).resolve()
        if not path.is_relative_to(docs_dir) or not path.is_file():
            raise DatasetError(f"{where}: document {document!r} is not a file under {docs_dir}")
        if not answers:
            raise DatasetError(f"{where}: names document {document!r} but gives no answers; set document to null")
        text = texts.setdefault(str(path), path.read_text(encoding="utf-8"))
        starts = row.get("answer_start")
        if starts is not None:
            if not isinstance(starts, list) or len(starts) != len(answers):
                raise DatasetError(f"{where}: 'answer_start' needs one offset (or null) per answer")
            for answer, at in zip(answers, starts, strict=True):
                if at is None:
                    continue
                if not isinstance(at, int) or text[at : at + len(answer)] != answer:
                    raise DatasetError(
                        f"{where}: answer_start {at!r} does not point at {answer!r} in {document} "
                        f"(found {text[at : at + len(answer)]!r} there); fix the offset or set it to null"
                        if isinstance(at, int)
                        else f"{where}: answer_start {at!r} must be a character offset or null"
                    )
                spans.append((at, at + len(answer)))
    split_of = row.get("source_document") or document
    return GoldItem(
        id=str(row["id"]),
        question=str(row["question"]),
        answers=tuple(answers) if document else (),
        source=str(docs_dir / document) if document else None,
        spans=tuple(spans),
        kind="fact" if document else "unanswerable",
        split=(splits or {}).get(split_of or "", "test"),
        article=split_of,
    )


def relevant_chunks(item: GoldItem, chunks: Sequence[Chunk], by_source: dict[str, list[int]]) -> set[int]:
    """Chunks that hold a gold span (answer or evidence quote) whole, or lacking spans, a gold answer string."""
    if not item.answerable or item.source is None:
        return set()
    source = gold_source(item.source)
    out = set()
    for i in by_source.get(source, []):
        c = chunks[i]
        if item.spans:
            if any(c.start <= a and b <= c.end for a, b in item.spans):
                out.add(i)
        elif contains(c.text, item.answers):
            out.add(i)
    return out


def gold_source(source: str) -> str:
    """A source as gold items name it (relative to the repository when inside it), so sources compare."""
    path = Path(source)
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path.resolve())


def select(items: Sequence[GoldItem], split: str = "all", limit: int | None = None, seed: int = 0) -> list[GoldItem]:
    chosen = [i for i in items if split == "all" or i.split == split]
    if not chosen and items:
        have = ", ".join(sorted({i.split for i in items}))
        raise RagError(f"no questions in split {split!r}; this set has: {have} (choose one with --split)")
    if limit is not None and limit < len(chosen):
        chosen = sorted(random.Random(seed).sample(chosen, limit), key=lambda i: i.id)
    return chosen


def run(
    items: Sequence[GoldItem],
    ask: Callable[[GoldItem], Answer],
    chunks: Sequence[Chunk],
    progress: Callable[[int, int], None] | None = None,
    text_of: Callable[[str], str] | None = None,
) -> list[ItemResult]:
    """Ask every item. ``text_of(source)`` is the text citations index (the pipeline's ``source_text``:
    the stored extraction for HTML, PDF and Word); each citation the answerer made is checked against
    it, including those ``ask()`` dropped, so citation validity measures the answerer, not the net."""
    by_source: dict[str, list[int]] = collections.defaultdict(list)
    for c in chunks:
        by_source[c.source].append(c.id)
    results = []
    for n, item in enumerate(items, start=1):
        started = time.perf_counter()
        answer = ask(item)
        seconds = time.perf_counter() - started
        made = [*answer.citations, *answer.dropped_citations]
        valid = sum(citation_ok(c, text_of) for c in made)
        results.append(ItemResult(item, answer, seconds, relevant_chunks(item, chunks, by_source), valid, len(made)))
        if progress:
            progress(n, len(items))
    return results


def citation_ok(c: Any, text_of: Callable[[str], str] | None = None) -> bool:
    try:
        text = text_of(c.source) if text_of else resolve_source(c.source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return bool(c.quote) and text[c.start : c.end] == c.quote


def score(results: Sequence[ItemResult]) -> dict[str, float]:
    """The report's figures, every one a plain number (``nan`` where undefined)."""
    if not results:
        raise RagError("no questions were evaluated; check --split and --limit")
    answerable = [r for r in results if r.item.answerable]
    unanswerable = [r for r in results if not r.item.answerable]
    abstained = [r for r in results if r.answer.abstained]
    em, f1, contained, correct, span_em, span_f1 = [], [], [], [], [], []
    for r in results:
        body = answer_body(r.answer)
        if r.item.answerable:
            short = r.answer.span.quote if r.answer.span is not None else body
            span_em.append(exact_match(short, r.item.answers) if not r.answer.abstained else 0.0)
            span_f1.append(token_f1(short, r.item.answers) if not r.answer.abstained else 0.0)
        if r.item.answerable:
            ok = not r.answer.abstained
            em.append(exact_match(body, r.item.answers) if ok else 0.0)
            f1.append(token_f1(body, r.item.answers) if ok else 0.0)
            contained.append(contains(body, r.item.answers) if ok else 0.0)
            correct.append(contained[-1])
        else:
            em.append(float(r.answer.abstained))
            f1.append(float(r.answer.abstained))
            correct.append(float(r.answer.abstained))
    made = sum(r.citations_made for r in results)
    answered = [r for r in answerable if not r.answer.abstained and r.answer.citations]
    lat = np.array([r.seconds * 1000 for r in results])
    lengths = [len(answer_body(r.answer)) for r in results if not r.answer.abstained]
    true_abstain = sum(1 for r in abstained if not r.item.answerable)
    figures = {
        "n": float(len(results)),
        "n_answerable": float(len(answerable)),
        "n_unanswerable": float(len(unanswerable)),
        "accuracy": _mean(correct),
        "em": _mean(em),
        "f1": _mean(f1),
        "containment": _mean(contained),
        "span_em": _mean(span_em),
        "span_f1": _mean(span_f1),
        "span_rate": _mean([float(r.answer.span is not None) for r in answerable if not r.answer.abstained]),
        "abstain_precision": true_abstain / len(abstained) if abstained else float("nan"),
        "abstain_recall": true_abstain / len(unanswerable) if unanswerable else float("nan"),
        "answered_rate": 1 - len([r for r in answerable if r.answer.abstained]) / len(answerable)
        if answerable
        else float("nan"),
        "citation_validity": sum(r.citations_valid for r in results) / made if made else float("nan"),
        "answers_losing_citations": float(sum(1 for r in results if r.answer.dropped_citations)),
        "citation_source_accuracy": _mean(
            [float(gold_source(r.answer.citations[0].source) == gold_source(r.item.source or "")) for r in answered]
        ),
        "median_answer_chars": float(np.median(lengths)) if lengths else float("nan"),
        "p50_ms": float(np.percentile(lat, 50)),
        "p95_ms": float(np.percentile(lat, 95)),
    }
    figures.update(retrieval_scores(results))
    figures.update(generation_scores(results))
    return figures


def citation_precise(c: Any, item: GoldItem) -> bool:
    """A citation is precise when its quote holds a gold answer or overlaps the gold evidence."""
    if not item.answerable:
        return False
    same = item.source is not None and gold_source(c.source) == gold_source(item.source)
    return bool(contains(c.quote, item.answers)) or (same and any(c.start < b and a < c.end for a, b in item.spans))


def generation_scores(results: Sequence[ItemResult]) -> dict[str, float]:
    """Faithfulness (share of answer sentences backed by a verified quote), citation precision, speed."""
    answered = [r for r in results if not r.answer.abstained]
    faithful = [
        r.answer.stats["supported"] / r.answer.stats["sentences"]
        if r.answer.answerer == "generator" and r.answer.stats.get("sentences")
        else 1.0
        for r in answered
    ]
    cited = [(c, r.item) for r in results if r.item.answerable for c in r.answer.citations]
    tokens = sum(r.answer.stats.get("tokens", 0.0) for r in results)
    seconds = sum(r.answer.stats.get("seconds", 0.0) for r in results)
    return {
        "faithfulness": _mean(faithful),
        "citation_precision": _mean([float(citation_precise(c, item)) for c, item in cited]),
        "fallback_rate": _mean([float(r.answer.answerer.endswith("(fallback)")) for r in results]),
        "tokens_per_s": tokens / seconds if seconds else 0.0,
    }


def retrieval_scores(results: Iterable[ItemResult], k: int = 5) -> dict[str, float]:
    """Evidence recall@k (a passage holding the answer is among the first k) and MRR, by ir-measures."""
    qrels, run_ = [], []
    for r in results:
        if not r.relevant:
            continue
        qrels.extend(Qrel(r.item.id, str(i), 1) for i in r.relevant)
        run_.extend(ScoredDoc(r.item.id, str(p.chunk.id), -float(p.rank)) for p in r.answer.passages)
        if not r.answer.passages:
            run_.append(ScoredDoc(r.item.id, "none", 0.0))
    if not qrels:
        return {f"recall_at_{k}": float("nan"), "mrr": float("nan")}
    figures = ir_measures.calc_aggregate([Success @ k, RR], qrels, run_)
    return {f"recall_at_{k}": float(figures[Success @ k]), "mrr": float(figures[RR])}


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def worst(results: Sequence[ItemResult], n: int = 20) -> list[ItemResult]:
    """Misses first: wrong answers, then wrong abstentions, then answers to unanswerable questions."""

    def badness(r: ItemResult) -> tuple[int, float]:
        body = answer_body(r.answer)
        if r.item.answerable and not r.answer.abstained and not contains(body, r.item.answers):
            return (0, -r.answer.confidence)
        if r.item.answerable and r.answer.abstained:
            return (1, r.answer.confidence)
        if not r.item.answerable and not r.answer.abstained:
            return (2, -r.answer.confidence)
        return (3, 0.0)

    return [r for r in sorted(results, key=badness) if badness(r)[0] < 3][:n]


def format_table(rows: dict[str, dict[str, float]], keys: Sequence[str]) -> str:
    """One column per configuration, one row per figure."""
    names = list(rows)
    width = max(8, *(len(n) for n in names))
    label = max(22, *(len(k) + 2 for k in keys))
    lines = ["figure".ljust(label) + "".join(n.rjust(width + 2) for n in names)]
    for key in keys:
        cells = []
        for name in names:
            value = rows[name].get(key, float("nan"))
            cells.append(
                (
                    f"{value:.0f}"
                    if key in ("n", "n_answerable", "n_unanswerable")
                    else f"{value:.3f}"
                    if not key.endswith("_ms") and "chars" not in key
                    else f"{value:.1f}"
                ).rjust(width + 2)
            )
        lines.append(key.ljust(label) + "".join(cells))
    return "\n".join(lines)


REPORT_KEYS = (
    "n",
    "accuracy",
    "em",
    "f1",
    "containment",
    "span_em",
    "span_f1",
    "abstain_precision",
    "abstain_recall",
    "answered_rate",
    "citation_validity",
    "answers_losing_citations",
    "citation_source_accuracy",
    "recall_at_5",
    "mrr",
    "faithfulness",
    "citation_precision",
    "fallback_rate",
    "tokens_per_s",
    "median_answer_chars",
    "p50_ms",
    "p95_ms",
)


def write_report(
    folder: Path,
    rows: dict[str, dict[str, float]],
    results: dict[str, Sequence[ItemResult]],
    title: str,
    misses: int = 25,
) -> list[Path]:
    """figures.json, a quality-against-latency plot and a Markdown list of the worst misses, in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    folder.mkdir(parents=True, exist_ok=True)
    clean = {name: {k: (None if np.isnan(v) else round(v, 6)) for k, v in fig.items()} for name, fig in rows.items()}
    (folder / "figures.json").write_text(json.dumps(clean, indent=2) + "\n", encoding="utf-8")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    metrics = (("accuracy", "o"), ("containment", "s"), ("recall_at_5", "^"))
    xs = [rows[n]["p50_ms"] for n in rows]
    for i, name in enumerate(rows):
        colour = f"C{i % 10}"
        for key, marker in metrics:
            ax.scatter(rows[name]["p50_ms"], rows[name][key], marker=marker, color=colour, s=40)
        ax.scatter([], [], marker="o", color=colour, label=name)
    for key, marker in metrics:
        ax.scatter([], [], marker=marker, color="0.4", label=key.replace("_at_", "@"))
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ticks = [t for t in (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000) if min(xs) / 1.5 <= t <= max(xs) * 1.5]
    ax.set_xticks(ticks or [min(xs)])
    ax.set_xlabel("p50 latency per question (ms, log scale)")
    ax.set_ylabel("share of questions")
    ax.set_ylim(0, 1.02)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right", ncol=2)
    fig.tight_layout()
    fig.savefig(folder / "quality_vs_latency.png", dpi=120)
    plt.close(fig)

    lines = [f"# {title}", "", format_markdown(rows), ""]
    for name, res in results.items():
        lines += [f"## Worst misses: {name}", ""]
        for r in worst(res, misses):
            gold = "; ".join(r.item.answers) or "(no answer in the documents)"
            lines.append(f"- **{r.item.id}** {r.item.question}")
            lines.append(f"  - gold: {gold}")
            lines.append(f"  - ours (confidence {r.answer.confidence:.2f}): {r.answer.text}")
            for n, c in enumerate(r.answer.citations, start=1):
                lines.append(f"  - [{n}] `{gold_source(c.source)}:{c.start}-{c.end}`")
            if r.answer.abstained and r.answer.passages:
                lines.append(
                    f"  - closest passage: `{r.answer.passages[0].source}` “{r.answer.passages[0].text[:160]}…”"
                )
        lines.append("")
    (folder / "misses.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [folder / "figures.json", folder / "quality_vs_latency.png", folder / "misses.md"]


def format_markdown(rows: dict[str, dict[str, float]], keys: Sequence[str] = REPORT_KEYS) -> str:
    names = list(rows)
    out = ["| figure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in keys:
        cells = [
            f"{rows[n].get(key, float('nan')):.3f}" if not key.endswith("_ms") else f"{rows[n][key]:.1f}" for n in names
        ]
        out.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def threshold_sweep(results: Sequence[ItemResult], grid: Sequence[float] | None = None) -> list[dict[str, float]]:
    """From answers given with abstention off, what each abstention threshold would have scored."""
    grid = grid if grid is not None else [round(x, 2) for x in np.linspace(0.02, 0.98, 49)]
    rows = []
    for t in grid:
        correct, abstained, true_abstain = [], 0, 0
        unanswerable = sum(1 for r in results if not r.item.answerable)
        for r in results:
            abstain = r.answer.confidence < t
            abstained += abstain
            if r.item.answerable:
                correct.append(float(not abstain and contains(answer_body(r.answer), r.item.answers) > 0))
            else:
                correct.append(float(abstain))
                true_abstain += abstain
        rows.append(
            {
                "threshold": float(t),
                "accuracy": _mean(correct),
                "abstain_precision": true_abstain / abstained if abstained else float("nan"),
                "abstain_recall": true_abstain / unanswerable if unanswerable else float("nan"),
            }
        )
    return rows
