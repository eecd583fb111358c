"""A view of a SQuAD-style dataset folder in which ``tune`` names only the tune articles the span reader
never learnt from (``train_reader.reader_articles`` are the others), so that ``rag eval --split tune``
judges the whole pipeline on what nothing shipped was fitted to, apart from the answerer's models
(``eval/train_answerer.py`` fits them there; its leave-one-source-out figures are the stricter view).

    python eval/heldout_view.py ../shared/data/squad_v2_dev25 .cache/sq-heldout
    rag eval --dataset .cache/sq-heldout --split tune --limit 600 --index-dir .cache/sq-heldout-index

The documents and questions are linked, not copied; the view indexes all 25 articles as the dataset does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_reader import reader_articles


def linked(dataset: Path, out: Path, names: tuple[str, ...]) -> None:
    """``out`` holding links to the dataset's ``names`` (those it has), replacing what was there."""
    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        link = out / name
        if link.is_symlink() or link.exists():
            link.unlink()
        if (dataset / name).exists():
            link.symlink_to((dataset / name).resolve())


def make_view(dataset: Path, out: Path) -> dict[str, list[str]]:
    split = json.loads((dataset / "split.json").read_text(encoding="utf-8"))
    learnt = set(reader_articles(dataset))
    view = {
        "tune": sorted(a for a in split["tune"] if a not in learnt),
        "reader": sorted(learnt),
        **{k: v for k, v in split.items() if k not in ("tune", "reader")},
    }
    linked(dataset, out, ("documents", "paragraphs.jsonl", "questions.jsonl"))
    (out / "split.json").write_text(json.dumps(view, indent=1) + "\n", encoding="utf-8")
    return view


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    view = make_view(args.dataset.resolve(), args.out)
    print(f"{args.out}: tune = {len(view['tune'])} articles the reader never learnt from")


if __name__ == "__main__":
    main()
