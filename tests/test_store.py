"""The on-disk index: atomic publication, staleness, corruption and interrupted builds."""

from __future__ import annotations

import itertools
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rag import ask, documents, indexing, load_config, sources, store
from rag.config import ROOT, Config
from rag.errors import CorpusError, IndexCorruptError, IndexMismatchError, IndexWriteError
from rag.pipeline import forget, get_pipeline


def test_build_publishes_a_complete_index(corpus_config: Config) -> None:
    report = indexing.build(corpus_config)
    assert report.documents == 2 and report.chunks > 0 and report.sentences >= report.chunks
    data = store.read(corpus_config.index_path)
    assert data is not None and len(data.chunks) == report.chunks
    assert data.dense.ntotal == len(data.sentence_spans) == report.sentences
    manifest = data.manifest
    assert manifest["settings"]["embedding_model"] == corpus_config.embedding_model
    assert manifest["dimension"] == 384
    assert set(manifest["files"]) == {d["source"] for d in data.documents}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    assert sources.staleness(corpus_config) is None
    builds = [p.name for p in corpus_config.index_path.iterdir() if p.name.startswith("build-")]
    assert len(builds) == 1 and (corpus_config.index_path / store.POINTER).read_text().strip() == builds[0]


def test_incremental_updates_embed_only_what_changed(corpus_config: Config, corpus: Path) -> None:
    first = indexing.build(corpus_config)
    assert (first.added, first.chunks_embedded) == (2, first.chunks)
    again = indexing.build(corpus_config)
    assert not again.built and again.chunks_embedded == 0 and again.unchanged == 2
    a, b = sorted(corpus.iterdir())
    a.write_text(a.read_text(encoding="utf-8") + "\nA late correction was added to this story.\n", encoding="utf-8")
    (corpus / "c.txt").write_text("A third, short document about ferry timetables in Orkney.", encoding="utf-8")
    changed = indexing.build(corpus_config)
    a_chunks = store.read(corpus_config.index_path).manifest["files"][documents.display_source(a)]["chunks"]  # type: ignore[union-attr]
    assert (changed.added, changed.updated, changed.unchanged, changed.removed) == (1, 1, 1, 0)
    assert changed.chunks_embedded == a_chunks + 1 < changed.chunks
    b.unlink()
    removed = indexing.build(corpus_config)
    assert (removed.removed, removed.chunks_embedded, removed.documents) == (1, 0, 2)
    full = indexing.build(corpus_config, full=True)
    assert full.chunks_embedded == full.chunks
    # the carried-over index answers exactly like a fresh one
    forget()
    fresh_cfg = corpus_config.replace(index_dir=str(corpus_config.index_path.parent / "fresh"))
    q = "What was added to the story?"
    assert ask(q, config=corpus_config).citations == ask(q, config=fresh_cfg).citations


def test_no_pickle_on_disk(corpus_config: Config) -> None:
    indexing.build(corpus_config)
    build = store.current_build(corpus_config.index_path)
    assert build is not None
    suffixes = {p.suffix for p in build.rglob("*") if p.is_file()}
    assert suffixes <= {".json", ".jsonl", ".npy", ".faiss"}


def test_changes_make_the_index_stale(corpus_config: Config, corpus: Path) -> None:
    indexing.build(corpus_config)
    victim = sorted(corpus.iterdir())[0]
    victim.write_text(victim.read_text(encoding="utf-8") + "\nA new closing line.\n", encoding="utf-8")
    assert "changed file" in (sources.staleness(corpus_config) or "")
    indexing.build(corpus_config)
    (corpus / "new.txt").write_text("A brand new document about something else entirely.", encoding="utf-8")
    assert "new file" in (sources.staleness(corpus_config) or "")
    indexing.build(corpus_config)
    victim.unlink()
    assert "removed file" in (sources.staleness(corpus_config) or "")
    assert "settings changed" in (sources.staleness(corpus_config.replace(chunk_tokens=64)) or "")


