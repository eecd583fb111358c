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
