"""The project's one definition of its metrics, shared by training and analysis.

`hub_emo_metrics.py` is an `evaluate` module: `evaluate` copies that file into its own
cache, so it imports only installed packages and is loaded by path (offline). Training
logs it through `load_metric()`; probing calls its `classification` function directly.
"""

from __future__ import annotations

from pathlib import Path

#: The metrics a run is summarised and compared by (results.json, model cards).
SUMMARY_METRICS = ("accuracy", "balanced_accuracy", "macro_f1")

METRIC_PATH = Path(__file__).resolve().parent / "hub_emo_metrics.py"


def load_metric():
    """The `evaluate` module, loaded by path (works offline), kept in memory (DDP-safe)."""
    import evaluate

    return evaluate.load(str(METRIC_PATH), keep_in_memory=True)