def test_stale_index_is_rebuilt_on_ask_and_logged(
    corpus_config: Config, corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ask("What is this about?", config=corpus_config)
    (corpus / "extra.txt").write_text(
        "The Lighthouse Trust opened a new clinic in Falmouth in March, run by Dr Ada Penrose.", encoding="utf-8"
    )
    forget()
    with caplog.at_level(logging.INFO, logger="rag"):
        answer = ask("Who runs the new clinic in Falmouth?", config=corpus_config)
    assert any("new file" in r.getMessage() for r in caplog.records)
    assert answer.citations and answer.citations[0].source.endswith("extra.txt")


def test_mismatched_settings_are_reported_when_auto_index_is_off(corpus_config: Config) -> None:
    indexing.build(corpus_config)
    forget()
    with pytest.raises(IndexMismatchError, match="chunk_tokens"):
        ask("anything?", config=corpus_config.replace(chunk_tokens=64, auto_index=False))


def test_corrupt_index_says_how_to_rebuild(corpus_config: Config) -> None:
    indexing.build(corpus_config)
    build = store.current_build(corpus_config.index_path)
    assert build is not None
    (build / "chunks.jsonl").write_text("{not json", encoding="utf-8")
    forget()
    with pytest.raises(IndexCorruptError, match="rag index --rebuild"):
        ask("anything?", config=corpus_config)
    (corpus_config.index_path / store.POINTER).write_text("build-missing\n", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="rag index --rebuild"):
        ask("anything?", config=corpus_config)
    indexing.build(corpus_config)  # a rebuild over the damage works
    forget()
    assert ask("What is this about?", config=corpus_config).text


def test_unwritable_index_dir(corpus_config: Config, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(IndexWriteError, match="writable"):
        indexing.build(corpus_config.replace(index_dir=str(blocker / "index")))


def test_bad_files_are_skipped_with_a_warning(
    corpus_config: Config, corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (corpus / "empty.txt").write_text("", encoding="utf-8")
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02 data \x00")
    (corpus / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        indexing.ensure(corpus_config)  # as ask() builds it: each skipped file is one warning
    report = indexing.build(corpus_config)
    assert report.documents == 2
    skipped = {Path(s).name for s, _ in report.skipped}
    assert skipped == {"empty.txt", "binary.txt", "latin1.txt"}
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in skipped:
        assert sum(name in w for w in warned) == 1, warned
    assert sources.staleness(corpus_config) is None  # skipped files do not make the index look stale


def test_empty_corpus_is_a_clear_error(tmp_path: Path, corpus_config: Config) -> None:
    empty = tmp_path / "nothing"
    empty.mkdir()
    with pytest.raises(CorpusError, match="no readable"):
        indexing.build(corpus_config.replace(corpus=str(empty)))


def test_interrupted_write_leaves_the_previous_index(corpus_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    indexing.build(corpus_config)
    before = (corpus_config.index_path / store.POINTER).read_text()
    original = store.np.save

    def explode(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(store.np, "save", explode)
    with pytest.raises(KeyboardInterrupt):
        indexing.build(corpus_config, full=True)
    monkeypatch.undo()
    assert (corpus_config.index_path / store.POINTER).read_text() == before
    assert store.read(corpus_config.index_path) is not None
    forget()
    assert ask("What is this about?", config=corpus_config).text
    indexing.build(corpus_config)
    leftovers = [p for p in corpus_config.index_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


@pytest.mark.slow
def test_kill_9_during_a_build_leaves_a_usable_index(corpus_config: Config, corpus: Path) -> None:
    indexing.build(corpus_config)
    for i in range(40):  # enough work that the kill lands mid-build
        (corpus / f"more-{i}.txt").write_text(
            " ".join(f"Sentence {j} of filler document {i} about clinics and budgets." for j in range(40)),
            encoding="utf-8",
        )
    before = (corpus_config.index_path / store.POINTER).read_text()
    env = {**os.environ, "RAG_CORPUS": str(corpus), "RAG_INDEX_DIR": str(corpus_config.index_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "-v", "index", "--rebuild"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    said: list[str] = []
    reader = threading.Thread(target=lambda: said.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.time() + 120
    while time.time() < deadline and not any("indexing 42 file(s)" in line for line in said):
        assert proc.poll() is None, "".join(said)
        time.sleep(0.02)
    time.sleep(0.5)  # into the embedding of 1,600 new sentences, which takes seconds on any CPU
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    reader.join(timeout=10)
    log = "".join(said)
    assert proc.returncode == -signal.SIGKILL, "the build ended before the kill"
    assert "indexing 42 file(s)" in log and "indexed 42 documents" not in log, log
    assert (corpus_config.index_path / store.POINTER).read_text() == before, "the old build stays published"
    data = store.read(corpus_config.index_path)
    assert data is not None
    manifest = json.loads((store.current_build(corpus_config.index_path) / "manifest.json").read_text())  # type: ignore[operator]
    assert manifest["counts"]["documents"] == 2
    forget()
    answer = ask("What is this about?", config=corpus_config)
    assert answer.text
    report = indexing.build(corpus_config, if_stale=True)  # the next run finishes the job
    assert report.built or report.reason == "up to date"
    assert store.read(corpus_config.index_path).manifest["counts"]["documents"] == 42  # type: ignore[union-attr]


def test_rechunking_reuses_sentence_vectors(corpus_config: Config) -> None:
    first = indexing.build(corpus_config)
    rechunked = indexing.build(corpus_config.replace(chunk_tokens=96, chunk_overlap=16))
    assert rechunked.built and rechunked.chunks > first.chunks
    assert rechunked.sentences_embedded == 0 and rechunked.sentences == first.sentences


def test_words_typed_without_accents_find_accented_ones(corpus: Path, corpus_config: Config) -> None:
    (corpus / "archive.txt").write_text(
        "Notes from the archive\n\nThe council of Besançon banned the first printing shop in 1561.\n",
        encoding="utf-8",
    )
    config = corpus_config.replace(retrieval="bm25")
    top = ask("What about Besancon?", config=config).passages[0]
    assert top.source.endswith("archive.txt") and (top.bm25_score or 0) > 0


def test_a_change_of_lexical_analysis_rebuilds_the_postings(corpus_config: Config) -> None:
    indexing.build(corpus_config)
    current = corpus_config.index_path / (corpus_config.index_path / store.POINTER).read_text().strip()
    manifest_path = current / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["settings"]["lexical"] = 1
    manifest_path.write_text(json.dumps(manifest))
    forget(corpus_config)
    assert "lexical 1 -> 2" in (sources.staleness(corpus_config) or "")


def test_a_file_that_changes_during_a_build_is_not_recorded_as_fresh(
    corpus: Path, corpus_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read and hashed once, before parsing: what is recorded is what was indexed."""
    target = sorted(corpus.iterdir())[0]
    original = documents.parse

    def parse_then_edit(source: str, text: str) -> documents.Document:
        doc = original(source, text)
        if source.endswith(target.name):  # the user saves a new version while the build runs
            target.write_text("Breaking: a new first paragraph.\n\n" + text, encoding="utf-8")
        return doc

    monkeypatch.setattr(documents, "parse", parse_then_edit)
    indexing.build(corpus_config)
    monkeypatch.undo()
    assert "changed file" in (sources.staleness(corpus_config) or ""), "the edit is seen, never recorded as indexed"
    forget()
    answer = ask("What is the breaking news?", config=corpus_config.replace(abstain_threshold=0.0))
    assert answer.citations and not answer.dropped_citations
    assert all(Path(c.source).read_text(encoding="utf-8")[c.start : c.end] == c.quote for c in answer.citations)


def test_an_index_built_on_one_numeric_path_is_searched_from_another(corpus_config: Config) -> None:
    int8 = corpus_config.replace(precision="int8")
    indexing.build(int8)
    manifest = store.read(int8.index_path).manifest  # type: ignore[union-attr]
    assert "precision" not in manifest["settings"]
    questions = ["Who chairs the NHS Alliance?", "What is a polysystem?", "How many GP practices could close?"]
    tops = {}
    for precision in ("int8", "fp32", "bf16"):
        config = corpus_config.replace(precision=precision)
        assert sources.staleness(config) is None  # the path is not a setting the index depends on
        forget()
        tops[precision] = [[p.chunk.id for p in get_pipeline(config).retrieve(q, config)] for q in questions]
    for precision in ("fp32", "bf16"):
        overlap = [len(set(a) & set(b)) / len(a) for a, b in zip(tops["int8"], tops[precision], strict=True)]
        assert sum(overlap) / len(overlap) >= 0.8, (precision, tops)
    forget()


def test_progress_counts_passages_while_files_are_still_read(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for d in range(12):
        lines = [f"Ferry {d * 100 + i} leaves pier {i % 7} of harbour {d} at {i % 12} o'clock." for i in range(60)]
        (docs / f"ferries-{d:02}.txt").write_text(f"Timetable {d}\n\n" + " ".join(lines), encoding="utf-8")
    config = load_config(env={}, corpus=str(docs), index_dir=str(tmp_path / "index"))
    seen: list[tuple[str, int, int]] = []
    report = indexing.build(config, progress=lambda stage, done, total: seen.append((stage, done, total)))
    embedded = [(done, total) for stage, done, total in seen if stage == "embedding passages"]
    assert embedded[-1] == (report.chunks, report.chunks)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(embedded))
    reading = [i for i, (stage, _, _) in enumerate(seen) if stage == "reading"]
    first_embedded = next(i for i, (stage, _, _) in enumerate(seen) if stage == "embedding passages")
    assert first_embedded < reading[-1], "passages are embedded before the last file is read"


def test_a_failure_while_reading_ahead_reaches_the_build_and_stops_the_reader() -> None:
    produced: list[int] = []

    def items():
        for i in range(1000):
            produced.append(i)
            if i == 3:
                raise OSError("disk went away")
            yield indexing.Parsed(source=str(i), kept=True)

    with pytest.raises(OSError, match="disk went away"):
        list(indexing._ahead(items()))
    produced.clear()

    def endless():
        i = 0
        while True:
            produced.append(i)
            i += 1
            yield indexing.Parsed(source=str(i), kept=True)

    reader = indexing._ahead(endless(), depth=4)
    next(reader)
    reader.close()
    time.sleep(0.3)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count and count < 50, "a consumer that stops early stops the reading thread"
    assert not any(t.name == "rag-parse" and t.is_alive() for t in threading.enumerate())
