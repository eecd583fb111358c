from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag import chunking, documents

from .conftest import SEEDS

WORDS = st.sampled_from(
    [
        "GP",
        "Dr.",
        "NHS",
        "said",
        "polysystems",
        "£10m",
        "café",
        "naïve",
        "日本語",
        "<|endoftext|>",
        "U.S.",
        "3.5",
        "‘quoted’",
        "—",
        "e.g.",
        "x" * 40,
        "🙂",
        "\t",
        "end.",
    ]
)
SENTENCE = st.lists(WORDS, min_size=1, max_size=30).map(" ".join)
PARAGRAPH = st.lists(SENTENCE, min_size=1, max_size=6).map(lambda s: ". ".join(s) + ".")
TEXT = st.lists(PARAGRAPH, min_size=1, max_size=8).map("\n\n".join)


def check_chunks(doc: documents.Document, budget: int, overlap: int) -> None:
    chunks = chunking.chunk_document(doc, budget, overlap)
    covered = set()
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert c.n_tokens == chunking.count_tokens(c.text) <= budget
        assert c.sentences and c.sentences[0][0] == c.start and c.sentences[-1][1] == c.end
        for a, b in c.sentences:
            assert c.start <= a < b <= c.end
            assert doc.text[a:b].strip() == doc.text[a:b]
            covered.add((a, b))
        assert any(s.start <= c.start and c.end <= s.end for s in doc.sections)
    for section in doc.sections:
        for a, b in chunking.sentences(doc.text, section.start, section.end):
            assert any(x <= a and y >= b for x, y in covered) or chunking.count_tokens(doc.text[a:b]) > budget
    for prev, nxt in itertools.pairwise(chunks):
        assert nxt.start > prev.start
        if nxt.start < prev.end:
            assert chunking.count_tokens(doc.text[nxt.start : prev.end]) <= overlap + 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT, budget=st.integers(16, 120), overlap_share=st.floats(0, 0.5))
def test_chunks_are_exact_slices_within_budget(text: str, budget: int, overlap_share: float) -> None:
    doc = documents.parse("t.txt", text)
    check_chunks(doc, budget, int(budget * overlap_share))


def test_seed_chunks() -> None:
    for path in sorted(SEEDS.iterdir()):
        check_chunks(documents.load(path), 160, 32)


def test_special_tokens_are_counted_as_text() -> None:
    assert chunking.count_tokens("<|endoftext|>") > 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "- job plan\n- set hours\nA full sentence here. And another.",
            ["- job plan", "- set hours", "A full sentence here.", "And another."],
        ),
        (
            "Trafilatura is widely used in the academic domain, chiefly for data\nacquisition. Here is how:\n"
            "cite it\nHeading line\nThe next sentence.\n\nlower case after a blank line.",
            [
                "Trafilatura is widely used in the academic domain, chiefly for data\nacquisition.",
                "Here is how:",
                "cite it",
                "Heading line",
                "The next sentence.",
                "lower case after a blank line.",
            ],
        ),
        (
            "THERE IS NO WARRANTY, TO THE EXTENT PERMITTED BY\nAPPLICABLE LAW.\n"
            '"control" means (i) the power, or\n(ii) ownership.\nNOTICE\nVersion 3',
            [
                "THERE IS NO WARRANTY, TO THE EXTENT PERMITTED BY\nAPPLICABLE LAW.",
                '"control" means (i) the power, or\n(ii) ownership.',
                "NOTICE",
                "Version 3",
            ],
        ),
        (
            # a number and a lower-case word go on the line above (a PDF's wrap, a formula's subscript: "O\n2");
            # a section number before a capital does not
            "The survey counted\n314 boats in the basin.\nMeteors heat pure O\n2 molecules.\nContents\n2.1. Layout",
            [
                "The survey counted\n314 boats in the basin.",
                "Meteors heat pure O\n2 molecules.",
                "Contents",
                "2.1.",
                "Layout",
            ],
        ),
    ],
)
def test_lines_end_sentences_unless_a_sentence_was_wrapped(text: str, expected: list[str]) -> None:
    """A line break ends a sentence (a list item, a heading), except where the sentence only wrapped."""
    spans = chunking.sentences(text, 0, len(text))
    assert [text[a:b] for a, b in spans] == expected


CODE_DOC = (
    "Install it with:\n\n```\nimport bm25s\nimport Stemmer  # optional: for stemming\n\n"
    "retriever = bm25s.BM25(corpus=corpus,\n    k1=1.2)\n```\n\nThen run it and\nsee the results.\n"
)


@pytest.mark.parametrize("start", [0, CODE_DOC.index("retriever")])
def test_code_lines_are_read_as_written_and_fences_are_not_sentences(start: int) -> None:
    spans = chunking.sentences(CODE_DOC, start, len(CODE_DOC))
    got = [CODE_DOC[a:b] for a, b in spans]
    code = [
        "import bm25s",
        "import Stemmer  # optional: for stemming",
        "retriever = bm25s.BM25(corpus=corpus,",
        "k1=1.2)",
    ]
    expected = ["Install it with:", *code, "Then run it and\nsee the results."]
    assert got == [s for s in expected if CODE_DOC.index(s) >= start]
    assert not any("```" in s for s in got)


HEADED = """Run the server:

```
$ tidewatch serve
fn main() {
```

Why offline?

Harbour masters work where there is no signal. Why would they wait?

Tide tables
"""


@pytest.mark.parametrize(
    ("sentence", "heading"),
    [
        ("Why offline?", True),  # a question standing as a line of its own
        ("Tide tables", True),  # a few words that do not end like a sentence
        ("Run the server:", False),
        ("$ tidewatch serve", False),  # code right under a fence
        ("fn main() {", False),  # code right above one
        ("Why would they wait?", False),  # a question inside a paragraph
        ("Harbour masters work where there is no signal.", False),
    ],
)
def test_a_heading_is_a_few_words_set_apart_never_a_line_of_code(sentence: str, heading: bool) -> None:
    from rag.types import Chunk

    start = HEADED.index(sentence)
    chunk = Chunk(0, "x.md", 0, len(HEADED), HEADED, "body", None, 1, ((start, start + len(sentence)),))
    assert chunking.is_heading(chunk, start, start + len(sentence)) is heading
