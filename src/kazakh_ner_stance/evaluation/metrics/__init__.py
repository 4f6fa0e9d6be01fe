"""`evaluate` metric modules that ship inside the package and load without the Hub.

``evaluate.load("seqeval")`` downloads a script from the Hugging Face Hub; these modules
are loaded from a local folder instead (``evaluate.load(<folder>)``), so evaluation works
offline:

* ``kns_seqeval``: strict IOB2 entity-level P/R/F1 computed by ``seqeval`` itself
  (``mode="strict", scheme=IOB2``), per type, micro, macro, plus token accuracy;
* ``kns_stance``: FAVOR/AGAINST/NONE per-class P/R/F1, macro-F1, F_avg and accuracy,
  computed with scikit-learn.

Each folder holds ``<name>/<name>.py`` (the layout ``evaluate`` expects) and an empty
``__init__.py`` so that a regular (non-editable) install ships the script.
"""

from __future__ import annotations

import os
from pathlib import Path

METRICS_DIR = Path(__file__).resolve().parent
AVAILABLE = ("kns_seqeval", "kns_stance")

_cache: dict[str, object] = {}


def metric_path(name: str) -> Path:
    if name not in AVAILABLE:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(AVAILABLE)}")
    return METRICS_DIR / name


def import_evaluate():
    """The Hugging Face `evaluate` library, even when a script named evaluate.py (our own
    scripts/evaluate.py) sits first on sys.path and shadows it."""
    import importlib
    import sys

    mod = importlib.import_module("evaluate")
    if hasattr(mod, "load"):
        return mod
    shadow = Path(getattr(mod, "__file__", "") or "").resolve().parent
    del sys.modules["evaluate"]
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != shadow]
    mod = importlib.import_module("evaluate")
    if not hasattr(mod, "load"):
        raise ImportError(f"`import evaluate` finds {mod.__file__}, not the Hugging Face evaluate library")
    return mod


def load_metric(name: str):
    """The `evaluate` module `name`, loaded from this package (never from the Hub)."""
    if name not in _cache:
        os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
        evaluate = import_evaluate()

        _cache[name] = evaluate.load(str(metric_path(name)), keep_in_memory=True)
    return _cache[name]
