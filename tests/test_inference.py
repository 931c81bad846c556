"""Inference on real recordings: files, odd rates, stereo, long audio, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from tiny import tiny_backbone_config

from hub_emo import EmoConfig, EmoForAudioClassification
from hub_emo.audio import AudioError
from hub_emo.inference import chunk_bounds, feature_extractor_for, pipeline, predict, to_waveform

LABELS = ["neutral", "happy", "sad", "angry"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model")
    config = EmoConfig(
        backbone_config=tiny_backbone_config("wav2vec2", feat_extract_norm="layer", do_stable_layer_norm=True),
        id2label=dict(enumerate(LABELS)),
        label2id={l: i for i, l in enumerate(LABELS)},
    )
    model = EmoForAudioClassification(config)
    model.save_pretrained(path)
    feature_extractor_for(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def stereo_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    t = np.arange(int(44100 * 1.5)) / 44100
    left = 0.3 * np.sin(2 * np.pi * 220 * t)
    right = 0.1 * rng.standard_normal(t.size)
    path = tmp_path_factory.mktemp("audio") / "stereo_44k.wav"
    sf.write(path, np.stack([left, right], axis=1).astype(np.float32), 44100)
    return path


def test_pipeline_on_a_44k_stereo_file_matches_manual_preprocessing(model_dir, stereo_file):
    classifier = pipeline(model_dir)
    scores = classifier(str(stereo_file), top_k=None)
    assert [s["label"] for s in scores if s["label"] not in LABELS] == []
    assert len(scores) == len(LABELS) and abs(sum(s["score"] for s in scores) - 1) < 1e-5
    # The same clip, downmixed and resampled by hand, through the model directly.
    data, sr = sf.read(stereo_file, dtype="float32")
    import soxr

    mono = soxr.resample(data.mean(axis=1), sr, 16000, quality="HQ")
    fe = classifier.feature_extractor
    inputs = fe(mono, sampling_rate=16000, return_tensors="pt", return_attention_mask=True)
    model = EmoForAudioClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        probs = model(**inputs).logits.softmax(-1)[0]
    by_label = {s["label"]: s["score"] for s in scores}
    for i, label in enumerate(LABELS):
        assert abs(by_label[label] - probs[i].item()) < 1e-4


def test_every_input_form_gives_the_same_scores(model_dir, stereo_file):
    classifier = pipeline(model_dir)
    data, sr = sf.read(stereo_file, dtype="float32")
    from torchcodec.decoders import AudioDecoder

    forms = [
        str(stereo_file),
        stereo_file.read_bytes(),
        {"array": data, "sampling_rate": sr},
        {"raw": data.T.copy(), "sampling_rate": sr},  # channels first
        AudioDecoder(str(stereo_file)),
    ]
    results = [classifier(form, top_k=None) for form in forms]
    reference = {s["label"]: s["score"] for s in results[0]}
    for result in results[1:]:
        for s in result:
            assert abs(s["score"] - reference[s["label"]]) < 1e-3


def test_long_audio_is_chunked_and_scores_are_averaged(model_dir):
    classifier = pipeline(model_dir)
    rng = np.random.default_rng(1)
    wave = (0.1 * rng.standard_normal(16000 * 5)).astype(np.float32)
    whole = classifier({"array": wave, "sampling_rate": 16000}, top_k=None, chunk_seconds=10)
    chunked = classifier({"array": wave, "sampling_rate": 16000}, top_k=None, chunk_seconds=2)
    # Manual: 3 chunks of 2 s (last aligned to the end), probabilities averaged by length.
    bounds = chunk_bounds(len(wave), 32000, 32000)
    assert bounds == [(0, 32000), (32000, 64000), (48000, 80000)]
    model = classifier.model
    probs = []
    for s, e in bounds:
        x = classifier.feature_extractor(wave[s:e], sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            probs.append(model(**x).logits.softmax(-1)[0])
    expected = torch.stack(probs).mean(0)
    got = {s["label"]: s["score"] for s in chunked}
    for i, label in enumerate(LABELS):
        assert abs(got[label] - expected[i].item()) < 1e-4
    assert {s["label"] for s in whole} == set(LABELS)


def test_stock_transformers_pipeline_loads_the_model(model_dir):
    from transformers import pipeline as hf_pipeline

    import hub_emo

    hub_emo.register()
    classifier = hf_pipeline("audio-classification", model=str(model_dir))
    out = classifier(np.zeros(8000, dtype=np.float32) + 0.01 * np.sin(np.arange(8000)), top_k=2)
    assert len(out) == 2 and out[0]["label"] in LABELS


def test_hub_emo_predict_and_the_stock_pipeline_score_a_file_alike(model_dir, stereo_file, capsys):
    """One inference path: a 44.1 kHz stereo file (which ffmpeg would resample otherwise)
    gets the same scores from `hub-emo predict` and transformers.pipeline("audio-classification")
    once hub_emo's pipeline is registered."""
    from transformers import pipeline as hf_pipeline

    import hub_emo

    from hub_emo.cli import main

    assert main(["predict", str(model_dir), str(stereo_file), "--json", "--top-k", str(len(LABELS))]) == 0
    cli = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["scores"]
    hub_emo.register(pipeline=True)
    stock = hf_pipeline("audio-classification", model=str(model_dir))(str(stereo_file), top_k=None)
    assert [s["label"] for s in stock] == [s["label"] for s in cli]
    assert [s["score"] for s in stock] == [s["score"] for s in cli]


