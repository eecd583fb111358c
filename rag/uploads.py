"""Add files to an index's corpus: each is checked first, and a rejected file changes nothing."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import documents, indexing
from .config import Config
from .errors import CorpusError, RagError
from .formats import HTML_SUFFIXES, TEXT_SUFFIXES, html_to_text
from .indexing import BuildReport, Progress

log = logging.getLogger(__name__)

ACCEPTED = TEXT_SUFFIXES + HTML_SUFFIXES


@dataclass
class UploadResult:
    added: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    report: BuildReport | None = None


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^\w.\- ]+", "_", Path(name).name).strip(" ._") or "document"
    return stem[:120]


def _prepare(path: Path, name: str, max_bytes: int) -> tuple[str, str]:
    """The file name and UTF-8 text to store, or ``CorpusError`` saying why the file is refused."""
    suffix = Path(name).suffix.lower()
    if suffix not in ACCEPTED:
        raise CorpusError(
            f"{name}: {suffix or 'files without an extension'} is not supported; upload .txt, .md or .html"
        )
    size = path.stat().st_size
    if size > max_bytes:
        raise CorpusError(f"{name}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.1f} MB limit; split the file")
    safe = _safe_name(name)
    if suffix in HTML_SUFFIXES:
        raw = path.read_bytes()
        if b"\x00" in raw[:8192]:
            raise CorpusError(f"{name}: looks binary (contains NUL bytes), not an HTML page")
        return Path(safe).stem + ".txt", html_to_text(raw, name)
    return safe, documents.read_text(path, max_bytes)


def add_files(config: Config, files: Sequence[tuple[Path, str]], progress: Progress | None = None) -> UploadResult:
    """Copy ``(path, original name)`` files into the index's uploads folder and index them incrementally.

    Files that cannot be read are reported and left out; if indexing fails, the files just
    written are removed again so the corpus is as it was.
    """
    result = UploadResult()
    uploads = indexing.uploads_dir(config)
    staged: list[tuple[Path, str]] = []
    for path, name in files:
        try:
            target, text = _prepare(Path(path), name, int(config.max_file_mb * 1e6))
        except CorpusError as e:
            result.rejected.append((name, str(e)))
            continue
        except OSError as e:
            result.rejected.append((name, f"{name}: cannot be read ({e.strerror or e})"))
            continue
        staged.append((uploads / target, text))
    if not staged:
        return result
    uploads.mkdir(parents=True, exist_ok=True)
    previous = {dest: dest.read_bytes() for dest, _ in staged if dest.exists()}
    try:
        for dest, text in staged:
            dest.write_text(text, encoding="utf-8")
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
