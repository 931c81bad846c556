"""Round trips through the local Hub with the real, unmodified clients.

transformers (push_to_hub, from_pretrained, pipeline), datasets (push_to_hub with configs,
load_dataset with revisions and streaming) and peft (push_to_hub, PeftModel.from_pretrained).
Loading happens in a fresh process where a warm cache could hide a broken server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from tiny import tiny_backbone_config

LABELS = ["neutral", "happy", "sad"]


def run_fresh(code: str, env: dict | None = None) -> dict:
    """Run ``code`` in a new Python process (same HF environment); it prints one JSON line."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    for key, value in list(full_env.items()):
        if value is None:
            del full_env[key]
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full_env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def tiny_classifier(labels=LABELS, seed=0):
    from transformers import Wav2Vec2ForSequenceClassification

    torch.manual_seed(seed)
    config = tiny_backbone_config(
        "wav2vec2",
        layerdrop=0.0,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        classifier_proj_size=8,
    )
    return Wav2Vec2ForSequenceClassification(config).eval()


def extractor():
    from transformers import Wav2Vec2FeatureExtractor

    return Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=True
    )


WAVE = "np.random.default_rng(0).standard_normal(8000).astype('float32') * 0.1"


def test_model_push_then_from_pretrained_and_pipeline_in_fresh_process(hub):
    repo = "hub-emo/tiny-w2v-cls"
    model = tiny_classifier()
    model.push_to_hub(repo)
    extractor().push_to_hub(repo)
    wave = eval(WAVE)  # noqa: S307 - the same expression runs in the child
    with torch.no_grad():
        inputs = extractor()(wave, sampling_rate=16000, return_tensors="pt")
        expected = model(**inputs).logits[0].tolist()

    got = run_fresh(
        f"""
        import json, numpy as np, torch
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline
        wave = {WAVE}
        model = AutoModelForAudioClassification.from_pretrained("{repo}").eval()
        fe = AutoFeatureExtractor.from_pretrained("{repo}")
        with torch.no_grad():
            logits = model(**fe(wave, sampling_rate=16000, return_tensors="pt")).logits[0].tolist()
        top = pipeline("audio-classification", model="{repo}")(wave, top_k=3)
        print(json.dumps({{"logits": logits, "labels": sorted(p["label"] for p in top), "best": top[0]["label"]}}))
        """
    )
    assert np.allclose(got["logits"], expected, atol=1e-5)
    assert got["labels"] == sorted(LABELS)
    assert got["best"] == LABELS[int(np.argmax(expected))]


def test_older_revision_loads_after_newer_push(hub):
    from huggingface_hub import HfApi
    from transformers import AutoConfig, AutoModelForAudioClassification

    repo = "hub-emo/tiny-revisions"
    first = tiny_classifier(seed=1).push_to_hub(repo)
    second = tiny_classifier(labels=["calm", "angry", "fearful", "surprised"], seed=2).push_to_hub(repo)
    assert first.oid != second.oid
    commits = [c.commit_id for c in HfApi().list_repo_commits(repo)]
    assert commits[:2] == [second.oid, first.oid]

    old = AutoModelForAudioClassification.from_pretrained(repo, revision=first.oid)
    new = AutoConfig.from_pretrained(repo)
    assert list(old.config.id2label.values()) == LABELS
    assert list(new.id2label.values()) == ["calm", "angry", "fearful", "surprised"]
    reference = tiny_classifier(seed=1)
    assert torch.equal(old.classifier.weight, reference.classifier.weight)


def _emotion_rows(domain: str, n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "key": [f"{domain}-{i}" for i in range(n)],
        "domain": [domain] * n,
        "emotion": [LABELS[i % len(LABELS)] for i in range(n)],
        "values": [rng.standard_normal(16).astype("float32").tolist() for _ in range(n)],
    }


