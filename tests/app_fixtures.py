"""Tiny models, generated audio and a small report for the app and Space tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

LABELS = ["neutral", "happy", "sad", "angry"]


def tiny_model(path: Path, aggregation: str = "weighted_sum") -> Path:
    """A random tiny classifier saved with its feature extractor; distinct layer weights."""
    import torch
    from tiny import tiny_backbone_config

    from hub_emo import EmoConfig, EmoForAudioClassification
    from hub_emo.inference import feature_extractor_for

    torch.manual_seed(0)
    config = EmoConfig(
        backbone_config=tiny_backbone_config("wav2vec2", feat_extract_norm="layer", do_stable_layer_norm=True),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        aggregation=aggregation,
    )
    model = EmoForAudioClassification(config)
    if aggregation == "weighted_sum":
        with torch.no_grad():
            model.layer_weights.weights.copy_(torch.tensor([0.1, 0.9, -0.5]))
    model.save_pretrained(path)
    feature_extractor_for(config).save_pretrained(path)
    return path


def stereo_44k(path: Path, seconds: float = 1.5) -> Path:
    """A 44.1 kHz stereo clip: a tone on the left, noise on the right."""
    t = np.arange(int(44100 * seconds)) / 44100
    left = 0.3 * np.sin(2 * np.pi * 220 * t)
    right = 0.1 * np.random.default_rng(0).standard_normal(t.size)
    sf.write(path, np.stack([left, right], axis=1).astype(np.float32), 44100, subtype="PCM_16")
    return path


def long_clip(path: Path, seconds: float = 25.0, rate: int = 22050) -> Path:
    """A mono glide long enough for several 10-second chunks."""
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * (200 + 5 * t) * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


def corrupt_wav(path: Path) -> Path:
    """A file that claims to be WAV and is not."""
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    return path


def report_md(folder: Path) -> Path:
    """A report like the demo's: a title, sentences, a table and two PNG plots in a subfolder."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (folder / "plots").mkdir(parents=True, exist_ok=True)
    for name in ("layers", "fad"):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1, 2], [0.2, 0.5, 0.4])
        fig.savefig(folder / "plots" / f"{name}.png")
        plt.close(fig)
    text = (
        "# A study\n\nThe best probe is speech-ssl at layer 2 (UA 0.512).\n\n"
        "| model | layer | UA |\n|---|---|---|\n| speech-ssl | 2 | 0.512 |\n| music-ssl | 1 | 0.430 |\n\n"
        "![layers](plots/layers.png)\n![fad](plots/fad.png)\n"
    )
    path = folder / "report.md"
    path.write_text(text)
    return path
