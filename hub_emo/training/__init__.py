"""Fine-tuning: strategies, one- and two-stage cross-domain training, folds, evaluation.

``train(args | **options, dataset=None) -> dict`` and ``train_two_stage(...)`` are the
entry points; `TrainArguments` holds hub_emo's options and, in ``trainer_options``, the
`transformers.TrainingArguments` options the user set (a YAML/JSON file and flags fill both).
Heavy libraries load only when a function runs.
"""

from __future__ import annotations

from .arguments import TrainArguments, parse
from .strategies import STRATEGIES, get_strategy, strategy_config


def train(*args, **kwargs):
    from .trainer import train as _train

    return _train(*args, **kwargs)


def train_two_stage(*args, **kwargs):
    from .trainer import train_two_stage as _train_two_stage

    return _train_two_stage(*args, **kwargs)


__all__ = ["TrainArguments", "parse", "STRATEGIES", "get_strategy", "strategy_config", "train", "train_two_stage"]
