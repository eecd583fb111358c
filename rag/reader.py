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
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .embedding import choose_precision, session_options
from .errors import ModelLoadError

log = logging.getLogger(__name__)

READER_DIR = Path(__file__).parent / "models" / "reader"
MAX_ANSWER_TOKENS = 30
MAX_HEAD_TOKENS = 48


@dataclass(frozen=True)
class Read:
    """What the reader found in one text: ``margin`` > 0 means it prefers this span to "no answer"."""

    margin: float
    start: int  # character offsets in the text; -1 when the text has no token to point at
    end: int
    beside: Read | None = None  # the best span outside the sentence (not across its edge), when asked

    @property
    def wide(self) -> Read | None:
        """The best span anywhere the reader saw, when asked: this one unless one beside it scores higher."""
        return None if self.beside is None else max(self, self.beside, key=lambda r: r.margin)


Scorer = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class Reader:
    """``precision`` "int8" runs the shipped graph on onnxruntime; "bf16" or "fp32" run its weights,
    dequantised, in PyTorch: on a CPU with AMX a bf16 pass is faster than the int8 one (eval/bench.py)."""

    def __init__(self, folder: Path = READER_DIR, precision: str = "int8") -> None:
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
            if precision == "int8":
                graph = _maskless(folder / "reader.onnx") or str(folder / "reader.onnx")
                session = onnxruntime.InferenceSession(graph, session_options(), providers=["CPUExecutionProvider"])
                fed = frozenset(i.name for i in session.get_inputs())  # the cut graph takes no mask
                self.scores: Scorer = functools.partial(_unpadded, session, fed)
            else:
                self.scores = _torch_scorer(folder / "reader.onnx", precision)
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as e:
            raise ModelLoadError(f"the span reader in {folder} could not be loaded ({e}); reinstall rag") from None
        self.precision = precision
        self.cls, self.sep = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        log.info("loaded the span reader from %s (%s)", folder, precision)

    def read(
        self,
        question: str,
        texts: Sequence[tuple[str, int, int]],
        wide: bool = False,
        heads: Sequence[str] | None = None,
        reach: Sequence[tuple[int, int]] | None = None,
        refuse: Callable[[str], bool] | None = None,
        given: Callable[[str, int, int], bool] | None = None,
    ) -> list[Read]:
        """For each ``(text, lo, hi)``, the best answer span lying inside ``text[lo:hi]`` (the text around it
        is context), with its margin over "no answer". With ``wide``, each read also carries the best span
        anywhere in what the reader saw that does not cross the edge of ``text[lo:hi]``: the answer is often
        named a sentence away from the words the question shares with the text ("The forecast came from
        Dr Drage …" after "… predicted …"). ``heads`` (one per text) are read before each text as context
        only (an article's title and opening sentence), never pointed at. Entries with one text and head
        are read in one pass when their ranges fit in one window together; ``reach`` (one character range
        per text) then keeps each wide read to its own part of it. A span whose words ``refuse`` turns down
        (one that only repeats the question: "Dr" for "Who is Tom Coffey?") inside ``text[lo:hi]`` gives way
        to the best one it does not, keeping its margin: how sure the reader is that the text answers does
        not change. A span ``given`` turns down (text, start, end: an answer given before in the chat, which
        "what else…?" asks not to repeat) gives way to the best one it does not with that one's own margin: the text
        answers only if it holds something more."""
        if not texts:
            return []
        q = self.tokenizer.encode(question, add_special_tokens=False).ids[: self.max_question]
        heads = list(heads) if heads else [""] * len(texts)
        # texts read under one head share one pass when their sentences fit in it together: the answerer
        # asks about neighbouring sentences of one passage as often as not
        groups: dict[tuple[str, str], list[int]] = {}
        for i, ((text, _, _), head) in enumerate(zip(texts, heads, strict=True)):
            groups.setdefault((text, head), []).append(i)
        keys = list(groups)
        encodings = self.tokenizer.encode_batch([t for t, _ in keys], add_special_tokens=False)
        heads_read = self.tokenizer.encode_batch([h for _, h in keys], add_special_tokens=False)
        head_ids = [e.ids[:MAX_HEAD_TOKENS] for e in heads_read]
        windows = []  # (sequence, where the text's first token sits in it, its token offsets, the entries read in it)
        for key, enc, head in zip(keys, encodings, head_ids, strict=True):
            offsets, token_ids = enc.offsets, enc.ids  # each access builds a new list
            room = self.max_length - len(q) - len(head) - 3
            inside = {
                i: [t for t, (a, b) in enumerate(offsets) if a >= texts[i][1] and b <= texts[i][2] and b > a]
                for i in groups[key]
            }
            together = sorted(set().union(*inside.values()))
            parts = [groups[key]] if not together or together[-1] - together[0] < room else [[i] for i in groups[key]]
            for part in parts:
                union = sorted(set().union(*(inside[i] for i in part)))
                spare = room - (union[-1] - union[0] + 1) if union else 0
                first = max(0, min(union[0] - max(0, spare) // 2, len(token_ids) - room)) if union else 0
                last = min(len(token_ids), first + room)
                seen = [t for t in range(first, last) if offsets[t][1] > offsets[t][0]] if wide else []
                members = [
                    (
                        i,
                        _within(seen, offsets, reach[i] if reach else None) if inside[i] else [],
                        [t for t in inside[i] if first <= t < last],
                    )
                    for i in part
                ]
                seq = [self.cls, *q, self.sep, *head, *token_ids[first:last], self.sep]
                windows.append((seq, len(q) + 2 + len(head) - first, offsets, members))
        width = max(len(w[0]) for w in windows)
        ids = np.zeros((len(windows), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for w, (seq, *_) in enumerate(windows):
            ids[w, : len(seq)] = seq
            mask[w, : len(seq)] = 1
            types[w, len(q) + 2 : len(seq)] = 1
        starts, ends = self.scores(ids, mask, types)
        out: dict[int, Read] = {}
        for w, (_, shift, offsets, members) in enumerate(windows):
            null = float(starts[w, 0] + ends[w, 0])
            for i, seen, allowed in members:
                text, lo, hi = texts[i]
                refused = (lambda a, b, t=text: refuse(t[a:b])) if refuse else None
                repeated = (lambda a, b, t=text: given(t, a, b)) if given else None
                read = _best(starts[w], ends[w], null, allowed, shift, offsets, refused, repeated)
                if wide and allowed:
                    # before, inside or after the sentence, never across its edge: a span straddling a title
                    # and the sentence below it is no answer and cannot be quoted from one sentence
                    sides = ([t for t in seen if offsets[t][1] <= lo], [t for t in seen if offsets[t][0] >= hi])
                    outside = [_best(starts[w], ends[w], null, s, shift, offsets, None, repeated) for s in sides]
                    read = dataclasses.replace(read, beside=max(outside, key=lambda r: r.margin))
                out[i] = read
        return [out[i] for i in range(len(texts))]


def _within(tokens: list[int], offsets: list[tuple[int, int]], span: tuple[int, int] | None) -> list[int]:
    return tokens if span is None else [t for t in tokens if offsets[t][0] >= span[0] and offsets[t][1] <= span[1]]


def _best(
    starts: np.ndarray,
    ends: np.ndarray,
    null: float,
    tokens: list[int],
    shift: int,
    offsets: list[tuple[int, int]],
    refused: Callable[[int, int], bool] | None = None,
    repeated: Callable[[int, int], bool] | None = None,
) -> Read:
    """The best span over ``tokens`` (the text's token ``t`` sits at ``t + shift`` in the sequence); when
    ``refused`` (character offsets) turns it down, the best one it does not, with the best one's margin;
    spans ``repeated`` turns down are passed over as if the reader had not found them."""
    if not tokens:
        return Read(-1e4, -1, -1)
    positions = np.asarray(tokens) + shift
    s, e = starts[positions], ends[positions]
    a, b = np.argsort(-s)[:20], np.argsort(-e)[:20]
    total = s[a][:, None] + e[b][None, :]
    valid = (b[None, :] >= a[:, None]) & (b[None, :] < a[:, None] + MAX_ANSWER_TOKENS)
    if not valid.any():
        return Read(-1e9 - null, offsets[tokens[0]][0], offsets[tokens[0]][1])
    scored = np.where(valid, total, -np.inf)
    best = int(np.argmax(scored))  # the first of equals, in the order of a, then b
    margin = float(total.flat[best]) - null

    def span(k: int) -> tuple[int, int]:
        return offsets[tokens[int(a[k // len(b)])]][0], offsets[tokens[int(b[k % len(b)])]][1]

    if repeated is not None and repeated(*span(best)):
        order = np.argsort(-scored, axis=None, kind="stable")[: int(valid.sum())]
        fresh = next((int(k) for k in order if not repeated(*span(int(k)))), None)
        if fresh is None:
            return Read(-1e4, -1, -1)
        best, margin = fresh, float(total.flat[fresh]) - null
    if refused is not None and refused(*span(best)):
        order = np.argsort(-scored, axis=None, kind="stable")[: int(valid.sum())]
        best = next(
            (int(k) for k in order if not refused(*span(int(k))) and not (repeated and repeated(*span(int(k))))), best
        )
    return Read(margin, *span(best))


@functools.cache
def get_reader(folder: str = str(READER_DIR), precision: str = "int8") -> Reader:
    return Reader(Path(folder), precision)


def reader_precision(config: Config) -> str:
    """The reader's numeric path: the embedder's choice (``choose_precision``), since what makes one model
    fast on this CPU makes the other fast too; int8 is the shipped graph itself."""
    return choose_precision(config.precision).precision


def _unpadded(
    session, fed: frozenset[str], ids: np.ndarray, mask: np.ndarray, types: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Each window on its own, at its own length: onnxruntime's int8 path spends as long on padding as on
    words, and a batch of two or three windows gains it less than the padding costs (eval/bench.py; bf16
    in PyTorch is the other way round, so it keeps the batch)."""
    starts, ends = np.full(ids.shape, -1e4, dtype=np.float32), np.full(ids.shape, -1e4, dtype=np.float32)
    feed = {k: v for k, v in (("input_ids", ids), ("attention_mask", mask), ("token_type_ids", types)) if k in fed}
    for row in range(len(ids)):
        n = int(mask[row].sum())
        s, e = session.run(None, {k: v[row : row + 1, :n] for k, v in feed.items()})
        starts[row, :n], ends[row, :n] = s[0], e[0]
    return starts, ends


_MASK_BIAS = re.compile(r"/attention/self/Where$")  # torch's exporter: where(mask, 0, -inf), added to the scores
_MASK_GUARD = re.compile(r"/attention/self/Where_1$")  # where(isnan(softmax), 0, softmax): rows masked whole


def _maskless(onnx_path: Path) -> bytes | None:
    """The graph without its attention mask, for windows read one at a time at their own length: the mask
    is then all ones, so adding its zero bias and guarding the softmax against wholly masked rows change
    no number (``tests/test_ask.py`` checks the logits are equal), and skipping them takes a tenth off an
    int8 pass on an AVX2 CPU (README, "Speed, measured"). None, and the graph is run whole, when it has no
    mask path of the form torch's exporter writes."""
    import onnx

    model = onnx.load(str(onnx_path))
    nodes = list(model.graph.node)
    made = {o: n for n in nodes for o in n.output}
    zeros = {
        n.output[0] for n in nodes if (n.op_type == "Where" and _MASK_BIAS.search(n.name)) or _padding_penalty(n, made)
    }
    cut = 0  # each sum with a zero bias, and each guard, becomes an Identity: the logits keep their names
    for node in nodes:
        if node.op_type == "Add" and len(zeros.intersection(node.input)) == 1:
            keep = next(i for i in node.input if i not in zeros)
        elif node.op_type == "Where" and _MASK_GUARD.search(node.name):
            keep = node.input[2]
        else:
            continue
        node.CopyFrom(onnx.helper.make_node("Identity", [keep], list(node.output), name=node.name))
        cut += 1
    if not cut:
        return None
    live, alive = {o.name for o in model.graph.output}, []
    for node in reversed(nodes):
        if live.intersection(node.output):
            alive.append(node)
            live.update(node.input)
    if "attention_mask" in live:
        log.warning("the span reader's attention mask could not be cut out of %s; reading with it", onnx_path)
        return None
    del model.graph.node[:]
    model.graph.node.extend(reversed(alive))
    kept_inputs = [i for i in model.graph.input if i.name in live]
    del model.graph.input[:]
    model.graph.input.extend(kept_inputs)
    return model.SerializeToString()


def _padding_penalty(node, made: dict) -> bool:
    """``(attention_mask == 0) * -1e4``, which eval/train_reader.py adds to the span logits: zero unpadded."""
    if node.op_type != "Mul":
        return False
    cast = next((made[i] for i in node.input if i in made and made[i].op_type == "Cast"), None)
    equal = made.get(cast.input[0]) if cast is not None else None
    return equal is not None and equal.op_type == "Equal" and "attention_mask" in equal.input


def _torch_scorer(onnx_path: Path, precision: str) -> Scorer:
    import torch
    from transformers import BertModel

    weights = {k: torch.tensor(v) for k, v in reader_state_dict(onnx_path).items()}
    layers = 1 + max(int(k.split(".")[3]) for k in weights if k.startswith("encoder.encoder.layer."))
    config = bert_config(weights, "encoder.", layers)
    encoder = BertModel(config, add_pooling_layer=False)
    load_weights(encoder, {k.removeprefix("encoder."): v for k, v in weights.items() if k.startswith("encoder.")})
    qa = torch.nn.Linear(config.hidden_size, 2)
    qa.load_state_dict({"weight": weights["qa.weight"], "bias": weights["qa.bias"]})
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    encoder, qa = encoder.eval().to(dtype), qa.eval().to(dtype)

    def scores(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = encoder(**{k: torch.from_numpy(v) for k, v in inputs.items()}).last_hidden_state
            logits = qa(hidden).float().numpy()
        return logits[..., 0], logits[..., 1]

    return scores


def bert_config(weights: dict, prefix: str, layers: int, **extra: object):
    """A transformers ``BertConfig`` read off rebuilt weights' shapes (``prefix``: "encoder.", "bert.")."""
    from transformers import BertConfig

    words = weights[f"{prefix}embeddings.word_embeddings.weight"]
    return BertConfig(
        vocab_size=words.shape[0],
        hidden_size=words.shape[1],
        num_hidden_layers=layers,
        num_attention_heads=words.shape[1] // 32,
        intermediate_size=weights[f"{prefix}encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=weights[f"{prefix}embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=weights[f"{prefix}embeddings.token_type_embeddings.weight"].shape[0],
        **extra,
    )


def load_weights(model, tensors: dict) -> None:
    """Every parameter from ``tensors`` (only the position ids buffer may be missing), or a ValueError."""
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise ValueError(f"missing {missing}, unexpected {unexpected}")


# The exported graph keeps each matrix int8 with its scale and zero point, so its float weights are
# ``(q - zero_point) * scale``: what PyTorch runs, and what training goes on from when a checkpoint is gone.
PARTS = (
    "attention/self/query",
    "attention/self/key",
    "attention/self/value",
    "attention/output/dense",
    "intermediate/dense",
    "output/dense",
)
_READER_LINEAR = re.compile(
    rf"^/encoder/encoder/layer\.(\d+)/({'|'.join(PARTS)})/MatMul_output_0_output_quantized$"
    r"|^/(qa)/MatMul_output_0_output_quantized$"
)


def dequantised(inits: dict[str, np.ndarray], stem: str) -> np.ndarray:
    q = inits[f"{stem}_quantized"].astype(np.float32)
    return (q - inits[f"{stem}_zero_point"].astype(np.float32)) * inits[f"{stem}_scale"]


Arrays = dict[str, np.ndarray]


def load_graph(onnx_path: Path, embeddings: str, what: str) -> tuple[object, Arrays, Arrays]:
    """The graph, its initialisers, and the float parameters: those stored so, and the dequantised
    embeddings under ``embeddings`` ("bert.embeddings", "encoder.embeddings")."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    if f"{embeddings}.word_embeddings.weight_quantized" not in inits:
        raise ValueError(f"{onnx_path} is not {what}")
    out = {k: v for k, v in inits.items() if not k.endswith(("_quantized", "_scale", "_zero_point"))}
    for part in ("word", "position", "token_type"):
        name = f"{embeddings}.{part}_embeddings.weight"
        out[name] = dequantised(inits, name)
    return graph, inits, out


def quantised_linears(graph, pattern: re.Pattern[str]):
    """Each quantised matrix product whose output ``pattern`` names: the match and its weight's stem."""
    for node in graph.node:
        m = pattern.match(node.output[0]) if node.op_type == "MatMulInteger" else None
        if m:
            yield m, node.input[1].removesuffix("_quantized")


def reader_state_dict(onnx_path: Path) -> dict[str, np.ndarray]:
    """``SpanReader`` parameter names (eval/train_reader.py) to float arrays. The pooler is not in the
    graph (the reader never uses it)."""
    what = "a span reader exported by eval/train_reader.py"
    graph, inits, out = load_graph(onnx_path, "encoder.embeddings", what)
    for m, stem in quantised_linears(graph, _READER_LINEAR):
        name = "qa.weight" if m[3] else f"encoder.encoder.layer.{m[1]}.{m[2].replace('/', '.')}.weight"
        out[name] = dequantised(inits, stem).T
    if "qa.weight" not in out:
        raise ValueError(f"{onnx_path} is not {what}")
    return out
