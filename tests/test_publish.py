"""Publishing: `push_model`, the model card, and loading a pushed hub_emo model by repo id."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from huggingface_hub import EvalResult, HfApi, ModelCard
from test_hub_clients import WAVE, extractor, run_fresh
from tiny import tiny_backbone_config

from hub_emo import EmoConfig, EmoForAudioClassification
from hub_emo.hub.publish import push_model, render_model_card

LABELS = ["neutral", "happy", "sad", "angry"]
RESULTS = {"accuracy": 0.5, "balanced_accuracy": 0.45, "macro_f1": 0.4, "dataset": "hub-emo/demo-corpus", "strategy": "weighted_sum", "loss": "n/a"}


def emo_model(adapter="none", seed=0):
    torch.manual_seed(seed)
    config = EmoConfig(
        backbone_config=tiny_backbone_config("wav2vec2", layerdrop=0.0),
        aggregation="weighted_sum",
        adapter=adapter,
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
        head_hidden_sizes=[8],
    )
    return EmoForAudioClassification(config).eval()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    model = emo_model()
    model.save_pretrained(folder)
    extractor().save_pretrained(folder)
    (folder / "results.json").write_text(json.dumps(RESULTS))
    (folder / "optimizer.pt").write_bytes(b"pickled optimizer state")  # never pushed
    return folder, model


def test_model_card_metadata_and_sections(run_dir):
    folder, _ = run_dir
    config = json.loads((folder / "config.json").read_text())
    card = render_model_card(config, "hub-emo/card", RESULTS)
    data = card.data
    assert data.library_name == "transformers" and data.pipeline_tag == "audio-classification"
    assert data.datasets == ["hub-emo/demo-corpus"] and data.license == "apache-2.0"
    assert {(r.metric_type, r.metric_value) for r in data.eval_results} == {
        ("accuracy", 0.5),
        ("balanced_accuracy", 0.45),
        ("f1", 0.4),
    }
    assert data.eval_results[0].task_type == "audio-classification"
    text = card.text
    for needed in ("## Labels", "## Training strategy", "## How to use", "## Limitations", "## Citation", "arXiv", "2409.17899", "trust_remote_code=True", "import hub_emo"):
        assert needed in text, needed
    for label in LABELS:
        assert f"| {label} |" in text
    reparsed = ModelCard(str(card))  # huggingface_hub's own parser reads it back unchanged
    assert reparsed.data.to_dict() == data.to_dict()


def test_cross_validated_card_gives_mean_std_and_how_the_fold_was_chosen(run_dir):
    from hub_emo.hub.publish import clean_results

    folder, _ = run_dir
    config = json.loads((folder / "config.json").read_text())
    results = clean_results({**RESULTS, "std": {"accuracy": 0.05, "balanced_accuracy": 0.04, "macro_f1": float("nan")},
                             "cv_folds": 4, "split": "test, 4-fold cross-validation",
                             "selection": "fold 3: the best validation balanced_accuracy (0.7000)"})
    assert results["std"] == {"accuracy": 0.05, "balanced_accuracy": 0.04}  # non-finite dropped
    card = render_model_card(config, "hub-emo/card", results)
    text = card.text
    assert "| Accuracy (WA) | 0.5000 | 0.0500 |" in text and "| Balanced accuracy (UA) | 0.4500 | 0.0400 |" in text
    assert "mean over the 4 folds' test scores" in text and "(test, 4-fold cross-validation split)" in text
    assert "chosen without test data: fold 3: the best validation balanced_accuracy (0.7000)" in text
    assert ModelCard(str(card)).data.to_dict() == card.data.to_dict()
    plain = render_model_card(config, "hub-emo/card", RESULTS).text  # one run: no std column, no selection
    assert "± std" not in plain and "chosen without test data" not in plain


def test_explicit_eval_results_and_bad_config(run_dir, tmp_path):
    folder, _ = run_dir
    config = json.loads((folder / "config.json").read_text())
    mine = [EvalResult(task_type="audio-classification", dataset_type="x/y", dataset_name="x/y", metric_type="accuracy", metric_value=0.9)]
    assert render_model_card(config, "hub-emo/card", eval_results=mine).data.eval_results[0].metric_value == 0.9
    no_labels = {k: v for k, v in config.items() if k not in ("id2label", "label2id")}
    with pytest.raises(ValueError, match="id2label"):
        render_model_card(no_labels, "hub-emo/card")
    with pytest.raises(ValueError, match="config.json"):
        push_model(tmp_path, "hub-emo/nothing")
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match=r"config.json: not valid JSON"):
        push_model(tmp_path, "hub-emo/nothing")


def test_push_model_then_load_by_repo_id_in_fresh_processes(hub, run_dir):
    folder, model = run_dir
    repo = "hub-emo/tiny-emo"
    commit = push_model(folder, repo)
    files = HfApi().list_repo_files(repo)
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(files)
    assert "optimizer.pt" not in files and not any(f.endswith(".bin") for f in files)
    assert HfApi().model_info(repo).sha == commit.oid
    card = ModelCard.load(repo)
    assert card.data.pipeline_tag == "audio-classification" and card.data.eval_results

    wave = eval(WAVE)  # noqa: S307 - the same expression runs in the children
    with torch.no_grad():
        expected = model(**extractor()(wave, sampling_rate=16000, return_tensors="pt")).logits[0].tolist()
    load = f"""
        import json, numpy as np, torch{{extra}}
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification, pipeline
        wave = {WAVE}
        model = AutoModelForAudioClassification.from_pretrained("{repo}", {{options}}).eval()
        fe = AutoFeatureExtractor.from_pretrained("{repo}", {{options}})
        with torch.no_grad():
            logits = model(**fe(wave, sampling_rate=16000, return_tensors="pt")).logits[0].tolist()
        best = pipeline("audio-classification", model="{repo}", {{options}})(wave)[0]["label"]
        print(json.dumps({{{{"logits": logits, "best": best, "cls": type(model).__module__}}}}))
        """
    with_package = run_fresh(load.format(extra=", hub_emo; hub_emo.register()", options=""))
    remote_code = run_fresh(load.format(extra="", options="trust_remote_code=True"))
    for got in (with_package, remote_code):
        assert np.allclose(got["logits"], expected, atol=1e-5)
        assert got["best"] == LABELS[int(np.argmax(expected))]
    assert with_package["cls"].startswith("hub_emo.")
    assert not remote_code["cls"].startswith("hub_emo.")  # loaded from the repo's own code


def test_the_card_states_the_rate_the_saved_model_is_fed_at(hub, tmp_path):
    """No preprocessor saved: the rate is its family default's at the rate its config records
    (as loading the model gives it), not 16 kHz."""
    config = EmoConfig(backbone_config=tiny_backbone_config("wav2vec2", layerdrop=0.0, sampling_rate=24000),
                       id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
                       head_hidden_sizes=[8])
    EmoForAudioClassification(config).save_pretrained(tmp_path / "bare")
    assert not (tmp_path / "bare" / "preprocessor_config.json").exists()
    push_model(tmp_path / "bare", "hub-emo/tiny-emo-24k")
    text = ModelCard.load("hub-emo/tiny-emo-24k").text
    assert "| Sampling rate | 24000 Hz |" in text and "16 kHz" not in text and "16000" not in text


def test_push_private_adapter_only_loads_with_peft(hub, tmp_path):
    from peft import PeftModel
    from transformers import AutoModel

    backbone_dir = tmp_path / "backbone"
    torch.manual_seed(7)
    AutoModel.from_config(tiny_backbone_config("wav2vec2", layerdrop=0.0)).save_pretrained(backbone_dir)
    model = EmoForAudioClassification.from_backbone(backbone_dir, LABELS, adapter="lora", head_hidden_sizes=[8])
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    model.eval().save_pretrained(tmp_path / "run")
    repo = "hub-emo/tiny-emo-adapter"
    push_model(tmp_path / "run", repo, private=True, adapter_only=True)
    api = HfApi()
    assert api.model_info(repo).private is True
    assert set(api.list_repo_files(repo)) == {".gitattributes", "README.md", "adapter_config.json", "adapter_model.safetensors",
                                            "preprocessor_config.json"}
    card = ModelCard.load(repo)
    assert card.data.library_name == "peft" and "PeftModel.from_pretrained" in card.text

    base = EmoForAudioClassification.from_backbone(backbone_dir, LABELS, adapter="none", head_hidden_sizes=[8])
    restored = PeftModel.from_pretrained(base, repo).eval()
    wave = torch.from_numpy(eval(WAVE))[None]  # noqa: S307
    with torch.no_grad():
        assert torch.allclose(restored(wave).logits, model(wave).logits, atol=1e-6)

    with pytest.raises(ValueError, match="adapter='lora'"):
        full = tmp_path / "full"
        emo_model().save_pretrained(full)
        push_model(full, "hub-emo/not-an-adapter", adapter_only=True)


def test_cli_push_parses_and_runs(hub, run_dir, capsys):
    from hub_emo.cli import main

    folder, _ = run_dir
    assert main(["push", str(folder), "hub-emo/tiny-emo-cli", "--private"]) == 0
    out = capsys.readouterr().out
    assert "hub-emo/tiny-emo-cli" in out and "/commit/" in out
    assert HfApi().model_info("hub-emo/tiny-emo-cli").private is True
