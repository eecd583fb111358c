"""The eval harness: metrics, the gold set's own integrity, and the quality floors make test enforces."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rag import evaluation
from rag.config import ROOT, Config
from rag.pipeline import Pipeline, get_pipeline

GOLD = ROOT / "eval" / "gold.jsonl"
FLOORS = json.loads((ROOT / "eval" / "floors.json").read_text(encoding="utf-8"))


def test_squad_normalisation_and_scores() -> None:
    assert evaluation.normalize("The  Cat, sat [1].") == "cat sat"
    assert evaluation.exact_match("the cat", ["A cat"]) == 1.0
    assert evaluation.token_f1("the black cat sat", ["black cat"]) == pytest.approx(2 * 1.0 * 0.6667 / 1.6667, 1e-3)
    assert evaluation.token_f1("dog", ["cat"]) == 0.0
    assert evaluation.contains("He paid £10m for it [1]", ["£10m"]) == 1.0
    assert evaluation.contains("He paid 10 million", ["£10m"]) == 0.0
    assert evaluation.contains("cattle", ["cat"]) == 0.0


def test_gold_set_is_well_formed() -> None:
    items = evaluation.load_gold(GOLD)
    kinds = Counter(i.kind for i in items)
    assert len(items) >= 80
    assert sum(1 for i in items if not i.answerable) >= 12
    assert sum(1 for i in items if i.history) >= 12
    assert {i.source for i in items if i.source} == {f"seeds/{p.name}" for p in (ROOT / "seeds").iterdir()}
    assert {i.split for i in items} == {"dev", "test"}
    assert kinds["comment"] >= 3
    for item in items:
        if item.answerable:
            text = (ROOT / item.source).read_text(encoding="utf-8")  # type: ignore[operator]
            ((a, b),) = item.spans
            assert any(evaluation.normalize(ans) in evaluation.normalize(text[a:b]) for ans in item.answers)
    assert len({i.id for i in items}) == len(items)


@pytest.fixture(scope="module")
def results(pipeline: Pipeline) -> list[evaluation.ItemResult]:
    items = evaluation.load_gold(GOLD)
    return evaluation.run(
        items, lambda i: pipeline.ask(i.question, list(i.history)), pipeline.data.chunks, text_of=pipeline.source_text
    )


@pytest.mark.slow
@pytest.mark.parametrize("split", ["dev", "test"])
def test_quality_floors(results: list[evaluation.ItemResult], split: str) -> None:
    figures = evaluation.score([r for r in results if r.item.split == split])
    low = {k: (round(figures[k], 3), floor) for k, floor in FLOORS[split].items() if not figures[k] >= floor}
    assert not low, f"{split} figures below their floors (value, floor): {low}"


def test_every_citation_is_exact(results: list[evaluation.ItemResult]) -> None:
    citations = [c for r in results for c in r.answer.citations]
    assert citations and all(evaluation.citation_ok(c) for c in citations)
    figures = evaluation.score(results)
    assert figures["citation_validity"] == 1.0 and figures["answers_losing_citations"] == 0


def test_citation_validity_is_measured_before_the_safety_net(corpus: Path, corpus_config: Config) -> None:
    """A file edited after indexing: ask() drops the citations that no longer match, and the score
    counts them as the answerer's invalid citations instead of scoring the cleaned answer 1.0."""
    pipeline = get_pipeline(corpus_config)
    item = evaluation.GoldItem("q", "How many PCTs did Pulse approach?", ("152",), None, ())
    for path in corpus.iterdir():
        path.write_text("Editor's note: this article was updated.\n\n" + path.read_text(encoding="utf-8"))
    results = evaluation.run(
        [item],
        lambda i: pipeline.ask(i.question, None, corpus_config.replace(abstain_threshold=0.0)),
        pipeline.data.chunks,
        text_of=pipeline.source_text,
    )
    figures = evaluation.score(results)
    assert results[0].answer.dropped_citations and results[0].citations_made > 0
    assert figures["citation_validity"] == 0.0 and figures["answers_losing_citations"] == 1