def test_other_models_keep_the_stock_pipeline(tmp_path):
    from transformers import AutoModelForAudioClassification, Wav2Vec2FeatureExtractor
    from transformers import pipeline as hf_pipeline
    from transformers.pipelines import AudioClassificationPipeline

    torch.manual_seed(0)
    AutoModelForAudioClassification.from_config(tiny_backbone_config(num_labels=3)).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path)
    stock = hf_pipeline("audio-classification", model=str(tmp_path))
    wave = 0.1 * np.sin(np.arange(8000, dtype=np.float32) / 7)
    expected = AudioClassificationPipeline(model=stock.model, feature_extractor=stock.feature_extractor)
    assert stock(wave, top_k=None) == expected(wave, top_k=None)
    with pytest.raises(Exception):  # the stock pipeline refuses what only hub_emo's accepts
        stock({"array": np.stack([wave, wave]), "sampling_rate": 16000})


@pytest.mark.parametrize(
    "wave,problem",
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.full(1600, np.nan, dtype=np.float32), "NaN"),
        (np.zeros(16000, dtype=np.float32), "silent"),
    ],
)
def test_bad_waveforms_are_clear_errors(model_dir, wave, problem):
    classifier = pipeline(model_dir)
    with pytest.raises(AudioError, match=problem):
        classifier({"array": wave, "sampling_rate": 16000, "path": "clip.wav"})
    with pytest.raises(AudioError, match="clip.wav"):
        to_waveform({"array": wave, "sampling_rate": 16000, "path": "clip.wav"}, 16000)


def test_bad_files_name_the_file(tmp_path, model_dir):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....not really a wave file" * 10)
    for path, problem in [(empty, "empty"), (corrupt, "cannot decode"), (tmp_path / "missing.wav", "no such file")]:
        with pytest.raises(AudioError) as info:
            predict(model_dir, [str(path)])
        assert str(path) in str(info.value) and problem in str(info.value)


def test_hub_emo_predict_cli(model_dir, stereo_file, tmp_path):
    cmd = [sys.executable, "-m", "hub_emo", "predict", str(model_dir), str(stereo_file), "--json", "--top-k", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["file"] == str(stereo_file) and line["label"] in LABELS and len(line["scores"]) == 2
    table = subprocess.run(cmd[:-3], capture_output=True, text=True)
    assert table.returncode == 0 and "stereo_44k.wav" in table.stdout
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"")
    failed = subprocess.run([*cmd[:5], str(bad), str(stereo_file)], capture_output=True, text=True)
    assert failed.returncode == 1
    assert f"{bad}: file is empty" in failed.stderr and "stereo_44k.wav" in failed.stdout


def test_cli_lists_subcommands_with_help():
    result = subprocess.run([sys.executable, "-m", "hub_emo", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "predict" in result.stdout
    sub = subprocess.run([sys.executable, "-m", "hub_emo", "predict", "--help"], capture_output=True, text=True)
    assert sub.returncode == 0 and "--chunk-seconds" in sub.stdout
