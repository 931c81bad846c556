"""Nothing pushed holds a local path, the user's name or the host's: `train --push_to_hub` here, the
demo's Hub in tests/test_demo_run.py. A local backbone is recorded by its folder name and weight hash."""

from __future__ import annotations

import json

import pytest
import torch

from leaks import leaks, repo_leaks
from training_setup import prepared_ravdess, tiny_backbone_folder

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return prepared_ravdess(tmp_path_factory.mktemp("ravdess"))


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    return tiny_backbone_folder(tmp_path_factory.mktemp("backbone") / "tiny-w2v", seed=0)


def test_the_scanner_finds_what_it_looks_for(tmp_path):
    assert leaks(json.dumps({"model": str(tmp_path / "run" / "best")}))
    assert leaks('"_name_or_path": "/home/someone/models/w2v"')
    assert not leaks('{"backbone": "tiny-w2v", "weights_sha256": "ab12", "repo": "facebook/wav2vec2-base"}')


@pytest.mark.parametrize("strategy", ["weighted_sum", "lora"])
def test_train_push_to_hub_pushes_no_local_path(strategy, hub, tmp_path, corpus, backbone):
    from huggingface_hub import HfApi

    from hub_emo.cli import main

    repo = f"hub-emo/no-leak-{strategy}"
    assert main(["train", "--dataset", str(corpus[0]), "--backbone", backbone, "--strategy", strategy,
                 "--max_steps", "2", "--output_dir", str(tmp_path / "run"), "--push_to_hub", repo,
                 "--report_to", "none", "--label_set", "4class", "--domain", "speech", "--folds", "1",
                 "--per_device_train_batch_size", "4"]) == 0
    api = HfApi()
    assert repo_leaks(api, repo) == {}
    config = json.loads(open(api.hf_hub_download(repo, "config.json")).read())
    assert config["backbone_name_or_path"].startswith("tiny-w2v@sha256:")
    assert "preprocessor_config.json" in api.list_repo_files(repo)


@pytest.mark.parametrize("kind,targets", [("wavlm", "intermediate_dense, output_dense"), ("wav2vec2", "q_proj, v_proj")])
def test_the_card_reads_lora_targets_from_the_config(kind, targets):
    from hub_emo.hub.publish import render_model_card
    from hub_emo.modeling import EmoConfig
    from tiny import tiny_backbone_config

    config = EmoConfig(backbone_config=tiny_backbone_config(kind), adapter="lora", id2label={0: "calm", 1: "angry"})
    card = str(render_model_card(config.to_dict(), "me/ser"))
    assert f"LoRA (rank 16, alpha 32) on {targets}" in card


def test_a_local_backbone_is_recorded_by_folder_name_and_weight_hash(backbone):
    from transformers import AutoModel

    from hub_emo import EmoForAudioClassification
    from hub_emo.modeling.backbones import weights_hash

    model = EmoForAudioClassification.from_backbone(backbone, labels=["calm", "angry"])
    expected = f"tiny-w2v@sha256:{weights_hash(AutoModel.from_pretrained(backbone))[:16]}"
    assert model.config.backbone_name_or_path == expected
    assert model.config.backbone_config._name_or_path == expected
    assert not leaks(model.config.to_json_string())
