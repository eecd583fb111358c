"""Offline question answering over your documents, every claim backed by an exact quote."""

from .config import Config, load_config
from .errors import RagError
from .pipeline import ask
from .types import Answer, Citation

__all__ = ["Answer", "Citation", "Config", "RagError", "ask", "load_config"]
