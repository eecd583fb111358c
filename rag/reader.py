"""The span reader: a small transformer that reads the question with a sentence (and its neighbours)
and points at the short answer in it, or at nothing.

``eval/train_reader.py`` fine-tunes the 12-layer ms-marco MiniLM cross-encoder (which reads a question
with a passage already) on SQuAD 1.1 train (with negatives made the way a retriever makes them), then on
SQuAD 2.0's adversarial questions of half the dev ``tune`` articles, and exports it int8-quantised for
onnxruntime into ``rag/models/reader/``, with a record of how it was trained. Any BERT-style reader
exported so works here, whatever its depth.

The extractive answerer asks it about its leading sentences: the reader's margin (best span
score over the "no answer" score) reorders them and feeds the answerability model, and the best span
becomes ``Answer.span``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .embedding import session_options
from .errors import ModelLoadError

log = logging.getLogger(__name__)

READER_DIR = Path(__file__).parent / "models" / "reader"
MAX_ANSWER_TOKENS = 30


@dataclass(frozen=True)
class Read:
    """What the reader found in one text: ``margin`` > 0 means it prefers this span to "no answer"."""

    margin: float
    start: int  # character offsets in the text; -1 when the text has no token to point at
    end: int
    wide: Read | None = None  # the best span anywhere the reader saw (not across the sentence's edge), when asked


class Reader:
    def __init__(self, folder: Path = READER_DIR) -> None:
        if not (folder / "reader.onnx").is_file():
            raise ModelLoadError(
                f"no span reader in {folder}; train one with eval/train_reader.py and export it with "
                f"--export {folder}, or set RAG_READER_CANDIDATES=0 to answer without it"
            )
        try:
            import onnxruntime
            from tokenizers import Tokenizer

            settings = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
            self.max_length = int(settings["max_length"])
            self.max_question = int(settings["max_question_tokens"])
            self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
            self.tokenizer.no_padding()
            self.tokenizer.no_truncation()
            self.session = onnxruntime.InferenceSession(
                str(folder / "reader.onnx"), session_options(), providers=["CPUExecutionProvider"]
            )
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as e:
            raise ModelLoadError(f"the span reader in {folder} could not be loaded ({e}); reinstall rag") from None
        self.cls, self.sep = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        log.info("loaded the span reader from %s", folder)

    def read(self, question: str, texts: Sequence[tuple[str, int, int]], wide: bool = False) -> list[Read]:
        """For each ``(text, lo, hi)``, the best answer span lying inside ``text[lo:hi]`` (the text around it
        is context), with its margin over "no answer". With ``wide``, each read also carries the best span
        anywhere in what the reader saw that does not cross the edge of ``text[lo:hi]``: the answer is often
        named a sentence away from the words the question shares with the text ("The forecast came from
        Dr Drage …" after "… predicted …")."""
        if not texts:
            return []
        q = self.tokenizer.encode(question, add_special_tokens=False).ids[: self.max_question]
        room = self.max_length - len(q) - 3
        base = len(q) + 2  # where the text's first token sits in the sequence
        windows = []  # (token ids of the sequence, first text token, text tokens in the window, those inside)
        encodings = self.tokenizer.encode_batch([t for t, _, _ in texts], add_special_tokens=False)
        for (_, lo, hi), enc in zip(texts, encodings, strict=True):
            inside = [i for i, (a, b) in enumerate(enc.offsets) if a >= lo and b <= hi and b > a]
            spare = room - (inside[-1] - inside[0] + 1) if inside else 0
            first = max(0, min(inside[0] - max(0, spare) // 2, len(enc.ids) - room)) if inside else 0
            last = min(len(enc.ids), first + room)
            seen = [i for i in range(first, last) if enc.offsets[i][1] > enc.offsets[i][0]] if wide and inside else []
            seq = [self.cls, *q, self.sep, *enc.ids[first:last], self.sep]
            windows.append((seq, first, seen, [i for i in inside if first <= i < last]))
        width = max(len(w[0]) for w in windows)
        ids = np.zeros((len(windows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for i, (seq, *_) in enumerate(windows):
            ids[i, : len(seq)] = seq
            mask[i, : len(seq)] = 1
            types[i, base : len(seq)] = 1
        starts, ends = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        out = []
        for i, ((_, first, seen, allowed), enc, (_, lo, hi)) in enumerate(zip(windows, encodings, texts, strict=True)):
            null = float(starts[i, 0] + ends[i, 0])
            read = _best(starts[i], ends[i], null, allowed, base - first, enc.offsets)
            if wide and allowed:
                # before, inside or after the sentence, never across its edge: a span straddling a title and
                # the sentence below it is no answer and cannot be quoted from one sentence
                sides = ([t for t in seen if enc.offsets[t][1] <= lo], [t for t in seen if enc.offsets[t][0] >= hi])
                reads = [read, *(_best(starts[i], ends[i], null, s, base - first, enc.offsets) for s in sides)]
                read = dataclasses.replace(read, wide=max(reads, key=lambda r: r.margin))
            out.append(read)
        return out


def _best(
    starts: np.ndarray, ends: np.ndarray, null: float, tokens: list[int], shift: int, offsets: list[tuple[int, int]]
) -> Read:
    """The best span over ``tokens`` (the text's token ``t`` sits at ``t + shift`` in the sequence)."""
    if not tokens:
        return Read(-1e4, -1, -1)
    positions = [t + shift for t in tokens]
    s, e = starts[positions], ends[positions]
    top, span = -1e9, (0, 0)
    for a in np.argsort(-s)[:20]:
        for b in np.argsort(-e)[:20]:
            if a <= b < a + MAX_ANSWER_TOKENS and s[a] + e[b] > top:
                top, span = float(s[a] + e[b]), (int(a), int(b))
    return Read(top - null, offsets[tokens[span[0]]][0], offsets[tokens[span[1]]][1])


@functools.cache
def get_reader(folder: str = str(READER_DIR)) -> Reader:
    return Reader(Path(folder))
