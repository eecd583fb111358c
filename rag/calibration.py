"""Per-corpus abstention thresholds: answer confidence is not comparable across corpora.

Measured here, our news gold set wants 0.14 and SQuAD's articles 0.44, so a threshold learned by
``rag eval --calibrate --save`` on a corpus's own labelled questions is kept with that corpus's index
(``calibration.json``, beside the builds, which never touch it) together with a digest of the
answerer models it was measured with; a setting always wins over it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from pathlib import Path

from .config import Config

log = logging.getLogger(__name__)

FILE = "calibration.json"


@functools.cache
def _digest(path: Path, mtime_ns: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def models_digest(models: Path) -> str:
    return _digest(models, models.stat().st_mtime_ns)


@functools.cache
def _read_calibration(path: Path, mtime_ns: int, digest: str) -> float | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        threshold, made_for = float(data["abstain_threshold"]), str(data["models"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("ignoring the unreadable calibration %s (%s); re-run `rag eval --calibrate --save`", path, e)
        return None
    if made_for != digest:
        log.warning(
            "ignoring the calibration %s: it was made for other answerer models; re-run `rag eval --calibrate --save`",
            path,
        )
        return None
    if not 0.0 <= threshold <= 1.0:
        log.warning("ignoring the calibration %s: threshold %s is not between 0 and 1", path, threshold)
        return None
    return threshold


def abstain_threshold(config: Config, default: float, models: Path) -> tuple[float, str]:
    """The threshold in force and where it came from: a setting, else this corpus's calibration, else the model's."""
    if config.abstain_threshold is not None:
        return config.abstain_threshold, "setting"
    path = config.index_path / FILE
    if path.is_file():
        calibrated = _read_calibration(path, path.stat().st_mtime_ns, models_digest(models))
        if calibrated is not None:
            return calibrated, f"calibrated ({path})"
    return default, "answerer default"


def save(config: Config, threshold: float, models: Path, about: dict[str, object]) -> Path:
    """Written beside the index builds (which never touch it), atomically."""
    path = config.index_path / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    payload = {"abstain_threshold": round(float(threshold), 4), "models": models_digest(models), **about}
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