def test_dataset_with_two_configs_and_revisions(hub, tmp_path):
    from datasets import Dataset, load_dataset
    from huggingface_hub import HfApi

    repo = "hub-emo/tiny-emotions"
    Dataset.from_dict(_emotion_rows("speech", 6, 0)).push_to_hub(repo, config_name="speech")
    Dataset.from_dict(_emotion_rows("music", 4, 1)).push_to_hub(repo, config_name="music")
    before = HfApi().dataset_info(repo).sha
    Dataset.from_dict(_emotion_rows("speech", 3, 2)).push_to_hub(repo, config_name="speech")

    cache = str(tmp_path / "datasets_cache")
    speech = load_dataset(repo, "speech", split="train", cache_dir=cache)
    music = load_dataset(repo, "music", split="train", cache_dir=cache)
    assert speech.num_rows == 3 and set(speech["domain"]) == {"speech"}
    assert music.num_rows == 4 and music["key"][0] == "music-0"
    old = load_dataset(repo, "speech", split="train", revision=before, cache_dir=cache)
    assert old.num_rows == 6 and old["key"][-1] == "speech-5"
    streamed = list(load_dataset(repo, "music", split="train", streaming=True))
    assert [row["key"] for row in streamed] == [f"music-{i}" for i in range(4)]
    assert np.allclose(streamed[2]["values"], music["values"][2])


def test_dataset_loads_in_fresh_process(hub):
    from datasets import Dataset

    repo = "hub-emo/tiny-emotions-fresh"
    Dataset.from_dict(_emotion_rows("speech", 5, 3)).push_to_hub(repo, config_name="speech")
    Dataset.from_dict(_emotion_rows("music", 2, 4)).push_to_hub(repo, config_name="music")
    got = run_fresh(
        f"""
        import json
        from datasets import get_dataset_config_names, load_dataset
        print(json.dumps({{
            "configs": sorted(get_dataset_config_names("{repo}")),
            "speech": list(load_dataset("{repo}", "speech", split="train")["key"]),
            "music": list(load_dataset("{repo}", "music", split="train")["emotion"]),
        }}))
        """
    )
    assert got == {
        "configs": ["music", "speech"],
        "speech": [f"speech-{i}" for i in range(5)],
        "music": LABELS[:2],
    }


def test_peft_push_and_load(hub, tmp_path):
    from peft import LoraConfig, PeftModel, get_peft_model

    repo = "hub-emo/tiny-lora"
    base = tiny_classifier(seed=4)
    base.save_pretrained(tmp_path / "base")
    lora = get_peft_model(
        tiny_classifier(seed=4),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["classifier", "projector"]),
    )
    with torch.no_grad():
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    lora.eval()
    lora.push_to_hub(repo)
    wave = torch.from_numpy(eval(WAVE))[None]  # noqa: S307
    with torch.no_grad():
        expected = lora(wave).logits
    from transformers import Wav2Vec2ForSequenceClassification

    restored = PeftModel.from_pretrained(Wav2Vec2ForSequenceClassification.from_pretrained(tmp_path / "base"), repo).eval()
    with torch.no_grad():
        assert torch.allclose(restored(wave).logits, expected, atol=1e-6)
    assert not torch.allclose(base(wave).logits, expected, atol=1e-4)  # the adapter did change the model


def test_private_repo_refused_without_token(hub, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import RepositoryNotFoundError

    repo = "hub-emo/tiny-private"
    model = tiny_classifier(seed=5)
    model.push_to_hub(repo, private=True)
    api = HfApi()
    assert api.model_info(repo).private is True
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(repo, token=False)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo, "config.json", token=False, cache_dir=str(tmp_path / "anon_cache"))
    denied = run_fresh(
        f"""
        import json
        from transformers import AutoConfig
        try:
            AutoConfig.from_pretrained("{repo}")
            print(json.dumps({{"loaded": True}}))
        except OSError as error:
            print(json.dumps({{"loaded": False, "error": str(error)}}))
        """,
        env={"HF_TOKEN": None, "HF_HOME": str(tmp_path / "anon_home")},
    )
    assert denied["loaded"] is False
    assert repo in denied["error"] and os.environ["HF_TOKEN"] not in denied["error"]
    allowed = run_fresh(
        f"""
        import json
        from transformers import AutoConfig
        print(json.dumps({{"labels": list(AutoConfig.from_pretrained("{repo}").id2label.values())}}))
        """
    )
    assert allowed["labels"] == LABELS
