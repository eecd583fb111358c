"""A question's slips are read as the words the documents use; words of English and other names are not."""

from __future__ import annotations

import json

import pytest

from rag import ask
from rag.config import Config
from rag.spelling import Speller, count_words

TEXTS = [
    "Pharmacists in Sefton dispense medicines. The Hamas delegation met in Cairo.",
    "Hartmanis and Stearns published their seminal work on computational complexity in 1965.",
    "A facet of the problem is a fact worth stating.",
]


@pytest.mark.parametrize(
    ("question", "read"),
    [
        ("How many pharamcists work in Sefton?", "How many pharmacists work in Sefton?"),  # two letters swapped
        ("When did Hatmanis publish?", "When did Hartmanis publish?"),  # a letter dropped
        ("What is computationnal complexity?", "What is computational complexity?"),  # one added
        ("Where did the Hamas delegation meet?", "Where did the Hamas delegation meet?"),  # known
        ("Where does Pamas originate?", "Where does Pamas originate?"),  # a first letter: another name
        ("What facet is fact?", "What facet is fact?"),  # English words, as typed
        ("What did Stearns publish?", "What did Stearns publish?"),
        ("Who wrote it?", "Who wrote it?"),  # short words have too many neighbours
    ],
)
def test_a_slip_is_read_as_the_documents_word(question: str, read: str) -> None:
    got, slips = Speller(count_words(TEXTS)).read(question)
    assert got == read
    assert [(s.typed, s.read) for s in slips] == [
        (a, b) for a, b in zip(question.rstrip("?").split(), read.rstrip("?").split(), strict=True) if a != b
    ]


@pytest.mark.parametrize(
    ("corpus", "question", "read"),
    [
        ("It is released under the MIT license.", "What licence is it under?", "What license is it under?"),
        ("The licence is the GPL.", "What license is it?", "What licence is it?"),
        ("The organization chose a color.", "Which organisation chose a colour?", "Which organization chose a color?"),
        ("The centre is in Leeds.", "Where is the center?", "Where is the centre?"),
        ("The team analyzes the catalog.", "Who analyses the catalogue?", "Who analyzes the catalog?"),
        ("The paediatric ward opened.", "When did the pediatric ward open?", "When did the paediatric ward open?"),
        # both spellings in the documents, or a stem BM25 reads alike: as typed
        ("The colour and the color.", "What color is it?", "What color is it?"),
        ("She traveled to Oslo.", "Who travelled to Oslo?", "Who travelled to Oslo?"),
        ("The hors d'oeuvres were served.", "How many hours?", "How many hours?"),
    ],
)
def test_a_word_spelt_the_other_side_of_the_atlantic_is_read_as_the_documents_spell_it(
    corpus: str, question: str, read: str
) -> None:
    """Each spelling is a word of English, so neither is a slip; BM25 stems "licence" and "license" apart."""
    assert Speller(count_words([corpus])).read(question)[0] == read


def test_ask_answers_a_british_question_from_american_documents(tmp_path) -> None:
    from rag.config import load_config

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tool.md").write_text(
        "# Quillmark\n\nQuillmark turns meeting notes into slides. It runs on Linux, macOS and Windows.\n\n"
        "## License\n\nQuillmark is released under the Apache 2.0 license by the Tidewater Foundation.\n",
        encoding="utf-8",
    )
    config = load_config(env={}, corpus=str(docs), index_dir=str(tmp_path / "index"))
    answer = ask("What licence is Quillmark released under?", config=config)
    assert answer.standalone_question == "What license is Quillmark released under?"
    assert not answer.abstained and answer.span is not None and "Apache 2.0" in answer.span.quote
    assert any("licence" in note and "license" in note for note in answer.notes)


def test_ask_reads_the_slip_says_so_and_answers_as_if_typed_right(seed_config: Config) -> None:
    typed = ask("Who is Clare Geradda?", config=seed_config)
    right = ask("Who is Clare Gerada?", config=seed_config)
    assert typed.question == "Who is Clare Geradda?" and typed.standalone_question == "Who is Clare Gerada?"
    assert typed.text == right.text and not typed.abstained
    assert any("Geradda" in note and "Gerada" in note for note in typed.notes)
    as_typed = ask("Who is Clare Geradda?", config=seed_config.replace(spelling=False))
    assert as_typed.standalone_question == "Who is Clare Geradda?" and not as_typed.notes


def test_the_index_stores_its_words_and_an_older_index_counts_them_on_load(corpus_config: Config) -> None:
    from rag import indexing, store

    indexing.build(corpus_config)
    build = store.current_build(corpus_config.index_path)
    assert build is not None
    words = json.loads((build / store.WORDS).read_text(encoding="utf-8"))
    assert words["polysystems"] >= 1 and all(w == w.lower() for w in words)
    stored = store.read(corpus_config.index_path, corpus_config)
    assert stored is not None and stored.words == words
    (build / store.WORDS).unlink()  # an index built before words were stored
    older = store.read(corpus_config.index_path, corpus_config)
    assert older is not None and older.words is None
    assert older.speller.read("Where are polysytems going?")[0] == "Where are polysystems going?"
    assert older.speller.known == stored.speller.known
