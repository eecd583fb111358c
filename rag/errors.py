"""Exception types; each message names the value, the limit and the fix."""

from __future__ import annotations


class RagError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


class ConfigError(RagError, ValueError):
    pass


class UnknownNameError(ConfigError):
    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]) -> None:
        super().__init__(f"unknown {kind} {name!r}; valid names: {', '.join(sorted(valid))}")


class QuestionError(RagError, ValueError):
    pass


class HistoryError(RagError, ValueError):
    pass


class CorpusError(RagError):
    pass


class IndexError_(RagError):
    """Problems with the on-disk index (named to avoid shadowing the builtin)."""


class IndexCorruptError(IndexError_):
    pass


class IndexWriteError(IndexError_):
    pass


class IndexMismatchError(IndexError_):
    pass


class IndexBusyError(IndexError_):
    pass


class DatasetError(RagError, ValueError):
    """A dataset for ``rag eval --dataset`` that does not follow the documented layout."""


class ModelLoadError(RagError):
    pass
