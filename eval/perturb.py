"""A copy of a SQuAD-style dataset folder whose questions are typed as users type them: with a slip, without
a question mark, in lower case, with a full stop, spelt the British way. The documents, paragraphs and split
are linked, so the copy is answered from the same index; only the questions differ, so the figures compare
side by side.

    python eval/perturb.py .cache/sq-heldout .cache/sq-typo --typo --seed 5
    rag eval --dataset .cache/sq-typo --split tune --limit 600 --index-dir .cache/sq-heldout-index
    python eval/perturb.py eval/gold.jsonl .cache/gold-typo.jsonl --typo --seed 5
    rag eval --gold .cache/gold-typo.jsonl --split dev

``--typo`` swaps two neighbouring letters, never the first, of one word of five letters or more that is
not a question word, in every question that has such a word. ``--british`` spells each word as in Britain
where that spelling is a word of English too (SymSpell's list): "color" → "colour", "organization" →
"organisation", "center" → "centre", "license" → "licence", "traveled" → "travelled".
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from heldout_view import linked

BRITISH = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"(?<=\w\w\w)iz(e|ed|es|ing|ation|ations|er|ers)$", r"is\1"),
        (r"yz(e|ed|es|ing)$", r"ys\1"),
        (r"(?<=\w\w\w)or(s)?$", r"our\1"),
        (r"([tb])er(s)?$", r"\1re\2"),
        (r"ense(s)?$", r"ence\1"),
        (r"og(s)?$", r"ogue\1"),
        (r"(?<=\w\w\w)([aeiou])l(ed|ing)$", r"\1ll\2"),
        (r"^program(s)?$", r"programme\1"),
    )
)
QUESTION_WORDS = {"which", "where", "whose", "there", "their", "about", "would", "could", "should"}
WORD_RE = re.compile(r"[A-Za-z]{5,}")


def typo(question: str, rng: random.Random) -> str:
    words = [m for m in WORD_RE.finditer(question) if m.group(0).lower() not in QUESTION_WORDS]
    if not words:
        return question
    m = rng.choice(words)
    w = m.group(0)
    i = rng.randrange(1, len(w) - 1)
    return question[: m.start()] + w[:i] + w[i + 1] + w[i] + w[i + 2 :] + question[m.end() :]


def british(question: str) -> str:
    from rag.spelling import _english

    english = _english()

    def spell(m: re.Match[str]) -> str:
        word = m.group(0)
        for pattern, replacement in BRITISH:
            uk = pattern.sub(replacement, word.lower())
            if uk != word.lower() and uk in english:
                return uk.capitalize() if word[0].isupper() else uk
        return word

    return re.sub(r"[A-Za-z]+", spell, question)


def perturb(question: str, how: set[str], rng: random.Random) -> str:
    if "british" in how:
        question = british(question)
    if "typo" in how:
        question = typo(question, rng)
    if "bare" in how or "stop" in how:
        question = question.rstrip("? ").strip() + ("." if "stop" in how else "")
    if "lower" in how:
        question = question.lower()
    return question


def make(dataset: Path, out: Path, how: set[str], seed: int) -> int:
    """Write the copy (of a dataset folder, or of a gold JSONL file such as eval/gold.jsonl, whose
    questions' histories stay as they were); the number of questions changed."""
    rng = random.Random(seed)
    if dataset.is_file():
        source, target = dataset, out
        out.parent.mkdir(parents=True, exist_ok=True)
    else:
        source, target = dataset / "questions.jsonl", out / "questions.jsonl"
        linked(dataset, out, ("documents", "paragraphs.jsonl", "split.json"))
    changed = 0
    with open(source, encoding="utf-8") as f, open(target, "w", encoding="utf-8") as g:
        for line in f:
            row = json.loads(line)
            typed = perturb(row["question"], how, rng)
            changed += typed != row["question"]
            g.write(json.dumps({**row, "question": typed}, ensure_ascii=False) + "\n")
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--typo", action="store_true", help="swap two letters of one word")
    parser.add_argument("--bare", action="store_true", help="drop the question mark")
    parser.add_argument("--stop", action="store_true", help="end with a full stop instead")
    parser.add_argument("--lower", action="store_true", help="lower-case the question")
    parser.add_argument("--british", action="store_true", help="spell words as in Britain")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    how = {k for k in ("typo", "bare", "stop", "lower", "british") if getattr(args, k)}
    if not how:
        parser.error("say how to type the questions: --typo, --bare, --stop, --lower and/or --british")
    changed = make(args.dataset, args.out, how, args.seed)
    print(f"wrote {args.out}: {changed} questions typed differently ({', '.join(sorted(how))})")


if __name__ == "__main__":
    main()
