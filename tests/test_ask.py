"""ask() end to end on the real model and a real FAISS index of seeds/."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag import Answer, Citation, ask
from rag.config import ROOT, Config
from rag.errors import ConfigError, HistoryError, ModelLoadError, QuestionError, UnknownNameError

QUESTIONS = [
    "Who chairs the NHS Alliance?",
    "How many PCTs did Pulse contact?",
    "What did Londonwide LMCs' survey find about vacancies?",
    "What do readers think about salaried hospital jobs?",
    "What is the capital of Australia?",
]


def assert_contract(answer: Answer, text_of: Callable[[str], str] | None = None) -> None:
    """``text_of`` gives the stored extraction of HTML, PDF and Word sources (``Pipeline.source_text``)."""
    assert isinstance(answer.text, str) and answer.text
    assert isinstance(answer.abstained, bool)
    assert isinstance(answer.citations, list)
    for c in answer.citations:
        assert isinstance(c, Citation)
        path = Path(c.source) if Path(c.source).is_absolute() else ROOT / c.source
        text = text_of(c.source) if text_of else path.read_text(encoding="utf-8")
        assert text[c.start : c.end] == c.quote
        assert c.quote
    markers = [int(m) for m in re.findall(r"\[(\d+)\]", answer.text)]
    assert all(1 <= m <= len(answer.citations) for m in markers)
    assert sorted(set(markers)) == list(range(1, len(answer.citations) + 1))
    if answer.abstained:
        assert not answer.citations and "don't say" in answer.text


@pytest.mark.parametrize("question", QUESTIONS)
def test_contract_holds(seed_config: Config, question: str) -> None:
    assert_contract(ask(question, config=seed_config))


def test_answers_quote_the_source(seed_config: Config) -> None:
    answer = ask("Who chairs the NHS Alliance?", config=seed_config)
    assert not answer.abstained
    assert answer.citations[0].source == "seeds/002_241d7df232c0b7ae.txt"
    assert "Michael Dixon" in answer.text
    assert len(answer.text) < 400


@pytest.mark.parametrize("question", ["How many PCTs did Pulse approach", "who chairs the NHS Alliance."])
def test_a_question_without_its_question_mark_is_read_as_asked_with_it(seed_config: Config, question: str) -> None:
    """The models learnt from questions ending in "?": without it the question's vector, and so what is
    retrieved and how sure the answer is, would differ."""
    bare, marked = ask(question, config=seed_config), ask(question.rstrip(".") + "?", config=seed_config)
    assert bare.text == marked.text and not bare.abstained
    assert bare.confidence == marked.confidence
    assert [p.score for p in bare.passages] == [p.score for p in marked.passages]
    assert bare.question == question


@pytest.mark.parametrize(
    "question", ["What is the capital of Australia?", "Who won the 2018 FIFA World Cup?", "How do I bake sourdough?"]
)
def test_far_questions_abstain_and_show_what_was_considered(seed_config: Config, question: str) -> None:
    answer = ask(question, config=seed_config)
    assert answer.abstained
    assert answer.citations == []
    assert answer.passages, "the closest passages are kept for the user to judge"


def test_follow_up_uses_history(seed_config: Config) -> None:
    first = ask("Who chairs the NHS Alliance?", config=seed_config)
    follow = ask(
        "Where does he work as a GP?", history=[("Who chairs the NHS Alliance?", first.text)], config=seed_config
    )
    assert "Michael Dixon" in follow.standalone_question
    assert not follow.abstained
    assert "Cullompton" in follow.text
    assert_contract(follow)


def test_a_follow_up_about_it_asks_about_the_thing_the_answer_named(seed_config: Config) -> None:
    """The chat's own answer names the organisation; "it" in the next question is that organisation."""
    question = "Which organisation represents GPs?"
    first = ask(question, config=seed_config)
    assert first.span is not None and first.span.quote == "Londonwide Local Medical Committees"
    follow = ask("Who leads it?", history=[(question, first.text)], config=seed_config)
    assert "Londonwide Local Medical Committees" in follow.standalone_question
    assert follow.span is not None and follow.span.quote == "Michelle Drage"
    assert_contract(follow)


def test_answer_from_a_comment_says_so(seed_config: Config) -> None:
    answer = ask("What did the commenter Vinci Ho say about MCPs and PACS?", config=seed_config, abstain_threshold=0.0)
    cited = answer.citations[0]
    assert cited.kind == "comment"
    assert "reader's comment" in answer.text.lower()


def test_comments_rank_below_the_article(pipeline, seed_config: Config) -> None:
    """Words that a reader's comment matches best: at full weight the comment leads, at the default
    weight the article's own passages come first."""
    question = "jobs for the boys hospitals"
    even = pipeline.retrieve(question, seed_config.replace(comment_weight=1.0, top_k=20))
    assert even[0].chunk.kind == "comment"
    default = pipeline.retrieve(question, seed_config.replace(top_k=20))
    assert default[0].chunk.kind == "body"
    rank = {p.chunk.id: p.rank for p in default}
    assert rank.get(even[0].chunk.id, 99) > even[0].rank


def test_overrides(seed_config: Config) -> None:
    answer = ask("Who chairs the NHS Alliance?", config=seed_config, top_k=1)
    assert len(answer.passages) == 1
    with pytest.raises(UnknownNameError, match="extractive"):
        ask("Who chairs the NHS Alliance?", config=seed_config, answerer="oracle")
    with pytest.raises(ConfigError, match="valid"):
        ask("Who chairs the NHS Alliance?", config=seed_config, topk=3)


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_empty_question(seed_config: Config, question: str) -> None:
    with pytest.raises(QuestionError, match="empty") as info:
        ask(question, config=seed_config)
    assert isinstance(info.value, ValueError)


def test_long_question_is_truncated_with_a_warning(seed_config: Config, caplog: pytest.LogCaptureFixture) -> None:
    question = "Who chairs the NHS Alliance? " + "Please answer carefully and in detail. " * 120
    with caplog.at_level(logging.WARNING):
        answer = ask(question, config=seed_config)
    assert any("longer than the embedding model reads" in r.getMessage() for r in caplog.records)
    assert any("longer than" in n for n in answer.notes)
    assert_contract(answer)


@pytest.mark.parametrize(
    "history",
    ["who?", [("only one",)], [("q", 3)], [["q", "a", "extra"]], 42, [{"q": "a"}]],
)
def test_malformed_history(seed_config: Config, history: object) -> None:
    with pytest.raises(HistoryError, match="history"):
        ask("Where does he work?", history=history, config=seed_config)  # type: ignore[arg-type]


def test_history_as_lists_is_accepted(seed_config: Config) -> None:
    answer = ask(
        "Where does he work as a GP?",
        history=[["Who chairs the NHS Alliance?", "Dr Michael Dixon."]],
        config=seed_config,
    )  # type: ignore[list-item]
    assert_contract(answer)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_retrieval_modes_keep_the_contract(seed_config: Config, mode: str) -> None:
    answer = ask("How many PCTs did Pulse approach?", config=seed_config, retrieval=mode)
    assert_contract(answer)
    assert "152" in answer.text


def test_a_reader_folder_brings_its_own_answerer_models(seed_config: Config, tmp_path: Path) -> None:
    """Models fitted on one reader's scores must not be used with another: they travel in its folder."""
    import json
    import shutil

    from rag import answering
    from rag.reader import READER_DIR

    for name in ("reader.onnx", "reader.json", "tokenizer.json"):
        shutil.copy(READER_DIR / name, tmp_path / name)
    models = json.loads(answering.MODEL_PATH.read_text(encoding="utf-8"))
    (tmp_path / "extractive.json").write_text(json.dumps({**models, "threshold": 0.999}), encoding="utf-8")
    question = "How many PCTs did Pulse approach?"  # one the fallback models answer well above their threshold
    assert not ask(question, config=seed_config).abstained
    assert ask(question, config=seed_config, reader_dir=str(tmp_path)).abstained
    assert not ask(question, config=seed_config, reader_dir=str(tmp_path), reader_candidates=0).abstained
    with pytest.raises(ModelLoadError, match="no span reader"):
        ask(question, config=seed_config, reader_dir=str(tmp_path / "elsewhere"))


