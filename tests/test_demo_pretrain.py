"""Tiny SSL pretraining: a real wav2vec2 objective that learns, saved as a loadable backbone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hub_emo.demo import pretrain, synth

#: Smaller still than the demo's stand-in, so a run takes a couple of seconds.
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
            conv_dim=(32, 32, 32, 32), num_codevectors_per_group=16)
#: Two clips, cropped whole: the contrastive task is learnt within a few dozen steps
#: (on the whole corpus a tiny model needs hundreds; see the pretrain docstring).
RUN = dict(steps=40, batch_size=4, crop_seconds=3.0, learning_rate=3e-3, threads=1, config_overrides=TINY)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("pt") / "corpus"
    synth.build_corpus(out, actors=(1, 2), emotions=("neutral", "happy", "sad"), statements=(1,),
                       repetitions=1, domains=("speech",), workers=1)
    return synth.corpus_files(out, "speech")[:2]


@pytest.fixture(scope="module")
def trained(speech, tmp_path_factory) -> Path:
    return pretrain.pretrain_backbone(speech, tmp_path_factory.mktemp("pt") / "a", "speech", seed=0, **RUN).path


def test_loss_goes_down(trained):
    curve = json.loads((trained / pretrain.LOG_FILE).read_text())["curve"]
    loss = np.array(curve["loss"])
    assert loss.size == RUN["steps"] and np.isfinite(loss).all()
    assert loss[-8:].mean() < loss[:8].mean() - 0.3, loss
    contrastive, chance = np.array(curve["contrastive_loss"]), np.array(curve["contrastive_chance"])
    assert contrastive[-8:].mean() < chance[-8:].mean() - 0.3, "learnt, not a shrinking codebook"
    assert chance.size == loss.size and (chance > 0).all() and (chance <= np.log(21) + 1e-6).all()


def test_saved_as_a_plain_wav2vec2_backbone(trained):
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, Wav2Vec2Model

    assert (trained / "model.safetensors").is_file()
    assert not list(trained.glob("*.bin"))
    config = AutoConfig.from_pretrained(trained)
    assert config.layerdrop == 0.0 and config.hidden_size == 32
    model = AutoModel.from_pretrained(trained)
    assert type(model) is Wav2Vec2Model
    extractor = AutoFeatureExtractor.from_pretrained(trained)
    assert extractor.sampling_rate == 16000 and extractor.do_normalize and extractor.return_attention_mask
    inputs = extractor([np.random.default_rng(0).standard_normal(8000)], sampling_rate=16000, return_tensors="pt")
    model.train()  # layer drop would show here as a missing hidden state
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
    assert len(out.hidden_states) == config.num_hidden_layers + 1
    assert out.last_hidden_state.shape == (1, 24, 32)  # 0.5 s at 50 frames/s
    assert "NOT wav2vec2" in (trained / "README.md").read_text()


def test_deterministic_for_a_seed_and_reused(speech, trained, tmp_path):
    from safetensors.torch import load_file

    again = pretrain.pretrain_backbone(speech, tmp_path / "b", "speech", seed=0, **RUN).path
    first, second = load_file(trained / "model.safetensors"), load_file(again / "model.safetensors")
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    curve = lambda p: json.loads((p / pretrain.LOG_FILE).read_text())["curve"]["loss"]  # noqa: E731
    assert curve(trained) == curve(again)

    stamp = (again / "model.safetensors").stat().st_mtime_ns
    reused = pretrain.pretrain_backbone(speech, again, "speech", seed=0, **RUN)
    assert (again / "model.safetensors").stat().st_mtime_ns == stamp, "same settings: reused"
    assert reused.log["curve"]["loss"] == curve(trained)

    other = pretrain.pretrain_backbone(speech, tmp_path / "c", "speech", seed=1, **{**RUN, "steps": 3}).path
    assert not torch.equal(load_file(other / "model.safetensors")["encoder.layers.0.attention.q_proj.weight"],
                           first["encoder.layers.0.attention.q_proj.weight"])


def test_no_audio_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty.*no audio"):
        pretrain.pretrain_backbone(tmp_path / "empty", tmp_path / "out", "speech", steps=1)


def test_cli_pretrain_picks_the_domain_of_a_synth_corpus(speech, tmp_path, capsys):
    from hub_emo.cli import main

    corpus = speech[0].parent.parent
    code = main(["pretrain", str(corpus), str(tmp_path / "bb"), "--domain", "speech", "--steps", "2", "--threads", "1"])
    assert code == 0
    printed = capsys.readouterr().out
    log = json.loads((tmp_path / "bb" / pretrain.LOG_FILE).read_text())
    assert "NOT wav2vec2" in printed and f"loss {log['curve']['loss'][0]:.3f} -> {log['curve']['loss'][-1]:.3f}" in printed
    assert f"+ {pretrain.TINY_CONFIG['diversity_loss_weight']} x codebook diversity" in log["objective"]
    assert len(log["settings"]["files"]) == 10 and all("03-01-" in f for f in log["settings"]["files"])
    with pytest.raises(ValueError, match="no .*music clips|no audio"):
        pretrain.pretrain_backbone(synth.corpus_files(corpus, "music"), tmp_path / "m", "music", steps=1)
