"""Every hub_emo model carries its backbone's preprocessor; a missing one is its family's
published default (logged), an unreadable one an error naming it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from real_shapes import REPO_IDS, published, write_repo
from raw_http import free_port

#: What differs on purpose from the published files: hub_emo's model always takes the mask.
OURS = {"return_attention_mask": True}


def _comparable(extractor_dict: dict) -> dict:
    keep = ("do_normalize", "feature_size", "padding_side", "padding_value", "return_attention_mask", "sampling_rate")
    return {k: extractor_dict[k] for k in keep}


@pytest.mark.parametrize("repo_id", REPO_IDS)
def test_a_backbone_without_one_gets_its_familys_published_preprocessor(repo_id, tmp_path, caplog):
    from hub_emo.modeling.backbones import load_config, load_preprocessor

    folder = write_repo(repo_id, tmp_path / "repo")
    (folder / "preprocessor_config.json").unlink()
    with caplog.at_level(logging.WARNING, logger="hub_emo.modeling.backbones"):
        extractor = load_preprocessor(folder, load_config(folder))
    assert _comparable(extractor.to_dict()) == _comparable({**published(repo_id)[1], **OURS})
    assert f"{folder}: no preprocessor_config.json" in caplog.text


def test_wavlm_and_mert_keep_raw_waveforms():
    from hub_emo.modeling.backbones import FAMILY_PREPROCESSORS

    assert not FAMILY_PREPROCESSORS["wavlm"][1] and not FAMILY_PREPROCESSORS["mert_model"][1]


def test_an_unreadable_preprocessor_is_an_error_naming_it(tmp_path):
    from hub_emo.inference import feature_extractor_for
    from hub_emo.modeling.backbones import load_config

    folder = write_repo("microsoft/wavlm-base-plus", tmp_path / "wavlm")
    (folder / "preprocessor_config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"wavlm: cannot load its preprocessor preprocessor_config.json"):
        feature_extractor_for(load_config(folder), folder)


def test_a_repository_the_hub_does_not_have_is_an_error_not_a_default(hub):
    from transformers import WavLMConfig

    from hub_emo.modeling.backbones import load_preprocessor

    with pytest.raises(ValueError, match=r"nobody/no-such-backbone: cannot fetch its preprocessor_config.json"):
        load_preprocessor("nobody/no-such-backbone", WavLMConfig())


@pytest.mark.slow  # huggingface_hub retries a refused connection for about 30 s
def test_a_hub_that_cannot_be_reached_is_an_error_not_a_default(tmp_path):
    code = (
        "from transformers import WavLMConfig\n"
        "from hub_emo.modeling.backbones import load_preprocessor\n"
        "try:\n"
        "    load_preprocessor('microsoft/wavlm-base-plus', WavLMConfig())\n"
        "except ValueError as error:\n"
        "    print('ERROR', error)\n"
    )
    env = {**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "HF_HOME": str(tmp_path / "home")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("ERROR microsoft/wavlm-base-plus: cannot fetch its preprocessor_config.json")


def test_saved_and_pushed_models_carry_the_backbones_preprocessor(hub, tmp_path):
    from transformers import AutoFeatureExtractor

    from hub_emo import EmoForAudioClassification

    folder = write_repo("microsoft/wavlm-base-plus", tmp_path / "wavlm-base-plus")
    model = EmoForAudioClassification.from_backbone(str(folder), labels=["calm", "angry"], adapter="lora")
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "preprocessor_config.json").read_text())
    assert _comparable(saved) == _comparable({**published("microsoft/wavlm-base-plus")[1], **OURS})
    reloaded = EmoForAudioClassification.from_pretrained(tmp_path / "saved")
    reloaded.save_pretrained(tmp_path / "resaved")
    assert json.loads((tmp_path / "resaved" / "preprocessor_config.json").read_text()) == saved
    reloaded.push_to_hub("hub-emo/carries-preprocessor")
    pushed = AutoFeatureExtractor.from_pretrained("hub-emo/carries-preprocessor")
    assert _comparable(pushed.to_dict()) == _comparable(saved)


def test_a_padded_batch_from_the_preprocessor_has_an_attention_mask(tmp_path):
    from hub_emo import EmoForAudioClassification

    folder = write_repo("facebook/wav2vec2-base", tmp_path / "w2v")  # published without a mask
    model = EmoForAudioClassification.from_backbone(str(folder), labels=["calm", "angry"])
    model.save_pretrained(tmp_path / "saved")
    from transformers import AutoFeatureExtractor

    fe = AutoFeatureExtractor.from_pretrained(tmp_path / "saved")
    clips = [np.ones(8000, dtype=np.float32), np.ones(4000, dtype=np.float32)]
    batch = fe(clips, sampling_rate=16000, padding=True, return_tensors="pt")
    assert batch["attention_mask"].sum(-1).tolist() == [8000, 4000]