@pytest.mark.parametrize(
    ("question", "short"),
    [
        ("Who chairs the NHS Alliance?", "Michael Dixon"),
        ("How many PCTs did Pulse approach?", "152"),
        ("What does MCP stand for?", "multispecialty community provider"),
        ("What does Michelle Drage say GPs should avoid being distracted by?", "all the noise"),
    ],
)
def test_the_short_answer_leads_and_lies_inside_the_quote(seed_config: Config, question: str, short: str) -> None:
    answer = ask(question, config=seed_config)
    span, first = answer.span, answer.citations[0]
    assert span is not None and short in span.quote and len(span.quote) < len(first.quote)
    assert span.source == first.source and first.start <= span.start < span.end <= first.end
    path = Path(span.source) if Path(span.source).is_absolute() else ROOT / span.source
    assert path.read_text(encoding="utf-8")[span.start : span.end] == span.quote
    assert answer.text.startswith(span.quote.strip(" ,;:"))
    assert span.quote == span.quote.strip(" ,;:.“”‘’\"'"), "a short answer is its words, not the marks around them"
    assert_contract(answer)


def test_an_abstention_has_no_short_answer(seed_config: Config) -> None:
    answer = ask("What is the capital of Australia?", config=seed_config)
    assert answer.abstained and answer.span is None


def test_a_short_answer_that_is_most_of_its_sentence_does_not_echo_it() -> None:
    from rag.answering import compose

    sentence = Citation(source="a.txt", quote="The ferry leaves Kirkwall at dawn every day.", start=0, end=44)
    short = Citation(source="a.txt", quote="at dawn", start=27, end=34)
    almost = Citation(source="a.txt", quote="The ferry leaves Kirkwall at dawn every day", start=0, end=43)
    assert compose([sentence], short) == "at dawn — The ferry leaves Kirkwall at dawn every day. [1]"
    assert compose([sentence], almost) == "The ferry leaves Kirkwall at dawn every day. [1]"
    assert compose([sentence]) == "The ferry leaves Kirkwall at dawn every day. [1]"


@pytest.mark.parametrize(
    ("question", "short", "echo"),
    [
        ("Which trusts are planning cuts?", "trusts", True),
        ("Which trusts are planning cuts?", "the Trusts", True),
        ("Which trusts are planning cuts?", "NHS Bury", False),
        ("Who chairs the alliance?", "Dr Michael Dixon, chair of the alliance", False),
        ("What is it?", "it", False),
        ("Who is Tom Coffey?", "Dr", True),
        ("Who is Tom Coffey?", "Dr Tom Coffey", True),
        ("Who leads the clinic?", "Dr Tom Coffey", False),
        # a follow-up's words carried from the turn before: a name among them may answer it
        ("Who is hosting it? (Ferry Users Group conference)", "Ferry Users Group", False),
        ("Who is hosting it? (Ferry Users Group conference)", "the conference", True),
        ("How many are there? (trusts planning cuts)", "trusts", True),
    ],
)
def test_a_short_answer_of_the_questions_own_words_is_no_answer(question: str, short: str, echo: bool) -> None:
    from rag.spans import echoes

    assert echoes(question, short) is echo


def test_no_short_answer_repeats_only_the_question(seed_config: Config) -> None:
    from rag.spans import echoes

    questions = [
        *QUESTIONS,
        "Which trusts are planning to cut hospital activity?",
        "Which PCTs plan to shift work?",
        "Who is Tom Coffey?",
    ]
    answers = {q: ask(q, config=seed_config) for q in questions}
    assert any(a.span is not None for a in answers.values())
    for question, answer in answers.items():
        assert answer.span is None or not echoes(question, answer.span.quote), (question, answer.span)


def one_article(tmp_path: Path, name: str, text: str, **settings: object) -> Config:
    """A corpus of one article that is not a seed, indexed under ``tmp_path``."""
    from rag.config import load_config

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / name).write_text(text, encoding="utf-8")
    return load_config(env={}, corpus=str(docs), index_dir=str(tmp_path / "index"), **settings)


FUSION = """Fusion forecast stirs debate

Last week a well-known chemist predicted that fusion power would reach the grid by 2050. The forecast came \
from Professor Ingrid Holm of Uppsala University, speaking at a conference in Lund.

Critics said the date was too hopeful. Several engineers argued that materials able to survive the reactor's \
heat do not yet exist.

The conference drew four hundred delegates from thirty countries.
"""


def test_the_reader_reports_its_best_span_beyond_the_sentence_beside_its_best_inside() -> None:
    from rag.reader import get_reader

    # the sentence the question matches names no one ("a well-known chemist" would be an answer in it)
    text = FUSION.split("\n\n")[1].replace("a well-known chemist predicted", "it was predicted")
    first = text.index(". ") + 1
    question = "Who predicted that fusion power would reach the grid by 2050?"
    narrow = get_reader().read(question, [(text, 0, first)])[0]
    read = get_reader().read(question, [(text, 0, first)], wide=True)[0]
    assert narrow.wide is None and (read.margin, read.start, read.end) == (narrow.margin, narrow.start, narrow.end)
    assert read.end <= first and "Holm" not in text[read.start : read.end]
    assert read.wide is not None and read.wide.start > first and "Ingrid Holm" in text[read.wide.start : read.wide.end]
    assert read.wide.margin >= read.margin
    titled = "Fusion forecast stirs debate\n\n" + text  # a title above: a span may not run from it into the text
    lo, hi = titled.index("Last"), titled.index(". The") + 1
    edge = get_reader().read(question, [(titled, lo, hi)], wide=True)[0].wide
    assert edge is not None and edge.start >= 0
    assert edge.end <= lo or lo <= edge.start < edge.end <= hi or edge.start >= hi


READS = [
    ("Which university is Ingrid Holm from?", "Uppsala University"),
    ("Where was the conference held?", "Lund"),
    ("How many delegates did the conference draw?", "four hundred"),
    ("By when would fusion power reach the grid?", "2050"),
    ("What did critics say about the date?", "too hopeful"),
]


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_every_numeric_path_of_the_reader_reads_what_the_shipped_graph_reads(precision: str) -> None:
    """The PyTorch paths run the shipped int8 graph's weights, dequantised: the same spans, nearly the
    same margins (the int8 graph also rounds activations, which the others do not)."""
    from rag.reader import get_reader

    shipped, other = get_reader(precision="int8"), get_reader(precision=precision)
    assert (shipped.precision, other.precision) == ("int8", precision)
    for question, short in READS:
        a = shipped.read(question, [(FUSION, 0, len(FUSION))])[0]
        b = other.read(question, [(FUSION, 0, len(FUSION))])[0]
        assert FUSION[a.start : a.end] == short, (question, FUSION[a.start : a.end])
        assert (b.start, b.end) == (a.start, a.end), (precision, question, FUSION[b.start : b.end])
        assert abs(b.margin - a.margin) < 1.0, (precision, question, a.margin, b.margin)


