"""Every family at its published shape, by its Hub id, through the commands and the Python API.

The local Hub serves each repository's published config.json and preprocessor_config.json
(reduced in depth and width only) with random weights (tests/real_shapes.py). A remote-code
backbone that returns no hidden states stands for what MERT's own code does under
transformers 5: every path must name it and the cause, and `probe`/`fad` keep the others' work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from corpora import make_ravdess, tone
from real_shapes import REPO_IDS, published, write_no_hidden_states_repo

torch.set_num_threads(1)
SPEECH_MUSIC = ("facebook/wav2vec2-base", "m-a-p/MERT-v1-95M")
FAST = ["--label_set", "4class", "--max_steps", "2", "--per_device_train_batch_size", "4",
        "--report_to", "none", "--logging_steps", "1", "--max_seconds", "1"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    import hub_emo.data

    root = tmp_path_factory.mktemp("ravdess_real_shapes")
    make_ravdess(root / "raw", actors=(1, 2, 4, 5), emotions=(1, 3, 4, 5), seconds=0.4)
    hub_emo.data.prepare_with_report(["ravdess_speech", "ravdess_song"], root / "raw", out=root / "prepared")
    return root / "prepared"


@pytest.fixture(scope="module")
def no_hidden(tmp_path_factory):
    return str(write_no_hidden_states_repo(tmp_path_factory.mktemp("nohidden")))


def test_probe_every_family_by_id_keeps_results_when_one_model_fails(published_backbones, corpus, no_hidden,
                                                                     tmp_path, capsys):
    from hub_emo.cli import main

    models = [f"{repo_id.split('/')[1]}={repo_id}" for repo_id in REPO_IDS]
    code = main(["probe", *sum((["-m", m] for m in models), []), "-m", f"bad={no_hidden}", "--trust-remote-code",
                 "-d", str(corpus), "--label-set", "4class", "--epochs", "2", "--probe", "logistic",
                 "--out", str(tmp_path / "p"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert "bad" in captured.err and "returned 0 hidden states" in captured.err and "TypeError" not in captured.err
    rows = json.loads((tmp_path / "p" / "probing.json").read_text())
    assert {row["model"] for row in rows} == {repo_id.split("/")[1] for repo_id in REPO_IDS}
    report = (tmp_path / "p" / "report.md").read_text()
    assert "bad" in report and "hidden states" in report  # the failure is recorded beside the results


def test_fad_by_id_keeps_results_when_one_model_fails(published_backbones, corpus, no_hidden, tmp_path, capsys):
    from hub_emo.cli import main

    code = main(["fad", "-m", "mert=m-a-p/MERT-v1-95M", "-m", "wavlm=microsoft/wavlm-base-plus",
                 "-m", f"bad={no_hidden}", "--trust-remote-code", "-d", str(corpus), "--label-set", "4class",
                 "--bootstrap", "2", "--out", str(tmp_path / "f"), "--quiet"])
    captured = capsys.readouterr()
    assert code == 1 and "bad" in captured.err and "hidden states" in captured.err
    assert "most alike" in captured.out
    report = (tmp_path / "f" / "report.md").read_text()
    assert "mert" in report and "wavlm" in report


def test_extraction_resamples_to_the_checkpoints_own_rate(published_backbones, tmp_path):
    import datasets

    from hub_emo.features import load_backbone

    for repo_id in ("m-a-p/MERT-v1-95M", "facebook/hubert-base-ls960"):
        backbone = load_backbone(repo_id)
        assert backbone.sampling_rate == published(repo_id)[1]["sampling_rate"]
    mert = load_backbone("m-a-p/MERT-v1-95M")
    path = tone(tmp_path / "a.wav", "happy", seconds=1.0, sr=16000)
    ds = datasets.Dataset.from_dict({"id": ["a"], "audio": [str(path)]}).cast_column("audio", datasets.Audio())
    from hub_emo.features import extract_features

    features = extract_features(mert, ds, frames_per_clip=1000, cache=False, progress=False)
    # 1 s at 24 kHz through the published conv stack (320x) gives 74 frames; at 16 kHz it would be 49.
    assert len(features.frame_clip) == 74


def test_train_predict_with_a_backbone_without_hidden_states_fails_clearly(corpus, no_hidden, tmp_path, capsys):
    from hub_emo.cli import main

    code = main(["train", "--dataset", str(corpus), "--backbone", no_hidden, "--trust_remote_code", "true",
                 "--strategy", "weighted_sum", "--folds", "1", "--domain", "speech",
                 "--output_dir", str(tmp_path / "t"), *FAST])
    err = capsys.readouterr().err
    assert code == 1 and "returned 0 hidden states" in err and "TypeError" not in err

    from hub_emo.inference import predict
    from hub_emo.modeling import EmoForAudioClassification
    from hub_emo.modeling.backbones import BackboneOutputError, load_feature_extractor

    model = EmoForAudioClassification.from_backbone(no_hidden, ["a", "b"], trust_remote_code=True)
    extractor = load_feature_extractor(no_hidden)
    with pytest.raises(BackboneOutputError, match="hidden states"):
        predict(model, [np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1],
                feature_extractor=extractor)
    model.save_pretrained(tmp_path / "saved")
    extractor.save_pretrained(tmp_path / "saved")
    clips = [str(tone(tmp_path / f"{i}.wav", "sad", seconds=0.5)) for i in range(2)]
    code = main(["predict", str(tmp_path / "saved"), *clips, "--trust-remote-code"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("returned 0 hidden states") == 1 and "TypeError" not in err


@pytest.mark.slow
@pytest.mark.parametrize("backbone,strategy,two_stage", [
    ("m-a-p/MERT-v1-95M", "lora", False),
    ("m-a-p/MERT-v1-330M", "bottleneck", True),
    ("facebook/hubert-base-ls960", "weighted_sum", True),
    ("microsoft/wavlm-base-plus", "lora", False),
    ("facebook/data2vec-audio-base", "bottleneck", False),
    ("facebook/wav2vec2-base", "baseline", False),
])
def test_train_then_predict_and_pipeline_by_hub_id(backbone, strategy, two_stage, published_backbones, corpus,
                                                   tmp_path, capsys):
    from hub_emo.cli import main
    from hub_emo.inference import pipeline

    out = tmp_path / "run"
    stage = ["--source_domain", "speech", "--domain", "music"] if two_stage else ["--domain", "speech"]
    code = main(["train", "--dataset", str(corpus), "--backbone", backbone, "--strategy", strategy,
                 "--folds", "1", *stage, "--output_dir", str(out), *FAST])
    assert code == 0, capsys.readouterr().err[-2000:]
    results = json.loads((out / "results.json").read_text())
    best = results["folds"]["1"]["best_model"] if "best_model" in results["folds"]["1"] else None
    best = best or str(next(out.glob("fold-1/**/best")))
    rate = published(backbone)[1]["sampling_rate"]
    saved = json.loads((__import__("pathlib").Path(best) / "preprocessor_config.json").read_text())
    assert saved["sampling_rate"] == rate
    wav = tone(tmp_path / "clip.wav", "sad", seconds=0.5, sr=44100)
    code = main(["predict", best, str(wav), "--json"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and json.loads(lines[-1])["label"]
    scores = pipeline(best)({"array": np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1, "sampling_rate": 16000})
    assert len(scores) >= 1


def test_two_actor_corpus_trains_all_folds_with_one_warning(published_backbones, tmp_path):
    import hub_emo.data

    make_ravdess(tmp_path / "raw", actors=(1, 2), emotions=(1, 3, 4, 5), seconds=0.4)
    prepared = hub_emo.data.prepare_with_report(["ravdess_speech", "ravdess_song"], tmp_path / "raw",
                                                out=tmp_path / "prepared")
    assert sorted(set(prepared.dataset["speaker"])) == ["Actor_01", "Actor_02"]
    # its own process, as a user runs it (the warning is printed once per run)
    result = subprocess.run(
        [sys.executable, "-m", "hub_emo", "train", "--dataset", str(tmp_path / "prepared"),
         "--backbone", "facebook/wav2vec2-base", "--strategy", "baseline", "--folds", "all", "--domain", "speech",
         "--output_dir", str(tmp_path / "t"), *FAST],
        capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(json.loads((tmp_path / "t" / "results.json").read_text())["folds"]) == ["1", "2"]
    assert result.stderr.count("validation split falls back to none") == 1, result.stderr[-3000:]
    assert sorted(json.loads((tmp_path / "t" / "results.json").read_text())["folds"]) == ["1", "2"]


@pytest.mark.slow
def test_demo_on_a_two_actor_real_layout_corpus_adapts(published_backbones, tmp_path, capsys):
    from hub_emo.cli import main

    make_ravdess(tmp_path / "RAVDESS", actors=(1, 2), emotions=(1, 3, 4, 5, 6), seconds=0.4)
    code = main(["demo", "--root", str(tmp_path / "RAVDESS"), "--backbone", "w2v=facebook/wav2vec2-base",
                 "--backbone", "mert=m-a-p/MERT-v1-95M", "--test-fold", "all", "--max-steps", "1",
                 "--strategies", "baseline", "--no-publish", "--out", str(tmp_path / "demo")])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    assert (tmp_path / "demo" / "report.md").is_file()
