"""Offline question answering over your documents, every claim backed by an exact quote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Config, load_config
from .errors import RagError
from .types import Answer, Citation

if TYPE_CHECKING:
    from .pipeline import ask

__all__ = ["Answer", "Citation", "Config", "RagError", "ask", "load_config"]


def __getattr__(name: str) -> Any:
    """``ask`` loads the pipeline (FAISS, the models) on first use, so a process that only parses
    files (the sandboxed extractor) stays small."""
    if name == "ask":
        from .pipeline import ask

        return ask
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