def test_the_int8_reader_reads_without_its_attention_mask_exactly_what_the_whole_graph_reads() -> None:
    """Windows are read one at a time at their own length, so the int8 reader runs its graph with the
    attention mask cut out (rag.reader._maskless): every logit must be the very number the whole graph gives."""
    import onnxruntime as ort

    from rag.reader import READER_DIR, Reader, _maskless

    graph = _maskless(READER_DIR / "reader.onnx")
    assert graph is not None, "the shipped reader's mask path was not found"
    cut = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    whole = ort.InferenceSession(str(READER_DIR / "reader.onnx"), providers=["CPUExecutionProvider"])
    assert {i.name for i in cut.get_inputs()} == {"input_ids", "token_type_ids"}
    tokenizer = Reader(precision="int8").tokenizer
    for question, _ in READS:
        enc = tokenizer.encode(question, FUSION)
        ids = np.array([enc.ids], dtype=np.int64)
        types = np.array([enc.type_ids], dtype=np.int64)
        want = whole.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": types})
        got = cut.run(None, {"input_ids": ids, "token_type_ids": types})
        for a, b in zip(want, got, strict=True):
            np.testing.assert_array_equal(a, b)


def test_a_graph_without_the_exporters_mask_path_is_read_whole(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    from rag.reader import _maskless

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, [1, None]) for n in ("input_ids", "attention_mask")]
    outputs = [helper.make_tensor_value_info(n, TensorProto.INT64, [1, None]) for n in ("start_logits", "end_logits")]
    nodes = [
        helper.make_node("Mul", ["input_ids", "attention_mask"], ["start_logits"], name="/qa/Mul"),
        helper.make_node("Add", ["input_ids", "attention_mask"], ["end_logits"], name="/qa/Add"),
    ]
    onnx.save(helper.make_model(helper.make_graph(nodes, "plain", inputs, outputs)), tmp_path / "reader.onnx")
    assert _maskless(tmp_path / "reader.onnx") is None


def test_an_int8_window_reads_the_same_alone_as_beside_a_longer_one() -> None:
    """The int8 graph rounds activations by a scale taken over the whole batch, padding included, so it
    reads each window at its own length: what it answers must not depend on what else is read with it."""
    from rag.reader import Reader

    reader = Reader(precision="int8")
    short = FUSION.split("\n\n")[2]
    entries = [(short, 0, len(short)), (FUSION, 0, len(FUSION))]
    question = "What did critics say about the date?"
    alone = reader.read(question, entries[:1])[0]
    beside = reader.read(question, entries, heads=["", "Fusion forecast stirs debate"])[0]
    assert short[alone.start : alone.end] == "too hopeful"
    assert (beside.start, beside.end) == (alone.start, alone.end)
    assert abs(beside.margin - alone.margin) < 1e-3 * max(1.0, abs(alone.margin)), (alone.margin, beside.margin)


def test_the_reader_reads_a_passage_with_its_articles_head_as_context_only() -> None:
    """An opinion piece names its author once, at the top; a question naming her is answered from a
    paragraph that does not, and the reader must not take her absence there for "no answer"."""
    from rag.reader import get_reader

    head = "Schools should teach sleep\nTeenagers need later starts, argues Dr Amara Osei"
    text = (
        "Most schools start too early. "
        "Let schools do what schools do best - teach reading and maths - and let families set bedtimes."
    )
    lo, hi = text.index("Let"), len(text)
    question = "What does Osei think schools are best at?"
    reader = get_reader()
    read = reader.read(question, [(text, lo, hi)], heads=[head])[0]
    assert text[read.start : read.end] == "teach reading and maths" and read.margin > 0
    wide = reader.read(question, [(text, lo, hi)], wide=True, heads=[head])[0].wide
    assert wide is not None and 0 <= wide.start < wide.end <= len(text)  # offsets in the text, never the head


def test_neighbouring_sentences_of_one_text_are_read_in_one_pass_each_for_its_own_span() -> None:
    """The answerer asks about neighbouring sentences of one passage as often as not: they share a window,
    and each read still points only inside its own sentence (and, read wide, inside its own reach)."""
    from rag.reader import Reader

    reader = Reader()
    text = FUSION.split("\n\n")[1]
    first = text.index(". ") + 1
    second = text.index(". The") + 2
    rows: list[int] = []
    scores = reader.scores
    reader.scores = lambda i, m, t: (rows.append(len(i)), scores(i, m, t))[1]
    question = "Who predicted that fusion power would reach the grid by 2050?"
    entries = [(text, 0, first), (text, second, len(text))]
    reads = reader.read(question, entries, wide=True, reach=[(0, first), (0, len(text))])
    assert rows == [1]
    assert reads[0].end <= first and reads[1].start >= second
    assert "Ingrid Holm" in text[reads[1].start : reads[1].end]
    assert reads[0].wide is not None and reads[0].wide.end <= first  # its reach ends with its sentence
    alone = [reader.read(question, [entry])[0] for entry in entries]
    assert [(r.start, r.end) for r in alone] == [(r.start, r.end) for r in reads]
    heads = ["Fusion forecast stirs debate", "Another head"]
    rows.clear()
    reader.read(question, entries, heads=heads)
    assert rows == [2]  # read under different heads: two windows


def test_the_answerer_reads_leaders_with_overlapping_neighbourhoods_in_one_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag.reader import Reader

    config = one_article(tmp_path, "fusion.txt", FUSION)
    calls: list[tuple[list, list]] = []
    original = Reader.read

    def spy(self: Reader, question: str, texts: list, **settings: object):
        calls.append((list(texts), list(settings.get("reach") or [])))  # type: ignore[call-overload]
        return original(self, question, texts, **settings)  # type: ignore[arg-type]

    monkeypatch.setattr(Reader, "read", spy)
    answer = ask("Who predicted that fusion power would reach the grid by 2050?", config=config)
    assert answer.span is not None and "Ingrid Holm" in answer.span.quote
    (texts, reach), *_ = calls
    assert len(texts) == 3 and len({t for t, _, _ in texts}) < 3  # one passage: its leaders are neighbours
    for (text, lo, hi), (a, b) in zip(texts, reach, strict=True):
        assert 0 <= a <= lo < hi <= b <= len(text)


def test_the_reader_takes_the_numeric_path_the_embedder_takes() -> None:
    from rag.config import load_config
    from rag.embedding import choose_precision
    from rag.reader import reader_precision

    for precision in ("int8", "bf16", "fp32"):
        assert reader_precision(load_config(env={}, precision=precision)) == precision
    assert reader_precision(load_config(env={})) == choose_precision("auto").precision


def test_an_answer_named_a_sentence_away_is_cited_with_the_sentence_the_question_matched(tmp_path: Path) -> None:
    """The question's words are in one sentence, the name it asks for in the next: the answer quotes the
    name's sentence first (the short answer lies inside it) and the matched sentence as its support."""
    config = one_article(tmp_path, "fusion.txt", FUSION)
    answer = ask("Who predicted that fusion power would reach the grid by 2050?", config=config)
    assert_contract(answer)
    assert answer.span is not None and "Ingrid Holm" in answer.span.quote
    named, matched = answer.citations
    assert named.start <= answer.span.start < answer.span.end <= named.end
    assert "predicted" in matched.quote and "Holm" not in matched.quote
    assert answer.text.startswith(answer.span.quote)
    single = ask("How many delegates did the conference draw?", config=config)
    assert_contract(single)
    assert len(single.citations) == 1 and "four hundred" in single.span.quote
    from rag.answering import get_answerer
    from rag.pipeline import get_pipeline

    pipeline = get_pipeline(config)
    query, _ = pipeline.query("Who predicted that fusion power would reach the grid by 2050?")
    passages = pipeline.retriever.search(query, config)
    answerer = get_answerer(config, pipeline.data, pipeline.retriever)
    again = answerer.answer(query, passages, exclude=[named.quote])  # "what else…": not the same quote again
    assert all(c.quote != named.quote for c in again.citations)


