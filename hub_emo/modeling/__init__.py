"""The hub_emo model family (config, model, adapters): self-contained, copied as remote code.

Importing it registers the family with the transformers Auto classes (this file is not
part of the remote code, so it may do that).
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Wav2Vec2FeatureExtractor,
)

from .configuration_hub_emo import EmoConfig
from .modeling_hub_emo import EmoClassifierOutput, EmoForAudioClassification


def register() -> None:
    """Make Auto classes and pipelines load hub_emo checkpoints; saved models carry their code."""
    AutoConfig.register(EmoConfig.model_type, EmoConfig, exist_ok=True)
    AutoModelForAudioClassification.register(EmoConfig, EmoForAudioClassification, exist_ok=True)
    AutoFeatureExtractor.register(EmoConfig, Wav2Vec2FeatureExtractor, exist_ok=True)
    EmoConfig.register_for_auto_class()
    EmoForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")


register()

__all__ = ["EmoConfig", "EmoForAudioClassification", "EmoClassifierOutput", "register"]
