"""hub_emo: emotion recognition across speech and music with self-supervised audio models.

Importing the package registers `EmoConfig`, `EmoForAudioClassification` and the feature
extractor with the transformers Auto classes, so ``AutoModelForAudioClassification`` and
``pipeline("audio-classification")`` load hub_emo checkpoints without remote code. Saved
models also carry their code (``auto_map``), so a process without hub_emo loads them with
``trust_remote_code=True``.
"""

__version__ = "0.1.0"

from transformers import (  # noqa: E402
    AutoConfig,
    AutoFeatureExtractor,
    AutoModelForAudioClassification,
    Wav2Vec2FeatureExtractor,
)

from .modeling import EmoClassifierOutput, EmoConfig, EmoForAudioClassification  # noqa: E402

AutoConfig.register(EmoConfig.model_type, EmoConfig, exist_ok=True)
AutoModelForAudioClassification.register(EmoConfig, EmoForAudioClassification, exist_ok=True)
AutoFeatureExtractor.register(EmoConfig, Wav2Vec2FeatureExtractor, exist_ok=True)
EmoConfig.register_for_auto_class()
EmoForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")

__all__ = ["EmoConfig", "EmoForAudioClassification", "EmoClassifierOutput", "__version__"]