HARBOUR = """Harbour towns weigh the cost of rising seas

By Marta Kowalczyk

Councils along the east coast met on Tuesday to compare plans for sea walls, pumping stations and managed
retreat. Several said the national budget for flood defence had not kept pace with the damage of recent
winters, and that small towns could not raise the sums alone.

The meeting heard from engineers, insurers and residents. Insurers warned that premiums in the lowest-lying
streets had doubled in five years, and residents described homes that could no longer be sold. Engineers
said that the oldest defences, built after the floods of 1953, were near the end of their design life.

In Saltmarsh Bay, the council has already voted to move its lifeboat station inland by four hundred metres.
The harbour master said the old slipway now floods on most spring tides, and that the new station would
open in the autumn of next year. Fishermen said they would keep their boats in the old harbour.

A second session looked at dredging. Dredging the channel at Saltmarsh Bay would cost about two million
pounds, the harbour master said, and would have to be repeated every few years as the sand returned.
"""


def test_an_articles_head_is_its_title_and_opening_sentence_never_its_byline(tmp_path: Path) -> None:
    from rag.evidence import article_head
    from rag.pipeline import get_pipeline

    config = one_article(tmp_path, "harbour.txt", HARBOUR)
    pipeline = get_pipeline(config)
    query, _ = pipeline.query("How far will the lifeboat station move inland?")
    passage = pipeline.retriever.search(query, config)[0]
    title, opening, end = article_head(pipeline.data, passage)
    assert title == "Harbour towns weigh the cost of rising seas"
    assert opening.startswith("Councils along the east coast") and "Kowalczyk" not in opening
    assert pipeline.source_text(passage.source)[:end].endswith(opening)


def test_a_title_less_piece_is_read_under_no_headline_not_under_its_lead_words(tmp_path: Path) -> None:
    """The display title of a piece with no title (and a file name of no words) is its opening words; read
    as a headline, they are a text the reader never met in training, and a window that holds the opening
    reads it twice."""
    from rag.evidence import article_head
    from rag.pipeline import get_pipeline

    body = HARBOUR.split("\n\n", 2)[2]
    config = one_article(tmp_path, "0042_9f3a11.txt", body)
    pipeline = get_pipeline(config)
    query, _ = pipeline.query("How far will the lifeboat station move inland?")
    passage = pipeline.retriever.search(query, config)[0]
    assert passage.title.startswith("Councils along the east coast")  # what the UI shows
    title, opening, _ = article_head(pipeline.data, passage)
    assert title == "" and opening.startswith("Councils along the east coast")


def test_who_wrote_a_piece_is_answered_by_its_byline_when_only_a_later_passage_matches(tmp_path: Path) -> None:
    """The byline sits at the top of the article; the question names what a later passage is about."""
    config = one_article(tmp_path, "harbour.txt", HARBOUR, chunk_tokens=64)
    question = "Who wrote the piece about moving the lifeboat station in Saltmarsh Bay?"
    answer = ask(question, config=config)
    assert_contract(answer)
    assert answer.span is not None and answer.span.quote == "Marta Kowalczyk"
    from rag.pipeline import get_pipeline

    pipeline = get_pipeline(config)
    query, _ = pipeline.query(question)
    passages = pipeline.retriever.search(query, config)
    assert len(passages) == config.top_k and [p.rank for p in passages] == list(range(1, config.top_k + 1))
    assert passages[1].chunk.start == 0 and "Marta Kowalczyk" in passages[1].chunk.text  # after the best passage
    assert "Marta Kowalczyk" not in passages[0].chunk.text


SHIPYARD = """Shipyard apprentices face a longer wait for their tickets

By Tomasz Wierzbicki

A union leader has warned that half of the apprentices at the Clydeside yards will not qualify this year.

The warning from Fiona MacLeod, general secretary of the shipbuilders' union, came as the yards announced a
hiring freeze that will last until the spring.

Inspectors from the Royal Institution of Naval Architects visited the yards in March and found that the
welding workshops lacked the equipment that the final assessments need. The yards said new equipment had
been ordered but would not arrive before the summer.

Apprentices said the delay would cost them a year's pay at the full rate. Several said they had already been
offered work in Norway, where training is shorter and the pay is higher.

A RINA spokesperson said the assessments would resume as soon as the workshops met the standard, and that
no apprentice would have to repeat the work already signed off.
"""


@pytest.fixture
def shipyard(tmp_path: Path):
    """One news article, not a seed, in short chunks so that its parts land in different passages."""
    return one_article(tmp_path, "shipyard.txt", SHIPYARD, chunk_tokens=64)


def test_an_abbreviation_is_spelt_out_from_a_name_the_article_writes_in_full_elsewhere(shipyard) -> None:
    """No "(RINA)" anywhere: the article names the institution in full once, in another passage, and
    abbreviates it later; the answer is the name whose capitalised words spell the abbreviation."""
    answer = ask("What does RINA stand for?", config=shipyard)
    assert_contract(answer)
    assert answer.span is not None and answer.span.quote == "Royal Institution of Naval Architects"


def test_a_byline_answers_only_who_wrote_the_piece(shipyard) -> None:
    """The reporter's name sits beside the lead ("A union leader has warned…"); it is not who warned."""
    warned = ask("Who warned that half of the apprentices will not qualify?", config=shipyard)
    assert_contract(warned)
    assert "Wierzbicki" not in warned.text
    wrote = ask("Who wrote the piece about the apprentices?", config=shipyard)
    assert wrote.span is not None and wrote.span.quote == "Tomasz Wierzbicki"


def _best_by_loop(s, e, null: float, tokens: list[int], shift: int, offsets) -> tuple[float, int, int]:
    """The span search as first written, pair by pair: the reference the vectorised one must match."""
    s, e = s[[t + shift for t in tokens]], e[[t + shift for t in tokens]]
    top, span = -1e9, (0, 0)
    for a in np.argsort(-s)[:20]:
        for b in np.argsort(-e)[:20]:
            if a <= b < a + 30 and s[a] + e[b] > top:
                top, span = float(s[a] + e[b]), (int(a), int(b))
    return top - null, offsets[tokens[span[0]]][0], offsets[tokens[span[1]]][1]


@pytest.mark.parametrize("seed", range(20))
def test_the_best_span_is_the_best_pair_of_ends_within_thirty_tokens(seed: int) -> None:
    from rag.reader import MAX_ANSWER_TOKENS, _best

    assert MAX_ANSWER_TOKENS == 30
    rng = np.random.default_rng(seed)
    n, shift = int(rng.integers(1, 120)), int(rng.integers(0, 40))
    starts = rng.normal(size=n + shift + 1).astype(np.float32)
    ends = rng.normal(size=n + shift + 1).astype(np.float32)
    if seed % 4 == 0:  # ends that come before every good start: few or no valid pairs among the leaders
        starts[shift : shift + n] = np.linspace(-3, 3, n, dtype=np.float32)
        ends[shift : shift + n] = np.linspace(3, -3, n, dtype=np.float32)
    tokens = sorted(rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False).tolist())
    offsets = [(5 * t, 5 * t + 4) for t in range(n)]
    read = _best(starts, ends, 0.25, tokens, shift, offsets)
    margin, start, end = _best_by_loop(starts, ends, 0.25, tokens, shift, offsets)
    assert (read.start, read.end) == (start, end)
    assert read.margin == pytest.approx(margin, abs=1e-5)


