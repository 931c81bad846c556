"""Tiny corpora and backbones for the analysis tests (and tests of the clip fingerprints)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

RATE = 16000


def make_wavs(folder: Path, emotions=("happy", "sad", "angry"), folds=("1", "2"), per_cell=2,
              seconds=0.25, domains=("speech", "music"), rate=RATE, seed=0) -> dict:
    """Generated clips: music = a tone, speech = noise, both with an emotion-dependent pitch."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    columns = {k: [] for k in ("id", "audio", "label", "domain", "corpus", "speaker",
                               "native_label", "valence", "arousal", "fold")}
    from hub_emo.schema import EMOTIONS

    t = np.arange(int(seconds * rate)) / rate
    for domain in domains:
        for e, emotion in enumerate(emotions):
            for fold in folds:
                for k in range(per_cell):
                    freq = 220.0 * (1.6 ** e) * (1 + 0.02 * k)
                    if domain == "music":
                        wave = 0.3 * np.sin(2 * np.pi * freq * t)
                    else:
                        wave = 0.1 * rng.normal(size=t.size) * (1 + np.sin(2 * np.pi * freq / 50 * t))
                    clip = f"{domain}-{emotion}-{fold}-{k}"
                    path = folder / f"{clip}.wav"
                    sf.write(path, wave.astype(np.float32), rate)
                    columns["id"].append(clip)
                    columns["audio"].append(str(path))
                    columns["label"].append(EMOTIONS.index(emotion))
                    columns["domain"].append(0 if domain == "speech" else 1)
                    columns["corpus"].append("tiny")
                    columns["speaker"].append(f"actor{fold}")
                    columns["native_label"].append(emotion)
                    columns["valence"].append(0.0)
                    columns["arousal"].append(0.0)
                    columns["fold"].append(fold)
    return columns


def make_dataset(folder: Path, **options):
    import datasets

    from hub_emo import schema

    return datasets.Dataset.from_dict(make_wavs(folder, **options), features=schema.dataset_features())


def make_backbone_folder(folder: Path, kind="wav2vec2", seed=0, **overrides) -> Path:
    """A tiny random backbone saved with its feature extractor, as from_pretrained expects."""
    import torch
    from transformers import AutoModel, Wav2Vec2FeatureExtractor

    from tiny import tiny_backbone_config

    torch.manual_seed(seed)
    model = AutoModel.from_config(tiny_backbone_config(kind, **overrides))
    model.save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=RATE, do_normalize=True).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("wavs"))


def test_clip_fingerprints_follow_id_and_audio_not_labels_or_position(tiny_data, tmp_path):
    from hub_emo.data import clip_fingerprints

    base = clip_fingerprints(tiny_data)
    assert len(set(base)) == len(base) == len(tiny_data)
    relabelled = tiny_data.map(lambda y: {"label": (y + 1) % 3}, input_columns="label")
    assert clip_fingerprints(relabelled) == base
    assert clip_fingerprints(tiny_data.select([2, 0])) == [base[2], base[0]]
    other = make_dataset(tmp_path, seed=1)
    assert not set(clip_fingerprints(other)) & set(base)  # same ids, other files


def test_a_clip_stored_as_a_path_gets_a_new_key_when_its_file_changes(tmp_path):
    import soundfile as sf

    from hub_emo.data import clip_fingerprints

    dataset = make_dataset(tmp_path, per_cell=1)
    before = clip_fingerprints(dataset)
    sf.write(tmp_path / f"{dataset['id'][0]}.wav", np.zeros(800, dtype=np.float32), RATE)  # same dataset object
    after = clip_fingerprints(dataset)
    assert after[0] != before[0] and after[1:] == before[1:]
