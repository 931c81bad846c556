"""The models of a stage: a fresh classifier for a strategy, and what stage 2 takes over from stage 1."""

from __future__ import annotations

from typing import Sequence

from .arguments import TrainArguments
from .strategies import strategy_config


def build_model(backbone, labels: Sequence[str], strategy: str, args: TrainArguments, feature_extractor=None):
    """A fresh classifier for one stage: the strategy's `EmoConfig` on the loaded backbone (and
    its preprocessor, which the model saves beside itself)."""
    from hub_emo.modeling import EmoForAudioClassification

    options = strategy_config(
        strategy,
        pooling=args.pooling,
        head_hidden_sizes=args.head_hidden_sizes,
        head_dropout=args.head_dropout,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha,
        lora_target_modules=args.lora_target_modules,
        bottleneck_reduction=args.bottleneck_reduction,
    )
    return EmoForAudioClassification.from_backbone(
        backbone, list(labels), trust_remote_code=args.trust_remote_code, feature_extractor=feature_extractor,
        **options
    )


def transfer_weights(source, target) -> dict[str, list[str]]:
    """Start a stage-2 model from a trained stage-1 model; returns what was carried and what was not.

    * Backbone: always carried (so a fully fine-tuned stage 1 hands on its encoder). LoRA
      carries as LoRA when both stages use the same rank and targets; otherwise it is
      merged into the backbone weights first and stage 2's own adapters start fresh.
    * Layer weights, attentive pooling and bottleneck adapters: carried when stage 2 has them.
    * Head: carried only when both stages have the same classes in the same order;
      otherwise stage 2 starts a fresh head (its output layer could not mean the same).
    """
    carried, fresh = [], []
    src_cfg, dst_cfg = source.config, target.config
    same_lora = (
        src_cfg.adapter == dst_cfg.adapter == "lora"
        and src_cfg.lora_rank == dst_cfg.lora_rank
        and sorted(src_cfg.lora_targets) == sorted(dst_cfg.lora_targets)
    )
    if same_lora:
        target.backbone.load_state_dict(source.backbone.state_dict())
        carried.append("backbone+lora")
    else:
        if src_cfg.adapter == "lora":
            source.merge_and_unload()
        target.load_backbone_weights(source.backbone.state_dict())
        carried.append("backbone")
        if dst_cfg.adapter == "lora":
            fresh.append("lora")
    same_labels = src_cfg.id2label == dst_cfg.id2label
    for module in ("layer_weights", "pooling", "bottleneck", "head"):
        src, dst = getattr(source, module, None), getattr(target, module, None)
        if dst is None or not list(dst.parameters()):
            continue
        src_state = None if src is None else src.state_dict()
        dst_state = dst.state_dict()
        compatible = src_state is not None and src_state.keys() == dst_state.keys() and all(
            src_state[k].shape == dst_state[k].shape for k in dst_state
        )
        if compatible and (module != "head" or same_labels):
            dst.load_state_dict(src_state)
            carried.append(module)
        else:
            fresh.append(module)
    target.apply_freezing()
    return {"carried": carried, "fresh": fresh}