def _word_scores(text: str, spans: dict[tuple[int, int], tuple[float, float]]):
    """One token a word; each (first, last) word pair given its start and end scores, the rest -5."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\w+", text)]
    starts = np.full(len(words), -5.0, dtype=np.float32)
    ends = np.full(len(words), -5.0, dtype=np.float32)
    for (first, last), (start, end) in spans.items():
        starts[first], ends[last] = start, end
    return words, starts, ends, list(range(len(words)))


def test_a_span_given_before_gives_way_to_the_next_best_with_its_own_margin() -> None:
    """ "What else…?": the reader's best span was the answer already given; the text answers only if it
    holds something more, so the margin is that of the best span not given before."""
    from rag.reader import _best

    text = "The council will close two libraries and sell the fire station."
    words, starts, ends, tokens = _word_scores(text, {(4, 5): (4.0, 4.0), (7, 10): (1.0, 2.0)})
    lo, hi = text.index("two libraries"), text.index("two libraries") + len("two libraries")
    read = _best(starts, ends, 1.0, tokens, 0, words, None, lambda a, b: a < hi and lo < b)
    assert text[read.start : read.end] == "sell the fire station" and read.margin == pytest.approx(2.0)
    nothing = _best(starts, ends, 1.0, tokens, 0, words, None, lambda a, b: True)
    assert nothing.start < 0 and nothing.margin < -100


def test_what_counts_as_repeating_an_answer_given_before() -> None:
    from rag.spans import repeats

    text = "The meeting takes place at BMA headquarters in Central London, with cardiology and schools."
    test = repeats(["Central London", "cardiology clinics"])

    def at(phrase: str) -> tuple[int, int]:
        i = text.index(phrase)
        return i, i + len(phrase)

    assert test(text, *at("Central London")) and test(text, *at("London"))  # where the text says it
    assert test(text, *at("BMA headquarters"))  # "… in Central London": the place given, refined
    assert test(text, *at("card"))  # a piece of a word
    assert test(text, *at("with"))  # says nothing
    assert test(text, *at("cardiology"))  # mostly its words
    assert not test(text, *at("schools")) and not test(text, *at("The meeting"))


BUDGET = """Market town sets out a leaner budget

By Ana Ruiz

The town council will close two branch libraries next spring, and it also plans to sell the old fire \
station to a housing association.

Councillors said the savings would protect the weekly bin collection and the bus subsidy for rural \
villages. The budget was approved by nine votes to four on Monday evening.

Opposition members argued that the libraries were used by hundreds of schoolchildren every week and \
that the fire station could have become a youth centre.
"""


def test_what_else_finds_the_rest_of_a_sentence_already_quoted(tmp_path: Path) -> None:
    """The first answer was one of two things its sentence says; "what else…?" quotes the sentence again
    for the other, instead of dropping it as said."""
    config = one_article(tmp_path, "budget.txt", BUDGET)
    for first, then, more in [
        ("What will the town council close?", "What else does it plan?", "fire station"),
        ("What did opposition members argue?", "What else did they say?", "youth centre"),
    ]:
        said = ask(first, config=config)
        assert_contract(said)
        again = ask(then, history=[(first, said.text)], config=config)
        assert_contract(again)
        assert again.span is not None and more in again.span.quote, (then, again.text)
        assert again.span.quote not in said.span.quote and said.span.quote not in again.span.quote


def test_a_span_that_only_repeats_the_question_gives_way_to_the_next_best_keeping_its_margin() -> None:
    """ "Who is Tom Coffey?" read "Dr" as its best span: the answer then showed no short answer at all."""
    from rag.reader import _best

    text = "Dr Tom Coffey, the clinical lead for polysystems, said so."
    words, starts, ends, tokens = _word_scores(text, {(0, 0): (4.0, 4.0), (4, 7): (3.0, 3.5)})
    plain = _best(starts, ends, 1.0, tokens, 0, words)
    assert text[plain.start : plain.end] == "Dr" and plain.margin == pytest.approx(7.0)
    read = _best(starts, ends, 1.0, tokens, 0, words, lambda a, b: text[a:b] in {"Dr", "Tom Coffey", "Dr Tom"})
    assert text[read.start : read.end] == "Dr Tom Coffey, the clinical lead for polysystems"  # 4 + 3.5
    strict = _best(starts, ends, 1.0, tokens, 0, words, lambda a, b: text[a:b].startswith(("Dr", "Tom")))
    assert text[strict.start : strict.end] == "clinical lead for polysystems" and strict.margin == plain.margin
    assert read.margin == plain.margin
    everything = _best(starts, ends, 1.0, tokens, 0, words, lambda a, b: True)
    assert (everything.start, everything.end) == (plain.start, plain.end)


@pytest.mark.parametrize(
    ("question", "span", "short"),
    [
        ("Who is Tom Coffey?", "Dr Tom Coffey, the clinical lead for polysystems", "the clinical lead for polysystems"),
        ("Who is Tom Coffey?", "Tom Coffey (the clinical lead)", "Tom Coffey (the clinical lead)"),
        ("Who chairs the panel?", "Dr Tom Coffey, the clinical lead", "Dr Tom Coffey, the clinical lead"),
        ("Who is Tom Coffey?", "Dr Tom Coffey,", "Dr Tom Coffey,"),
        ("What did the council vote for?", "Saltmarsh Bay, Kent", "Saltmarsh Bay, Kent"),
    ],
)
def test_a_short_answer_drops_a_lead_the_question_already_says(question: str, span: str, short: str) -> None:
    from rag.spans import unasked

    text = f"Yesterday {span} said so."
    start, end = len("Yesterday "), len("Yesterday ") + len(span)
    assert text[unasked(question, text, start, end) : end] == short


def test_lexical_terms_are_the_same_cached_and_a_caller_cannot_change_them() -> None:
    from rag.retrieval import tokenize

    text = "Besançon's surgeries were merging into larger practices"
    first = tokenize([text, "an unseen sentence about clinics"])
    first[0].append("tampered")
    again = tokenize([text])
    assert "tampered" not in again[0]
    assert again[0] == first[0][:-1] == ["besancon", "surgeri", "were", "merg", "larger", "practic"]


def test_who_is_answered_with_the_name_beside_a_sentence_that_names_no_one(tmp_path: Path) -> None:
    """ "A union leader has warned…" matches the question; the next sentence names her. A user asking
    "who…?" wants the name, not "union leader"."""
    config = one_article(tmp_path, "shipyard.txt", SHIPYARD)
    answer = ask("Who warned that half of the apprentices will not qualify?", config=config)
    assert_contract(answer)
    assert answer.span is not None and answer.span.quote == "Fiona MacLeod"
    named, matched = answer.citations
    assert named.start <= answer.span.start < answer.span.end <= named.end
    assert "warned" in matched.quote and "Wierzbicki" not in answer.text
    where = ask("Where are the yards whose apprentices will not qualify?", config=config)
    assert where.span is not None and "Clydeside" in where.span.quote


def test_a_follow_up_about_it_after_how_many_finds_the_leader(seed_config: Config) -> None:
    question = "How many GPs does Londonwide Local Medical Committees represent?"
    first = ask(question, config=seed_config)
    assert first.span is not None and "7000" in first.span.quote
    leader = ask("Who leads it?", history=[(question, first.text)], config=seed_config)
    assert_contract(leader)
    assert leader.span is not None and "Drage" in leader.span.quote, leader.text


FERRY = """Island ferry timetable under review

By Morag Sinclair

The council has hired Dr Eilidh Rennie, who ran the mainland bus franchise until last year, to review the \
winter ferry timetable for the northern isles.

Residents have complained for years that the last sailing leaves the mainland before most shifts end. The \
operator is believed to want the present timetable kept, while Dr Rennie has indicated she favours crews \
working split shifts.

