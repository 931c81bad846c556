"""Adapters inside the backbone: LoRA through peft, residual bottleneck adapters here.

peft has no bottleneck (Houlsby/Pfeiffer) adapter and AdapterHub needs transformers 4.x,
so it is written here. Bottleneck adapters attach by forward hooks on each transformer
layer's ``attention`` / ``feed_forward`` module and live outside the backbone, so the
backbone's parameter names (and thus pretrained checkpoints and LoRA targets) are untouched.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn


class ZeroInitLinear(nn.Linear):
    """A linear layer that starts at zero: an adapter's output projection, so that the adapter is a
    no-op until it trains. Its own type lets weight initialisation (which also runs on weights
    missing from a checkpoint) tell it from other linear layers."""

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)


class BottleneckAdapter(nn.Module):
    """x + up(act(down(x))) (Houlsby et al. 2019), ``up`` zero-initialised: identity at the start.

    No inner LayerNorm: the layer's own norm follows each placement, and a norm per adapter
    costs as much as the adapter itself on CPU.
    """

    def __init__(self, hidden_size: int, reduction: int):
        super().__init__()
        width = max(1, hidden_size // reduction)
        self.down = nn.Linear(hidden_size, width)
        self.act = nn.GELU()
        self.up = ZeroInitLinear(width, hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))


def encoder_layers(backbone: nn.Module) -> nn.ModuleList:
    """The transformer layers of a wav2vec2-family encoder (wav2vec2, HuBERT, WavLM, data2vec, MERT)."""
    layers = getattr(getattr(backbone, "encoder", None), "layers", None)
    if not isinstance(layers, nn.ModuleList):
        raise ValueError(
            f"{type(backbone).__name__} has no encoder.layers: bottleneck adapters need a "
            "wav2vec2-family encoder"
        )
    return layers


def _adapt_output(adapter: BottleneckAdapter):
    def hook(_module, _inputs, output):
        if isinstance(output, tuple):  # attention returns (hidden, weights[, position_bias])
            return (adapter(output[0]), *output[1:])
        return adapter(output)

    return hook


class BottleneckAdapters(nn.Module):
    """One adapter per (layer, placement), hooked onto a backbone's layers."""

    def __init__(self, backbone: nn.Module, hidden_size: int, reduction: int, placement):
        super().__init__()
        layers = encoder_layers(backbone)
        self.adapters = nn.ModuleDict()
        self._handles = []
        for index, layer in enumerate(layers):
            for where in placement:
                target = getattr(layer, where, None)
                if target is None:
                    raise ValueError(f"encoder layer {index} has no {where!r} module for an adapter")
                adapter = BottleneckAdapter(hidden_size, reduction)
                self.adapters[f"{index}_{where}"] = adapter
                self._handles.append(target.register_forward_hook(_adapt_output(adapter)))


def _checkpointed_input_requires_grad(encoder: nn.Module, args, kwargs):
    """Forward pre-hook on the backbone's encoder: the audio analogue of transformers'
    ``enable_input_require_grads``. Under reentrant checkpointing a layer's output requires grad
    only when one of its tensor inputs does; with the backbone frozen (feature encoder and
    projection included) nothing upstream of the layers does, so the adapters inside them would
    silently get no gradient. Active only while gradients are recorded and a layer checkpoints."""
    hidden = args[0] if args else kwargs.get("hidden_states")
    if (
        hidden is None
        or hidden.requires_grad
        or not torch.is_grad_enabled()
        or not any(getattr(layer, "gradient_checkpointing", False) for layer in encoder_layers_of(encoder))
    ):
        return None
    hidden = hidden.detach().requires_grad_(True)
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


def encoder_layers_of(encoder: nn.Module | None):
    """An encoder's transformer layers, or () when it has none (or there is no encoder)."""
    layers = getattr(encoder, "layers", None)
    return layers if isinstance(layers, nn.ModuleList) else ()


def make_adapters_trainable_under_checkpointing(backbone: nn.Module):
    """Register `_checkpointed_input_requires_grad` on the backbone's encoder (a handle, or None
    when the backbone has no wav2vec2-style encoder)."""
    encoder = getattr(backbone, "encoder", None)
    if encoder is None:
        return None
    return encoder.register_forward_pre_hook(_checkpointed_input_requires_grad, with_kwargs=True)


def lora_config(config, modules_to_save=None):
    """The peft `LoraConfig` an `EmoConfig` describes."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_targets,
        modules_to_save=modules_to_save,
        bias="none",
    )


def inject_lora(backbone: nn.Module, config) -> None:
    """Add LoRA layers (adapter name ``default``) to the backbone in place."""
    from peft import inject_adapter_in_model

    inject_adapter_in_model(lora_config(config), backbone)
    if not any("lora_" in name for name, _ in backbone.named_parameters()):
        raise ValueError(
            f"LoRA target modules {config.lora_targets} match no module of "
            f"{type(backbone).__name__}"
        )


def lora_key_mapping(targets) -> dict[str, str]:
    """A transformers ``key_mapping`` that loads weights saved without LoRA into a LoRA model: peft
    moves each target's weight and bias under ``base_layer``. Keys already there, and LoRA's own
    ``lora_A``/``lora_B``, are left alone. transformers applies the reverse on saving, so a loaded
    model writes the targets' weights under their plain names, which this mapping reads again."""
    names = "|".join(re.escape(target) for target in targets)
    return {rf"\.({names})\.(?=weight|bias)": r".\1.base_layer."}


def init_lora(backbone: nn.Module, init) -> None:
    """peft's LoRA initialisation (A: Kaiming-uniform, B: zero, so LoRA starts as a no-op), through
    ``init``'s functions: transformers' ones skip weights loaded from a checkpoint."""
    from peft.tuners.lora import LoraLayer

    for module in backbone.modules():
        if isinstance(module, LoraLayer):
            for name, down in module.lora_A.items():
                init.kaiming_uniform_(down.weight, a=math.sqrt(5))
                init.zeros_(module.lora_B[name].weight)


def merge_lora(backbone: nn.Module) -> int:
    """Fold every LoRA layer into its base weight and put the plain layer back. Returns the count."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    merged = 0
    for name, module in list(backbone.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = backbone.get_submodule(parent_name) if parent_name else backbone
            setattr(parent, child, module.get_base_layer())
            merged += 1
    if hasattr(backbone, "peft_config"):
        del backbone.peft_config
    return merged
