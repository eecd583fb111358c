"""Add files to an index's corpus: each is checked first, and a rejected file changes nothing."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import documents, formats, indexing
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


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^\w.\- ]+", "_", Path(name).name).strip(" ._") or "document"
    return stem[:120]


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

    Files that cannot be read are reported and left out; if indexing fails, the files just
    written are removed again so the corpus is as it was.
    """
    result = UploadResult()
    uploads = indexing.uploads_dir(config)
    staged: list[tuple[Path, Path]] = []
    for path, name in files:
        try:
            target = _check(Path(path), name, int(config.max_file_mb * 1e6))
        except CorpusError as e:
            result.rejected.append((name, str(e)))
            continue
        except OSError as e:
            result.rejected.append((name, f"{name}: cannot be read ({e.strerror or e})"))
            continue
        staged.append((uploads / target, Path(path)))
    if not staged:
        return result
    uploads.mkdir(parents=True, exist_ok=True)
    previous = {dest: dest.read_bytes() for dest, _ in staged if dest.exists()}
    try:
        for dest, path in staged:
            shutil.copyfile(path, dest)
        result.report = indexing.build(config, progress=progress, reason="upload")
    except (RagError, OSError):
        for dest, _ in staged:
            if dest in previous:
                dest.write_bytes(previous[dest])
            else:
                dest.unlink(missing_ok=True)
        raise
    result.added = [documents.display_source(dest) for dest, _ in staged]
    log.info("added %d uploaded file(s) to %s", len(result.added), config.index_path)
    return result