Councillors will vote on the review in March, and the operator says any change would need a new crew rota.
"""


def test_a_person_asked_about_in_full_is_found_under_title_and_surname(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """News names a person in full once, then "Dr Rennie": the reader reads that as "Dr Eilidh Rennie"
    when the question does, and is surer of the answer than when it must guess the two are one."""
    config = one_article(tmp_path, "ferry.txt", FERRY)
    answer = ask("What does Eilidh Rennie favour?", config=config)
    assert_contract(answer)
    assert answer.span is not None and answer.span.quote == "crews working split shifts"
    assert "Dr Rennie has indicated" in answer.citations[0].quote
    import rag.evidence
    import rag.spans

    monkeypatch.setattr(rag.evidence, "names_in_full", lambda *_: [])
    monkeypatch.setattr(rag.spans, "names_in_full", lambda *_: [])
    unaided = ask("What does Eilidh Rennie favour?", config=config)
    assert answer.confidence > unaided.confidence + 0.05


def test_a_follow_up_is_answered_by_a_name_its_context_carries(seed_config: Config) -> None:
    """ "Who is hosting it?" after a question about the Londonwide LMCs conference: the rewrite carries
    "Londonwide LMCs conference", and the name among those words is the answer, not an echo."""
    first = "When is the Londonwide LMCs conference?"
    before = ask(first, config=seed_config)
    answer = ask("Who is hosting it?", history=[(first, before.text)], config=seed_config)
    assert_contract(answer)
    assert answer.span is not None and answer.span.quote == "Londonwide LMCs"
    assert answer.text.startswith("Londonwide LMCs — ")


def test_a_leader_moved_onto_the_best_sentence_is_no_rival_to_it(pipeline, seed_config: Config) -> None:
    """The reader may move a leader to its neighbour, which can be the sentence another leader already
    is: the best answer's lead over the rest must not count that copy of itself."""
    from rag.answering import ExtractiveAnswerer
    from rag.evidence import answerable_features

    query, _ = pipeline.query("Who chairs the NHS Alliance?")
    passages = pipeline.retriever.search(query, seed_config)
    answerer = ExtractiveAnswerer(seed_config, pipeline.data, pipeline.retriever)
    ranked = answerer.rank(query, passages)
    top, rest = ranked[0], ranked[1:]
    copy = dataclasses.replace(top, features={**top.features, "select_logit": top.features["select_logit"] - 1.0})
    alone = answerable_features([top, *rest], passages)
    assert answerable_features([top, copy, *rest], passages) == alone
    assert alone["reader_margin"] > 0 and alone["select_margin"] > 0


@pytest.mark.parametrize(
    ("short", "long"),
    [
        ("LMCs", "Local Medical Committees"),  # a name written out in full, in an article that says "LMCs"
        ("PACS", "primary and acute care systems"),  # "primary and acute care systems (PACS)"
        ("GP", None),  # two letters: only brackets would do, and the seeds never define it
        ("QXZ", None),  # no document uses it
    ],
)
def test_an_abbreviation_is_spelt_out_as_the_documents_spell_it(pipeline, short: str, long: str | None) -> None:
    assert pipeline.retriever.spelt_out(short) == long


def test_a_question_in_abbreviations_is_searched_again_spelt_out(pipeline, seed_config: Config) -> None:
    """ "Londonwide LMCs" in the question, "Londonwide Local Medical Committees, which represents over 7000
    GPs" in the article: searched as asked, the sentence is not among the passages, and the answer abstains;
    searched again with the abbreviation spelt out, it is found."""
    question = "How many GPs does Londonwide LMCs represent?"
    query, _ = pipeline.query(question)
    first = pipeline.retriever.search(query, seed_config)
    assert not any("over 7000" in p.chunk.text for p in first)
    spelt = pipeline.spelt_out(query)
    assert spelt is not None and spelt.search is not None
    assert spelt.search.text == "How many GPs does Londonwide Local Medical Committees represent?"
    assert any("over 7000" in p.chunk.text for p in pipeline.retriever.search(spelt, seed_config))
    answer = ask(question, config=seed_config)
    assert not answer.abstained and answer.span is not None and answer.span.quote == "over 7000"
    assert "searched again with “LMCs” as “Local Medical Committees”" in answer.notes
    assert_contract(answer)
    assert pipeline.spelt_out(pipeline.query("What does LMC stand for?")[0]) is None


def test_a_yes_or_no_question_is_answered_by_the_sentence_not_a_phrase_of_it(seed_config: Config) -> None:
    """No phrase of "NHS Sefton aims to cut … yet also plans a 10% cut in primary care spending" says yes or
    no; "10%", the reader's span, would read as the answer. The sentence is quoted, with no short answer."""
    answer = ask("Is NHS Sefton cutting primary care spending?", config=seed_config)
    assert not answer.abstained and answer.span is None
    assert "10% cut in primary care spending" in answer.citations[0].quote
    assert not answer.text.startswith("10%")
    assert_contract(answer)


MINUTES = """Harbour board meeting, 12 March 2024

Present: Ana Ruiz (chair), Ewan Flett, Rhona Tait

The board discussed the state of the north pier after the January storms. Ewan Flett reported that the \
engineers estimate repairs at two million pounds.

The board agreed to apply to the Marine Fund for half of the cost.
"""


def test_who_was_present_is_answered_with_everyone_present(tmp_path: Path) -> None:
    config = one_article(tmp_path, "minutes.txt", MINUTES)
    answer = ask("Who was present?", config=config)
    assert answer.span is not None and answer.span.quote == "Ana Ruiz (chair), Ewan Flett, Rhona Tait"
    assert_contract(answer)


YARD_HISTORY = """The Lund yard: a short history

Ivar Lund founded the shipyard at Arendal in 1901 with two slipways and forty men. He died in 1932 without
an heir, and the yard passed to his foreman.

Karin Berg, the foreman's daughter, ran the yard from 1938 until 1950. She died in 1961, the year the last
wooden hull left the slipway.
"""


def test_a_sentence_led_by_a_pronoun_matches_the_names_of_the_sentence_before_it(tmp_path: Path) -> None:
    """ "He died in 1932" is about the Ivar Lund the sentence before names: for "When did Ivar Lund die?"
    it matches those names, and "She died in 1961", about someone else, does not."""
    from rag.evidence import candidates
    from rag.pipeline import get_pipeline

    config = one_article(tmp_path, "yard.txt", YARD_HISTORY)
    pipeline = get_pipeline(config)
    question = "When did Ivar Lund die?"
    query, _ = pipeline.query(question)
    passages = pipeline.retriever.search(query, config)
    cands = candidates(query, passages, pipeline.data, pipeline.retriever, question)
    found = {c.text.split(" in ")[0]: c.features for c in cands}
    assert found["He died"]["lex_recall"] > found["She died"]["lex_recall"]
    answer = ask(question, config=config)
    assert answer.span is not None and answer.span.quote == "1932"


HARBOUR_VIEW = """Our harbour cannot wait for another summer

The town council has spent three years debating the old harbour. Every autumn the storms take another piece of \
the breakwater, and every spring the repairs cost more than the year before.

Fishermen have told me that they now lose a week of work each month when the swell is high. Boats that once \
sheltered behind the wall now run for the next bay.

The council's plan would rebuild the breakwater in stages over ten years. That is too slow, and each stage would \
leave the inner moorings open to the winter storms.

Repair must start with the northern pier. It carries the fuel line and the lifeboat slip, and if it fails the \
whole harbour closes.

Money is the usual excuse. Yet the regional fund has offered to match every euro the town raises this year, and \
the offer lapses in December.

The town has a choice between acting now and paying twice as much later. I know which one the fishermen would make.

Marta Quintela is harbourmaster of Vila Nova and chairs the Fishermen's Cooperative.
"""
HARBOUR_REPORT = """Harbourmaster presents annual report

Marta Quintela, harbourmaster of Vila Nova, presented her annual report to the council on Monday.

The harbourmaster of Vila Nova said that 212 vessels had used the harbour during the year, up from 190.

Ms Quintela said the harbourmaster's office had recorded fourteen days on which the harbour was closed to traffic.

The harbourmaster of Vila Nova also reported that the new fuel prices had cut the number of visiting yachts.

Marta Quintela thanked the volunteer crews of the lifeboat, which was launched nine times.

The harbourmaster's report will be published on the council website next week.
"""


