"""Tiny random backbone configs, as transformers' own model tests use.

Hidden size 32, 2 layers, conv_dim (32, 32, 32): a forward pass takes milliseconds.
"""

from __future__ import annotations

from transformers import (
    Data2VecAudioConfig,
    HubertConfig,
    Wav2Vec2Config,
    WavLMConfig,
)

TINY_COMMON = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,
    conv_dim=(32, 32, 32),
    conv_stride=(4, 4, 4),
    conv_kernel=(8, 8, 8),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    vocab_size=32,
    layerdrop=0.1,  # the transformers default family; hub_emo must neutralise it
)

BACKBONES = {
    "wav2vec2": Wav2Vec2Config,
    "hubert": HubertConfig,
    "wavlm": WavLMConfig,
    "data2vec-audio": Data2VecAudioConfig,
}


def tiny_backbone_config(kind: str = "wav2vec2", **overrides):
    """A tiny random config of one of the supported backbone families."""
    options = dict(TINY_COMMON)
    if kind == "wavlm":
        options.update(num_buckets=8, max_bucket_distance=16)
    if kind == "data2vec-audio":
        options.update(conv_pos_kernel_size=4, num_conv_pos_embeddings=4)
    options.update(overrides)
    return BACKBONES[kind](**options)
