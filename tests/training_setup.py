"""The tiny RAVDESS and tiny wav2vec2 backbone the training tests share.

4 actors (= 4 folds), 4 emotions, speech + song, 0.4 s tones whose pitch follows the
emotion (every training crop is the whole clip), prepared by hub_emo.data.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModel, Wav2Vec2FeatureExtractor

from corpora import make_ravdess
from tiny import tiny_backbone_config


def prepared_ravdess(root: Path):
    """(prepared Parquet folder, the same rows as a Dataset)."""
    import hub_emo.data

    make_ravdess(root / "raw", actors=(1, 2, 4, 5), emotions=(1, 3, 4, 5), seconds=0.4)
    prepared = hub_emo.data.prepare_with_report(["ravdess_speech", "ravdess_song"], root / "raw", out=root / "prepared")
    return root / "prepared", prepared.dataset


def tiny_backbone_folder(folder: Path, seed: int) -> str:
    """A random tiny wav2vec2 saved with its feature extractor, as a Hub checkpoint is."""
    torch.manual_seed(seed)
    AutoModel.from_config(tiny_backbone_config()).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(return_attention_mask=False).save_pretrained(folder)
    return str(folder)
