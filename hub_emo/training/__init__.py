"""Fine-tuning: strategies, one- and two-stage cross-domain training, folds, evaluation.

``train(args | **options, dataset=None) -> dict`` and ``train_two_stage(...)`` are the
entry points; `TrainArguments` holds hub_emo's options and, in ``trainer_options``, the
`transformers.TrainingArguments` options the user set (a YAML/JSON file and flags fill both).
Heavy libraries load only when a function runs.
"""

from __future__ import annotations

from .arguments import TrainArguments, parse
from .strategies import STRATEGIES, get_strategy, strategy_config


def __getattr__(name: str):
    """`train` and `train_two_stage` themselves (signatures and docstrings intact), loaded on
    first use: they need torch and transformers."""
    if name in ("train", "train_two_stage"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TrainArguments", "parse", "STRATEGIES", "get_strategy", "strategy_config", "train", "train_two_stage"]
