"""Files added through the UI: kept side by side, named safely, added under the index's lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rag import ask, indexing, sources, store
from rag.config import Config
from rag.uploads import MAX_NAME, add_files


def upload(config: Config, tmp_path: Path, name: str, text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """As the browser does: the file arrives in a temporary folder under a name of its own."""
    folder = tmp_path / f"incoming-{time.time_ns()}"
    folder.mkdir()
    path = folder / "blob"
    path.write_text(text, encoding="utf-8")
    result = add_files(config, [(path, name)])
    return result.added, result.rejected


def test_two_uploads_with_one_name_are_both_kept(corpus_config: Config, tmp_path: Path) -> None:
    first, _ = upload(corpus_config, tmp_path, "notes.txt", "The ferry to Hoy leaves at seven every morning.\n")
    second, _ = upload(corpus_config, tmp_path, "notes.txt", "The Lerwick museum closes on Mondays in winter.\n")
    assert first[0].endswith("/notes.txt") and second[0].endswith("/notes (2).txt")
    assert "seven" in ask("When does the ferry to Hoy leave?", config=corpus_config).text
    assert "Mondays" in ask("When is the Lerwick museum closed?", config=corpus_config).text
    again, _ = upload(corpus_config, tmp_path, "notes.txt", "The ferry to Hoy leaves at seven every morning.\n")
    assert again == first, "the same file again is not stored twice"
    assert len(list(sources.uploads_dir(corpus_config).iterdir())) == 2


def test_a_long_name_keeps_its_extension_and_is_indexed(corpus_config: Config, tmp_path: Path) -> None:
    name = "minutes of the harbour board " * 20 + ".md"
    added, rejected = upload(corpus_config, tmp_path, name, "The harbour board raised mooring fees by 4%.\n")
    assert rejected == [] and len(added) == 1
    stored = Path(added[0]).name
    assert stored.endswith(".md") and len(stored) <= MAX_NAME
    indexed = {d["source"] for d in store.read(corpus_config.index_path).documents}  # type: ignore[union-attr]
    assert added[0] in indexed
    assert "4%" in ask("By how much were mooring fees raised?", config=corpus_config).text


def test_names_cannot_leave_the_uploads_folder(corpus_config: Config, tmp_path: Path) -> None:
    added, _ = upload(corpus_config, tmp_path, "../../etc/evil.txt", "A harmless note about tides.\n")
    assert Path(indexing.documents.resolve_source(added[0])).parent == sources.uploads_dir(corpus_config).resolve()


def test_files_are_added_under_the_index_lock(corpus_config: Config, tmp_path: Path) -> None:
    indexing.build(corpus_config)
    uploads = sources.uploads_dir(corpus_config)
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:
        with store.locked(corpus_config.index_path):
            held.set()
            release.wait(30)

    writer = threading.Thread(target=other_writer)
    writer.start()
    held.wait(10)
    done: list[list[str]] = []
    adder = threading.Thread(target=lambda: done.append(upload(corpus_config, tmp_path, "late.txt", "Noon.\n")[0]))
    adder.start()
    time.sleep(1.0)
    assert not (uploads / "late.txt").exists(), "nothing is copied into the corpus while another build runs"
    release.set()
    writer.join()
    adder.join(60)
    assert done and done[0][0].endswith("late.txt") and (uploads / "late.txt").exists()


def test_a_removed_upload_can_be_uploaded_again(corpus_config: Config, tmp_path: Path) -> None:
    text = "The Stenness stones were raised about 5,000 years ago.\n"
    added, _ = upload(corpus_config, tmp_path, "stones.txt", text)
    indexing.remove(corpus_config, added)
    again, rejected = upload(corpus_config, tmp_path, "stones.txt", text)
    assert rejected == [] and again == added
    indexed = {d["source"] for d in store.read(corpus_config.index_path).documents}  # type: ignore[union-attr]
    assert added[0] in indexed
