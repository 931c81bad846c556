"""The hub_emo model family (config, model, adapters): self-contained, copied as remote code."""

from .configuration_hub_emo import EmoConfig
from .modeling_hub_emo import EmoClassifierOutput, EmoForAudioClassification

__all__ = ["EmoConfig", "EmoForAudioClassification", "EmoClassifierOutput"]
