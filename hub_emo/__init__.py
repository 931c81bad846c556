"""hub_emo: emotion recognition across speech and music with self-supervised audio models.

Importing the package registers `EmoConfig`, `EmoForAudioClassification` and the feature
extractor with the transformers Auto classes, so ``AutoModelForAudioClassification`` and
``pipeline("audio-classification")`` load hub_emo checkpoints without remote code.
"""

__version__ = "0.1.0"