def test_according_to_someone_an_opinion_piece_names_in_its_sign_off_is_answered_from_that_piece(
    tmp_path: Path,
) -> None:
    """The piece names its writer once, at the end; a report names her in every sentence and says nothing
    about boats. The clause says whose words the answer is: the writer's whole piece matches it, and the
    reader reads the sign-off as the piece's headline."""
    from rag.pipeline import get_pipeline
    from rag.retrieval import credited_terms

    config = one_article(tmp_path, "harbour-view.txt", HARBOUR_VIEW)
    (Path(config.corpus) / "annual-report.txt").write_text(HARBOUR_REPORT, encoding="utf-8")
    question = "What do boats do now, according to the harbourmaster of Vila Nova?"
    pipeline = get_pipeline(config)
    piece = next(source for source in pipeline.data.chunks_of if source.endswith("harbour-view.txt"))
    named, line = pipeline.retriever.credit(piece, credited_terms(question))
    assert line.startswith("Marta Quintela is harbourmaster") and len(named) == 3
    answer = ask(question, config=config)
    assert answer.span is not None and answer.span.quote == "run for the next bay"
    assert answer.citations[0].source == piece


@pytest.mark.parametrize(
    ("request_", "named"),
    [
        ("Tell me about the northern pier", "northern pier"),
        ("Marta Quintela", "Marta Quintela"),
        ("Describe the regional fund", "regional fund"),
    ],
)
def test_a_request_about_a_topic_quotes_what_the_documents_say_of_it(tmp_path: Path, request_: str, named: str) -> None:
    """Not a question, so no short answer: the sentences that hold the topic's words, cited."""
    config = one_article(tmp_path, "harbour-view.txt", HARBOUR_VIEW)
    (Path(config.corpus) / "annual-report.txt").write_text(HARBOUR_REPORT, encoding="utf-8")
    answer = ask(request_, config=config)
    assert not answer.abstained and answer.span is None and answer.citations
    assert named.lower() in answer.citations[0].quote.lower()
    assert_contract(answer)


def test_a_request_about_a_topic_the_documents_never_name_is_not_answered(tmp_path: Path) -> None:
    config = one_article(tmp_path, "harbour-view.txt", HARBOUR_VIEW)
    for request_ in ("Tell me about the airport", "Brexit"):
        answer = ask(request_, config=config)
        assert answer.abstained and answer.text == "The documents don't say.", request_


@pytest.mark.parametrize(
    ("sentence", "leans"),
    [
        ("The only way to do this is to pull together and be in control of the agenda.'", True),
        ("‘All practices will be expected to be part of polysystems eventually.'", True),
        ("This could be an opportunity for GPs.", True),
        ("He died in 1932 without an heir.", True),
        ("Dr Michael Dixon said he expected every centre to move to polysystems.", False),
        ("GP leader: ‘All practices will be part of polysystems’", False),
        ("The BMA's rally takes place tonight.", False),
    ],
)
def test_a_sentence_pointing_back_or_inside_an_unattributed_quote_does_not_stand_alone(
    sentence: str, leans: bool
) -> None:
    from rag.evidence import leans_back

    assert leans_back(sentence) is leans


def test_a_request_about_someone_named_only_in_a_byline_quotes_the_byline(tmp_path: Path) -> None:
    piece = "Ferry fares to rise in May\n\nBy Ana Lima\n\nFares on the island ferries will rise by a tenth in May.\n"
    config = one_article(tmp_path, "fares.txt", piece)
    answer = ask("Ana Lima", config=config)
    assert not answer.abstained and answer.citations[0].quote == "By Ana Lima"
    assert ask("When will fares rise?", config=config).citations[0].quote != "By Ana Lima"


HARBOUR_PLANS = """Council sets out harbour plans

By Ana Ruiz

The harbour committee met on Monday to agree its spending for the coming year, after a long debate about \
the state of the piers.

The committee agreed three priorities:

• rebuilding the north pier, which was damaged in the January storms

• dredging the inner basin so that larger ferries can berth at low tide

• installing electric charging points for the fishing fleet

The chair, Rhona Tait, said the work would begin in the spring.
"""


@pytest.mark.parametrize("chunk_tokens", [400, 40])
def test_a_line_leading_into_a_list_is_answered_with_the_list(tmp_path: Path, chunk_tokens: int) -> None:
    """The items are the answer, also where the list runs on into the next chunk (40 tokens)."""
    config = one_article(tmp_path, "plans.txt", HARBOUR_PLANS, chunk_tokens=chunk_tokens, chunk_overlap=8)
    answer = ask("What priorities did the harbour committee agree?", config=config)
    assert_contract(answer)
    assert [c.quote for c in answer.citations] == [
        "The committee agreed three priorities:",
        "• rebuilding the north pier, which was damaged in the January storms",
        "• dredging the inner basin so that larger ferries can berth at low tide",
        "• installing electric charging points for the fishing fleet",
    ]
    assert answer.span is None and answer.text.startswith("The committee agreed three priorities: [1]\n• rebuilding")
    single = ask("What priorities did the harbour committee agree?", config=config, max_answer_sentences=1)
    assert len(single.citations) == 1


def test_a_list_answer_renders_its_items_one_a_line_naming_the_source_once(tmp_path: Path) -> None:
    from ui.app import render_answer

    config = one_article(tmp_path, "plans.txt", HARBOUR_PLANS)
    answer = ask("What priorities did the harbour committee agree?", config=config)
    page = render_answer(answer, 1, {})
    assert page.count("<br>• ") == 3  # each item on a line of its own
    assert page.count("Council sets out harbour plans</a>") == 1 and page.count("class='same-source'") == 3
    assert page.count("<blockquote>") == 4


def test_a_quote_wrapped_in_its_source_reads_as_one_line_under_the_answer() -> None:
    """A PDF's lines end where the page did ("The default weight value is" / "50, and the maximum is
    100."): under the answer the quote reads as the sentence it is; the viewer shows the page as it is."""
    from rag.types import Answer, Citation
    from ui.app import render_answer

    quote = "The default weight value is\n50, and the maximum is 100."
    cited = Citation("spec.pdf", quote, 10, 10 + len(quote), "Shared MIME-info Database", "body", None, 4)
    answer = Answer(text=f"{' '.join(quote.split())} [1]", abstained=False, citations=[cited], confidence=0.8)
    page = render_answer(answer, 1, {})
    assert "<blockquote>The default weight value is 50, and the maximum is 100.</blockquote>" in page


TIDEWATCH = """# Tidewatch

Tidewatch is a small command-line tool that predicts high and low water for Scottish harbours.

## Installing

Install it with pip.

## Getting help

Please post questions in the project's issue tracker. If you work at the harbour board, ask the duty officer \
instead.
"""


def test_a_heading_the_question_matched_is_not_quoted_as_support(tmp_path: Path) -> None:
    """The reader finds the answer under the heading the question matched ("Getting help"); the heading
    itself says nothing more, so only the answer is quoted."""
    from rag.pipeline import get_pipeline

    config = one_article(tmp_path, "tidewatch.md", TIDEWATCH)
    (Path(config.corpus) / "ferries.md").write_text(
        "# Ferry timetable notes\n\nThe summer timetable starts in May. Sailings to Scrabster leave at seven in the "
        "morning and at four in the afternoon.\n",
        encoding="utf-8",
    )
    for question, quote in [
        ("What is Tidewatch?", "Tidewatch is a small command-line tool"),
        ("How do I get help with Tidewatch?", "Please post questions in the project's issue tracker."),
    ]:
        answer = ask(question, config=config)
        assert_contract(answer, get_pipeline(config).source_text)  # offsets index the text read from Markdown
        assert [c.quote[: len(quote)] for c in answer.citations] == [quote]


