"""Questions about the collection itself, answered from the index, each document cited by its own words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag import ask
from rag.collection import LISTED, Asked, asked
from rag.config import ROOT, Config
from rag.pipeline import Pipeline
from tests.test_ask import assert_contract


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What documents do you have?", Asked("list")),
        ("How many articles are there?", Asked("list")),
        ("List all the documents", Asked("list")),
        ("Which articles mention Michelle Drage?", Asked("mentions", "Michelle Drage")),
        ("What stories discuss the cuts in Sefton?", Asked("mentions", "the cuts in Sefton")),
        ("What has Ian Quinn written?", Asked("written", "Ian Quinn", named_kind=False)),
        ("What did Ian Quinn write about?", Asked("written", "Ian Quinn", named_kind=False)),
        ("Which pieces were written by Gareth Iacobucci?", Asked("written", "Gareth Iacobucci")),
        ("What else has Ian Quinn written about?", Asked("written", "Ian Quinn", other=True, named_kind=False)),
        ("Which other articles are by Ian Quinn?", Asked("written", "Ian Quinn", other=True)),
        ("Which pieces are by Łukasz Nowak?", Asked("written", "Łukasz Nowak")),
        ("What story was written by Child in 1842?", None),  # SQuAD: no writer's name
        ("What do the comments say?", Asked("comments")),
        ("Summarise the readers' comments", Asked("comments")),
        ("What do readers think about salaried hospital jobs?", None),  # a question, asked of the comments
        (
            "What does “GPs risk being devoured by hospital trusts” say?",
            Asked("summary", "GPs risk being devoured by hospital trusts"),
        ),
        (
            "Summarise the article about polysystems going national",
            Asked("summary", "polysystems going national", named_kind=False),
        ),
        ("Summarise the cuts in Sefton", None),  # a topic, not a piece: conversation.about answers it
        ("What does the document say about transformation?", None),
        ("Hello!", Asked("hello")),
        ("Thank you very much", Asked("thanks")),
        ("What can you do?", Asked("help")),
        # questions about what the documents say, not about the collection
        ("OK", None),
        ("Hello Kitty's creator?", None),
        ("What else has he written about?", None),  # no one named: the chat did not resolve "he"
        ("Which NHS England document set out the long-term proposals?", None),
        ("What does the document want current GP contracts protected from?", None),
        ("Who wrote the piece about NHS Bury?", None),
        ("What did Drage say about federations?", None),
    ],
)
def test_what_a_question_asks_of_the_collection(question: str, expected: Asked | None) -> None:
    assert asked(question) == expected


def _texts() -> dict[str, str]:
    return {f"seeds/{p.name}": p.read_text(encoding="utf-8") for p in sorted((ROOT / "seeds").iterdir())}


def test_what_documents_there_are_is_every_document_cited_by_its_title(pipeline: Pipeline) -> None:
    answer = pipeline.ask("What documents do you have?")
    assert_contract(answer, pipeline.source_text)
    assert not answer.abstained and answer.text.startswith(f"{len(_texts())} documents:")
    assert [c.source for c in answer.citations] == list(_texts())
    for c, record in zip(answer.citations, pipeline.data.documents, strict=True):
        assert c.quote.strip() == (record["title"] or c.quote).strip()  # a title where the text states one


def test_which_documents_mention_a_name_finds_each_with_its_first_mention(pipeline: Pipeline) -> None:
    answer = pipeline.ask("Which articles mention Michelle Drage?")
    assert_contract(answer, pipeline.source_text)
    naming = [s for s, t in _texts().items() if re.search(r"Michelle\s+Drage", t)]
    assert [c.source for c in answer.citations] == naming
    for c in answer.citations:
        text = pipeline.source_text(c.source)
        assert "Michelle Drage" in c.quote and "Michelle Drage" not in text[: c.start]
    none = pipeline.ask("Which documents mention the Royal College of Physicians?")
    assert none.abstained and none.citations == [] and "none of the 5 documents mentions" in none.text


def test_what_a_writer_wrote_is_cited_by_the_bylines_and_what_else_leaves_out_what_was_given(
    pipeline: Pipeline,
) -> None:
    answer = pipeline.ask("What has Gareth Iacobucci written?")
    assert_contract(answer, pipeline.source_text)
    by = [r["source"] for r in pipeline.data.documents if "Iacobucci" in (r["author"] or "")]
    assert len(by) == 2 and [c.source for c in answer.citations] == by
    assert all("Iacobucci" in c.quote for c in answer.citations)
    nobody = pipeline.ask("What did Michelle Drage write about?")  # no byline names her: asked of the text
    assert nobody.answerer == pipeline.config.answerer and "of the 5 documents" not in nobody.text
    not_a_writer = pipeline.ask("Which pieces are by Dr Michelle Drage?")
    assert not_a_writer.abstained and "no byline in the 5 documents names Dr Michelle Drage" in not_a_writer.text
    first = pipeline.ask("Who wrote the piece on polysystems going national?")
    assert not first.abstained and "Ian Quinn" in first.text
    more = pipeline.ask(
        "What else has he written about?", [("Who wrote the piece on polysystems going national?", first.text)]
    )
    assert more.abstained and more.standalone_question == "What else has Ian Quinn written about?"
    assert "no other byline in the 5 documents names Ian Quinn" in more.text


def test_a_long_list_names_the_first_documents_and_counts_the_rest(tmp_path: Path) -> None:
    from rag.config import load_config

    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(LISTED + 2):
        (docs / f"note{i:02d}.txt").write_text(
            f"Harbour note {i}\n\nThe ferry to the island ran {i} times this week, the harbour master said.\n",
            encoding="utf-8",
        )
    config: Config = load_config(env={}, corpus=str(docs), index_dir=str(tmp_path / "index"))
    listing = ask("What documents do you have?", config=config)
    assert_contract(listing)
    assert len(listing.citations) == LISTED and "and 2 more" in listing.text
    assert [c.quote for c in listing.citations] == [f"Harbour note {i}" for i in range(LISTED)]
    ferry = ask("Which notes mention the harbour master?", config=config)
    assert_contract(ferry)
    assert ferry.text.startswith(f"{LISTED + 2} of the {LISTED + 2} documents mention")
    assert all("harbour master" in c.quote for c in ferry.citations)


def test_small_talk_is_answered_as_such_and_a_writer_by_what_they_wrote(pipeline: Pipeline) -> None:
    hello = pipeline.ask("Hello")
    assert_contract(hello)
    assert not hello.abstained and not hello.citations and "5 documents" in hello.text
    assert "welcome" in pipeline.ask("Thanks!").text
    writer = pipeline.ask("Who is Gareth Iacobucci?")  # no sentence says; his bylines do
    assert_contract(writer, pipeline.source_text)
    assert writer.text.startswith("Gareth Iacobucci wrote 2 of the 5 documents")
    assert all("Iacobucci" in c.quote for c in writer.citations)
    quoted = pipeline.ask("Who is Tom Coffey?")  # the text says who he is: that answers, not a listing
    assert quoted.span is not None and "clinical lead" in quoted.span.quote


def test_the_comments_are_each_quoted_from_their_start_with_their_writer(pipeline: Pipeline) -> None:
    from rag.types import COMMENT

    answer = pipeline.ask("What do the comments say?")
    assert_contract(answer, pipeline.source_text)
    sections = [
        (r["source"], a, b) for r in pipeline.data.documents for a, b, kind, _ in r["sections"] if kind == COMMENT
    ]
    assert answer.text.startswith(f"{len(sections)} readers' comments")
    assert [(c.source, c.start) for c in answer.citations] == [(s, a) for s, a, _ in sections]
    assert all(c.kind == COMMENT and len(c.quote.split()) >= 12 for c in answer.citations)
    assert "Vinci Ho: “My concern" in answer.text


def test_a_commenter_named_in_a_question_finds_their_comment(pipeline: Pipeline) -> None:
    """The name is only in the comment's label: the passage is not ranked down as a comment, its sentences
    match the name, and the reader reads it under the label."""
    answer = pipeline.ask("What did Vinci Ho say?")
    assert_contract(answer, pipeline.source_text)
    assert not answer.abstained and answer.citations[0].label == "Reader's comment by Vinci Ho"


def test_a_piece_asked_for_by_title_or_topic_is_summarised_by_its_opening(pipeline: Pipeline) -> None:
    """The UI offers "What does “<title>” say?" for each titled piece: it had got "The documents don't say"."""
    record = next(r for r in pipeline.data.documents if r["source"].endswith("000_78fc25cc31a623ad.txt"))
    answer = pipeline.ask(f"What does “{record['title']}” say?")
    assert_contract(answer, pipeline.source_text)
    assert not answer.abstained and len(answer.citations) == 3
    assert {c.source for c in answer.citations} == {record["source"]}
    starts = [c.start for c in answer.citations]
    assert starts == sorted(starts) and "predicted that all GPs will eventually" in answer.citations[0].quote
    about = pipeline.ask("Summarise the article about polysystems going national")
    assert_contract(about, pipeline.source_text)
    assert {c.source for c in about.citations} == {"seeds/002_241d7df232c0b7ae.txt"}
    assert not any(c.quote.startswith("By ") for c in about.citations)  # the byline is no part of it
    which = pipeline.ask("Summarise the article")  # five pieces, none named: which one?
    assert which.text.startswith("Which one? 5 documents:") and len(which.citations) == 5


def test_the_article_of_a_corpus_of_one_is_the_one_summarised(tmp_path: Path) -> None:
    from tests.test_ask import BUDGET, one_article

    config = one_article(tmp_path, "budget.txt", BUDGET)
    answer = ask("Summarise the article", config=config)
    assert_contract(answer)
    assert answer.text.startswith("“Market town sets out a leaner budget” by Ana Ruiz opens:")
    assert len(answer.citations) == 3 and "close two branch libraries" in answer.citations[0].quote
