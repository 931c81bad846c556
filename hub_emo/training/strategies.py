"""Fine-tuning strategies: one name → the `EmoConfig` options and optimiser defaults.

The paper compares what trains, not how the model is wired, so every strategy shares the
same backbone, pooling and head; only aggregation, adapters and freezing differ:

==============  ==================================  =====================  ==========
strategy        what trains                          aggregation            lr, epochs
==============  ==================================  =====================  ==========
baseline        head                                 last layer             5e-4, 30
weighted_sum    layer weights + head                 softmax-weighted sum   5e-4, 30
lora            LoRA (rank 16) + layer weights+head  softmax-weighted sum   5e-4, 30
bottleneck      bottleneck adapters + weights+head   softmax-weighted sum   5e-4, 30
full            backbone (not the CNN) + the rest    softmax-weighted sum   3e-5, 30
==============  ==================================  =====================  ==========

Defaults come from the field: peft-ser (Feng & Narayanan) trains LoRA and adapters with
rank 16, lr 5e-4 for 30 epochs; the frozen-backbone probes use the same optimiser so the
comparison is fair; full fine-tuning uses 3e-5, the rate of transformers'
audio-classification example, with the convolutional feature encoder frozen (the field's
default since wav2vec 2.0). A frozen backbone without adapters runs under
``torch.no_grad`` (see `EmoForAudioClassification.backbone_needs_grad`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Strategy:
    """A named fine-tuning recipe: `EmoConfig` options plus its optimiser defaults."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    learning_rate: float = 5e-4
    num_train_epochs: float = 30.0
    description: str = ""

    @property
    def frozen_backbone(self) -> bool:
        """Nothing in the backbone trains: its features can be extracted once and cached."""
        return self.config.get("adapter", "none") == "none" and self.config.get("freeze_backbone", True)


_FROZEN = dict(adapter="none", freeze_backbone=True, freeze_feature_encoder=True)

STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("baseline", dict(_FROZEN, aggregation="last"),
                 description="frozen backbone; its last layer, mean-pooled, feeds the head"),
        Strategy("weighted_sum", dict(_FROZEN, aggregation="weighted_sum"),
                 description="frozen backbone; learned softmax weights over all hidden states + head"),
        Strategy("lora",
                 dict(aggregation="weighted_sum", adapter="lora", freeze_backbone=True,
                      freeze_feature_encoder=True, lora_rank=16, lora_alpha=32),
                 description="LoRA (rank 16) inside the backbone + weighted sum + head"),
        Strategy("bottleneck",
                 dict(aggregation="weighted_sum", adapter="bottleneck", freeze_backbone=True,
                      freeze_feature_encoder=True, bottleneck_reduction=16),
                 description="residual bottleneck adapters in every layer + weighted sum + head"),
        Strategy("full",
                 dict(aggregation="weighted_sum", adapter="none", freeze_backbone=False,
                      freeze_feature_encoder=True),
                 learning_rate=3e-5,
                 description="the whole transformer trains (CNN feature encoder frozen) + weighted sum + head"),
    )
}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}") from None


def strategy_config(name: str, **overrides) -> dict[str, Any]:
    """The `EmoConfig` options of a strategy; ``overrides`` that are None are ignored.

    Overrides may tune a strategy (LoRA rank, pooling, head) but not change what it is:
    an ``adapter`` or freezing override is refused, so a strategy name always means one thing.
    """
    strategy = get_strategy(name)
    fixed = {"adapter", "freeze_backbone", "freeze_feature_encoder"}
    clash = {k for k, v in overrides.items() if k in fixed and v is not None and v != strategy.config.get(k)}
    if clash:
        raise ValueError(f"strategy {name!r} fixes {sorted(clash)}; pick another strategy instead")
    options = dict(strategy.config)
    options.update({k: v for k, v in overrides.items() if v is not None})
    return options


def trainable_parameter_names(model) -> list[str]:
    """The parameters a step updates (for tests and reports)."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def trainable_share(model) -> float:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable / total if total else 0.0
