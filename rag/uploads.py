"""Add files to an index's corpus: each is checked first, and a rejected file changes nothing."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import documents, formats, indexing, sources, store
from .config import Config
from .errors import CorpusError, RagError
from .indexing import BuildReport, Progress

log = logging.getLogger(__name__)

ACCEPTED = formats.ALL_SUFFIXES


@dataclass
class UploadResult:
    added: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    report: BuildReport | None = None


MAX_NAME = 120


def _safe_name(name: str) -> str:
    """A name safe on any file system, at most ``MAX_NAME`` characters, that keeps its extension."""
    base = Path(name.replace("\\", "/")).name
    suffix = Path(base).suffix.lower()
    stem = re.sub(r"[^\w.\- ]+", "_", base[: len(base) - len(suffix)]).strip(" ._") or "document"
    return stem[: MAX_NAME - len(suffix) - 8] + suffix  # room for " (NNNN)"


def _free_name(folder: Path, name: str, data: bytes, taken: set[str]) -> str:
    """``name`` unless another file already has it; then "name (2).ext", "name (3).ext", ... so two
    uploads of one name never overwrite each other. The same bytes again keep the name they have."""
    stem, suffix = name[: len(name) - len(Path(name).suffix)], Path(name).suffix
    for n in range(1, 10_000):
        candidate = name if n == 1 else f"{stem} ({n}){suffix}"
        if candidate in taken:
            continue
        path = folder / candidate
        if not path.exists() or path.read_bytes() == data:
            return candidate
    raise CorpusError(f"{name}: 10,000 uploads already have this name; rename the file")


def _check(path: Path, name: str, max_bytes: int) -> str:
    """The name to store the file under, or ``CorpusError`` saying why it is refused; reads it as indexing will."""
    suffix = Path(name).suffix.lower()
    if suffix not in ACCEPTED:
        what = suffix or "files without an extension"
        raise CorpusError(f"{name}: {what} is not supported; upload {', '.join(ACCEPTED)}")
    documents.check_size(path, max_bytes)
    try:
        if suffix in formats.TEXT_SUFFIXES:
            documents.read_text(path, max_bytes)
        else:
            formats.extract(path, suffix)
    except CorpusError as e:
        raise CorpusError(str(e).replace(str(path), name)) from None
    return _safe_name(name)


def add_files(config: Config, files: Sequence[tuple[Path, str]], progress: Progress | None = None) -> UploadResult:
    """Copy ``(path, original name)`` files into the index's uploads folder and index them incrementally.

    Files that cannot be read are reported and left out. Copying and indexing are one step under the
    index's lock, so concurrent uploads never see each other's half-added files; if indexing fails,
    the files just written are removed again so the corpus is as it was.
    """
    result = UploadResult()
    uploads = sources.uploads_dir(config)
    checked: list[tuple[str, str, bytes]] = []
    for path, name in files:
        try:
            safe = _check(Path(path), name, int(config.max_file_mb * 1e6))
            checked.append((name, safe, Path(path).read_bytes()))
        except CorpusError as e:
            result.rejected.append((name, str(e)))
        except OSError as e:
            result.rejected.append((name, f"{name}: cannot be read ({e.strerror or e})"))
    if not checked:
        return result
    with store.locked(config.index_path):
        uploads.mkdir(parents=True, exist_ok=True)
        staged: dict[Path, str] = {}
        written: list[Path] = []
        try:
            for name, safe, data in checked:
                dest = uploads / _free_name(uploads, safe, data, {p.name for p in staged})
                staged[dest] = name
                if not dest.exists():
                    dest.write_bytes(data)
                    written.append(dest)
            result.report = indexing.build(config, progress=progress, reason="upload", readd=list(staged))
        except (RagError, OSError):
            for dest in written:
                dest.unlink(missing_ok=True)
            raise
    skipped = dict(result.report.skipped)
    for dest, name in staged.items():
        source = documents.display_source(dest)
        if source in skipped:
            result.rejected.append((name, skipped[source]))
        else:
            result.added.append(source)
    log.info("added %d uploaded file(s) to %s", len(result.added), config.index_path)
    return result