TIDEWATCH_GUIDE = """# Tidewatch user guide

Tidewatch is a small command-line tool that predicts high and low water for Scottish harbours.

## Installing Tidewatch

Tidewatch needs Python 3.10 or newer. To install Tidewatch, open a terminal and enter the following command:

```
pip install tidewatch
```

The command downloads Tidewatch and the tide tables it reads.

## Running Tidewatch

Run Tidewatch with the name of a harbour to see the next four tides there. Tidewatch prints each tide on a
line of its own, high water first. Tidewatch reads the tide tables from your home folder, so Tidewatch works
without a network once installed.

## Tidewatch and daylight saving

Tidewatch gives every time in local time. In summer Tidewatch adds an hour to the times in its tables, and
Tidewatch says so beside each time it changed.

## Updating Tidewatch

Tidewatch checks for new tide tables once a month. If Tidewatch finds that its tables are out of date,
Tidewatch warns you before it prints any tide.

## Reporting problems with Tidewatch

If Tidewatch gives a time you believe is wrong, report it in the Tidewatch issue tracker with the harbour, the
date and the time Tidewatch printed.

## Tidewatch and spring tides

Tidewatch marks spring tides with a star. When Tidewatch sees a spring tide coming, Tidewatch tells you, and
Tidewatch keeps a note of it in the Tidewatch log.


## Tidewatch and storm surges

Tidewatch cannot predict storm surges. When Tidewatch hears of a surge warning, Tidewatch tells you, and
Tidewatch keeps a note of it in the Tidewatch log.


## Tidewatch and ferries

Tidewatch lists the ferries that need high water. When Tidewatch sees a ferry that cannot sail, Tidewatch
tells you, and Tidewatch keeps a note of it in the Tidewatch log.


## Tidewatch and fishing boats

Tidewatch shows when fishing boats can leave. When Tidewatch finds the bar too shallow, Tidewatch tells you,
and Tidewatch keeps a note of it in the Tidewatch log.


## Tidewatch and moon phases

Tidewatch prints the moon's phase beside each tide. When Tidewatch sees a new moon, Tidewatch tells you, and
Tidewatch keeps a note of it in the Tidewatch log.


## Tidewatch and harbour names

Tidewatch accepts Gaelic and English harbour names. When Tidewatch cannot find a harbour, Tidewatch tells you,
and Tidewatch keeps a note of it in the Tidewatch log.
"""


@pytest.mark.parametrize("chunk_tokens", [400, 40])
def test_a_sentence_leading_into_a_command_is_answered_with_the_command(tmp_path: Path, chunk_tokens: int) -> None:
    """ "…enter the following command:" answers nothing by itself; the code block after it is the answer, also
    where it opens the next chunk (40 tokens), which the search need not have returned."""
    from rag.pipeline import get_pipeline

    config = one_article(tmp_path, "tidewatch.md", TIDEWATCH_GUIDE, chunk_tokens=chunk_tokens, chunk_overlap=8)
    answer = ask("How do I install Tidewatch?", config=config)
    assert_contract(answer, get_pipeline(config).source_text)  # offsets index the text read from Markdown
    assert [c.quote for c in answer.citations[:2]] == [
        "To install Tidewatch, open a terminal and enter the following command:",
        "pip install tidewatch",
    ]
    assert len(ask("How do I install Tidewatch?", config=config, max_answer_sentences=1).citations) == 1


def test_what_is_x_is_answered_by_the_sentence_defining_x_where_every_passage_names_x(tmp_path: Path) -> None:
    """In a manual every passage names Tidewatch, most of them more often than the one sentence that says
    what it is; that sentence's passage is searched for in each article retrieved."""
    from rag.pipeline import get_pipeline

    config = one_article(tmp_path, "tidewatch.md", TIDEWATCH_GUIDE, chunk_tokens=40, chunk_overlap=8)
    pipeline = get_pipeline(config)
    defining = next(c.id for c in pipeline.data.chunks if "Tidewatch is a small" in c.text)
    query, _ = pipeline.query("What is Tidewatch?")
    plain = dataclasses.replace(query, text="Tidewatch")  # the same search, not asked as "what is"
    assert defining not in [p.chunk.id for p in pipeline.retriever.search(plain, config)]
    assert defining in [p.chunk.id for p in pipeline.retriever.search(query, config)]
    answer = ask("What is Tidewatch?", config=config)
    assert_contract(answer, pipeline.source_text)
    assert answer.citations[0].quote.startswith("Tidewatch is a small command-line tool")
    assert answer.span is not None and answer.span.quote.startswith("a small command-line tool")


TIDEWATCH_SUMMARY = """# Getting started with Tidewatch

Tidewatch is a small command-line tool that predicts high and low water for Scottish harbours.

## Installing

Tidewatch needs Python 3.10 or newer. Install it with pip, which also downloads the tide tables it reads.

## Summary

In this chapter, you learned how to:

- Install the latest version of Tidewatch using pip.
- Update to a newer Tidewatch version.
- Open the locally installed tide tables.
- Print the next four tides for a harbour.

In the next chapter we look at harbours with two tides a day.
"""


def test_an_answer_does_not_move_from_a_list_item_to_the_item_beside_it(tmp_path: Path) -> None:
    """The reader reads a sentence with its neighbours and may answer from one of them; beside a list item,
    those are its sibling items, each its own point: "How do I update Tidewatch?" matched "Update to a
    newer Tidewatch version." and was answered "Open the locally installed tide tables"."""
    from rag.pipeline import get_pipeline

    config = one_article(tmp_path, "tidewatch.md", TIDEWATCH_SUMMARY)
    answer = ask("How do I update Tidewatch?", config=config)
    assert_contract(answer, get_pipeline(config).source_text)
    assert answer.citations[0].quote == "• Update to a newer Tidewatch version."
    assert all("tide tables" not in c.quote for c in answer.citations)


TIDEWATCH_README = """# Tidewatch

Tidewatch predicts high and low water for Scottish harbours.

## Installation

The latest release of Tidewatch is available from PyPI:

```
pip install tidewatch
```

## Examples

Printing the next tides at Ullapool:

```
$ tidewatch ullapool
```

## Why offline?

Harbour masters often work where there is no mobile signal. Tidewatch therefore keeps its tide tables on disk
and never needs a network.
"""


def test_a_heading_starts_a_section_that_nothing_above_it_answers(tmp_path: Path) -> None:
    """A line of code is no heading, so no heading is quoted after it as if it went on ("pip install
    tidewatch" / "Examples"); and a heading ("Why offline?") is read with what lies under it, never with
    the code above it, which another section wrote, and is not quoted as if it said more."""
    from rag.pipeline import get_pipeline

    config = one_article(tmp_path, "tidewatch.md", TIDEWATCH_README)
    pipeline = get_pipeline(config)
    install = ask("How do I install Tidewatch?", config=config)
    assert_contract(install, pipeline.source_text)
    assert "pip install tidewatch" in [c.quote for c in install.citations]
    assert "Examples" not in [c.quote for c in install.citations]
    printing = ask("How do I print the next tides at Ullapool?", config=config)
    assert [c.quote for c in printing.citations] == ["Printing the next tides at Ullapool:", "$ tidewatch ullapool"]
    assert printing.span is None  # the lead only says what was asked; it is no short answer
    why = ask("Why offline?", config=config)
    assert_contract(why, pipeline.source_text)
    assert not any("$ tidewatch" in c.quote or c.quote == "Why offline?" for c in why.citations)
    assert why.abstained or why.citations[0].quote.startswith(("Harbour masters", "Tidewatch therefore"))
