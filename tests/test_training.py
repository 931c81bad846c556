"""Fine-tuning: strategies train what they say, loss falls, two-stage transfer, resume, bad input, CLI, push.

The tiny RAVDESS and tiny random wav2vec2 of tests/training_setup.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, TrainerCallback

from training_setup import prepared_ravdess, tiny_backbone_folder

torch.set_num_threads(1)

FAST = dict(report_to="none", per_device_train_batch_size=4, per_device_eval_batch_size=8,
            label_set="4class", logging_steps=1, head_dropout=0.0, warmup_ratio=0.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """(prepared Parquet folder, the same rows as a Dataset)."""
    return prepared_ravdess(tmp_path_factory.mktemp("ravdess"))


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    return tiny_backbone_folder(tmp_path_factory.mktemp("backbone"), seed=0)


def _flags(options: dict, **more) -> list[str]:
    return [item for key, value in {**options, **more}.items() for item in (f"--{key}", str(value))]


def _train(tmp_path, corpus, backbone, name="run", **options):
    from hub_emo.training import train

    settings = dict(FAST, backbone=backbone, domain="speech", folds="1", output_dir=str(tmp_path / name))
    settings.update(options)
    return train(dataset=corpus[1], **settings)


# ---------------------------------------------------------------------- strategies
def _expected_trainable(strategy: str, names: list[str]) -> set[str]:
    head = {n for n in names if n.startswith("head.")}
    weights = {"layer_weights.weights"}
    return {
        "baseline": head,
        "weighted_sum": head | weights,
        "lora": head | weights | {n for n in names if "lora_" in n},
        "bottleneck": head | weights | {n for n in names if n.startswith("bottleneck.")},
        "full": {n for n in names if not n.startswith("backbone.feature_extractor.")},
    }[strategy]


@pytest.mark.parametrize("strategy", ["baseline", "weighted_sum", "lora", "bottleneck", "full"])
def test_trainable_parameters_are_what_the_strategy_says(strategy, backbone):
    from hub_emo.training import parse
    from hub_emo.training.strategies import trainable_parameter_names
    from hub_emo.training.models import build_model

    model = build_model(AutoModel.from_pretrained(backbone), ["a", "b", "c"], strategy, parse(strategy=strategy))
    names = [n for n, _ in model.named_parameters()]
    assert set(trainable_parameter_names(model)) == _expected_trainable(strategy, names)
    assert model.backbone_needs_grad == (strategy in ("lora", "bottleneck", "full"))
    if strategy == "lora":
        assert model.config.lora_rank == 16 and any("lora_A" in n for n in names)


@pytest.mark.parametrize("strategy", ["baseline", "weighted_sum", "lora", "bottleneck", "full"])
def test_each_strategy_trains_and_the_loss_falls(strategy, tmp_path, corpus, backbone):
    result = _train(tmp_path, corpus, backbone, strategy=strategy, max_steps=24, learning_rate=5e-3,
                    validation_fraction=0.0)
    history = result["folds"]["1"]
    losses = json.loads((Path(history["model"]).parent / "results.json").read_text())["loss_history"]
    assert len(losses) == 24
    assert np.mean(losses[-6:]) < np.mean(losses[:6]) - 0.05, losses
    assert result["strategy"] == strategy and 0 <= result["accuracy"] <= 1


# ---------------------------------------------------------------------- two stages
def test_two_stage_starts_stage_2_from_stage_1(tmp_path, corpus, backbone):
    from hub_emo.modeling import EmoForAudioClassification
    from hub_emo.training import parse, train_two_stage
    from hub_emo.training.models import build_model, transfer_weights

    result = train_two_stage(dataset=corpus[1], source_domain="music", domain="speech", strategy="lora",
                             backbone=backbone, folds="1", output_dir=str(tmp_path / "two"), max_steps=6,
                             learning_rate=5e-3, **{k: v for k, v in FAST.items()})
    fold = result["folds"]["1"]
    assert fold["stage1"]["stage"] == "stage1" and fold["stage"] == "stage2"
    assert fold["transfer"] == {"carried": ["backbone+lora", "layer_weights", "head"], "fresh": []}
    assert result["source"]["domain"] == "music" and result["two_stage"]

    stage1 = Path(fold["stage1"]["model"])
    source = EmoForAudioClassification.from_pretrained(stage1)
    labels = list(source.config.id2label.values())
    # Same labels, weighted_sum in stage 2: LoRA is merged into the backbone, weights and head carry.
    target = build_model(AutoModel.from_pretrained(backbone), labels, "weighted_sum", parse())
    moved = transfer_weights(EmoForAudioClassification.from_pretrained(stage1), target)
    assert moved == {"carried": ["backbone", "layer_weights", "head"], "fresh": []}
    torch.testing.assert_close(target.layer_weights.weights, source.layer_weights.weights)
    source.eval(), target.eval()
    wave = torch.randn(1, 6400)
    with torch.no_grad():
        torch.testing.assert_close(target(wave).logits, source(wave).logits, atol=1e-5, rtol=1e-5)
    # Other classes: the head starts fresh, the rest still carries.
    other = build_model(AutoModel.from_pretrained(backbone), ["happy", "sad"], "lora", parse())
    moved = transfer_weights(EmoForAudioClassification.from_pretrained(stage1), other)
    assert moved == {"carried": ["backbone+lora", "layer_weights"], "fresh": ["head"]}


# ---------------------------------------------------------------------- resume
class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt(f"killed at step {self.step}")


def test_resume_after_a_kill_equals_the_uninterrupted_run(tmp_path, corpus, backbone):
    from hub_emo.modeling import EmoForAudioClassification
    from hub_emo.training import train

    options = dict(FAST, dataset=corpus[0], backbone=backbone, domain="speech", folds="1", max_steps=8,
                   eval_steps=2, learning_rate=5e-3, head_dropout=0.2, strategy="weighted_sum")
    whole = train(output_dir=str(tmp_path / "whole"), **options)
    with pytest.raises(KeyboardInterrupt):
        train(output_dir=str(tmp_path / "cut"), callbacks=[StopAt(5)], **options)
    assert (tmp_path / "cut" / "fold-1" / "train" / "checkpoint-4").is_dir()
    with pytest.raises(ValueError, match="resume"):
        train(output_dir=str(tmp_path / "cut"), **options)
    resumed = train(output_dir=str(tmp_path / "cut"), resume=True, **options)

    a, b = whole["folds"]["1"], resumed["folds"]["1"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "confusion_matrix", "best_validation", "steps"):
        assert a[key] == b[key], key
    np.testing.assert_allclose(a["layer_weights"], b["layer_weights"], atol=1e-6)
    ma = EmoForAudioClassification.from_pretrained(a["model"]).state_dict()
    mb = EmoForAudioClassification.from_pretrained(b["model"]).state_dict()
    for key in ma:
        torch.testing.assert_close(ma[key], mb[key], atol=1e-6, rtol=1e-6)
    # A finished run resumes as a no-op with the same results.
    again = train(output_dir=str(tmp_path / "cut"), resume=True, **options)
    assert again["folds"]["1"]["accuracy"] == b["accuracy"]


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "options, message",
    [
        (dict(label_set="happy,sad"), "not in label set"),
        (dict(folds="9"), r"fold\(s\) \['9'\] do not exist"),
        (dict(backbone="/nonexistent/backbone"), "cannot load backbone"),
        (dict(source_domain="speech"), "share domain"),
        (dict(source_domain="music", domain=None), "share domain"),
        (dict(strategy="prompt"), "unknown strategy"),
    ],
)
def test_bad_input_is_refused_before_training(options, message, tmp_path, corpus, backbone):
    from hub_emo.training import train

    settings = dict(FAST, dataset=corpus[0], backbone=backbone, domain="speech", folds="1",
                    output_dir=str(tmp_path / "bad"), max_steps=2)
    settings.update(options)
    with pytest.raises(ValueError, match=message):
        train(**settings)
    assert not (tmp_path / "bad" / "fold-1").exists()


def test_empty_split_is_refused(tmp_path, corpus, backbone):
    from hub_emo.training import train

    one_actor = corpus[1].filter(lambda s: s == "Actor_02", input_columns="speaker")
    with pytest.raises(ValueError, match="empty train split"):
        train(dataset=one_actor, **dict(FAST, backbone=backbone, domain="speech", folds="1",
                                         validation_fraction=0.0, output_dir=str(tmp_path / "x")))


# ---------------------------------------------------------------------- CLI, outputs
def test_cli_config_file_and_flags_configure_the_same_run(tmp_path, corpus, backbone):
    import yaml

    from hub_emo.cli import main

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(dict(
        dataset=str(corpus[0]), backbone=backbone, label_set="4class", domain="speech", folds="1,2",
        strategy="baseline", max_steps=4, per_device_train_batch_size=4, output_dir=str(tmp_path / "cli"),
        report_to="tensorboard", eval_steps=2,
    )))
    assert main(["train", str(config), "--strategy", "weighted_sum", "--learning-rate", "0.01"]) == 0
    results = json.loads((tmp_path / "cli" / "results.json").read_text())
    assert results["strategy"] == "weighted_sum" and results["arguments"]["learning_rate"] == 0.01
    assert set(results["folds"]) == {"1", "2"}
    assert results["summary"]["accuracy"].count("±") == 1
    assert results["std"]["accuracy"] == pytest.approx(
        np.std([results["folds"][f]["accuracy"] for f in ("1", "2")], ddof=1))
    fold = tmp_path / "cli" / "fold-1" / "train"
    assert (fold / "confusion_matrix.png").stat().st_size > 0 and (fold / "layer_weights.png").is_file()
    assert list(fold.glob("runs/*/events.out.tfevents.*")), "no TensorBoard log"
    assert (fold / "best" / "model.safetensors").is_file() and (fold / "best" / "preprocessor_config.json").is_file()
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategy: lora\nnot_an_option: 1\n")
    assert main(["train", str(bad)]) == 2


def test_push_to_hub_then_from_pretrained(hub, tmp_path, corpus, backbone):
    from transformers import AutoModelForAudioClassification

    import hub_emo  # noqa: F401 - registers the Auto classes

    from hub_emo.cli import main

    out = tmp_path / "pushed"
    assert main(["train", "--dataset", str(corpus[0]), "--backbone", backbone, "--strategy", "weighted_sum",
                 "--max_steps", "3", "--output_dir", str(out), "--push_to_hub", "hub-emo/train-push-test",
                 *_flags(FAST, domain="speech", folds="1")]) == 0
    result = json.loads((out / "results.json").read_text())
    pulled = AutoModelForAudioClassification.from_pretrained("hub-emo/train-push-test").eval()
    local = AutoModelForAudioClassification.from_pretrained(result["best_model"]).eval()
    wave = torch.randn(1, 6400)
    with torch.no_grad():
        torch.testing.assert_close(pulled(wave).logits, local(wave).logits)
    from huggingface_hub import hf_hub_download

    card = Path(hf_hub_download("hub-emo/train-push-test", "README.md")).read_text()
    assert "balanced_accuracy" in card or "Balanced accuracy" in card
    assert "chosen without test data: fold 1: the best validation balanced_accuracy" in card
    assert "cross-validation split" in card and result["best_fold_chosen_by"] in card
    assert result["validation"] == pytest.approx(result["folds"]["1"]["best_validation"])


def test_published_fold_is_chosen_on_validation_when_test_disagrees():
    """Fold 2 has the best test score, fold 3 the best validation score: fold 3 is chosen."""
    from hub_emo.training.results import choose_fold

    per_fold = {"1": {"best_validation": 0.50, "balanced_accuracy": 0.60},
                "2": {"best_validation": 0.40, "balanced_accuracy": 0.95},
                "3": {"best_validation": 0.70, "balanced_accuracy": 0.30}}
    fold, why = choose_fold(per_fold, "balanced_accuracy")
    assert fold == "3" and "validation balanced_accuracy (0.7000)" in why and "test folds unseen" in why
    per_fold["1"]["best_validation"] = None  # a fold without validation: no score chooses
    fold, why = choose_fold(per_fold, "balanced_accuracy")
    assert fold == "1" and "no fold is chosen by a score" in why


def test_two_stage_speech_to_music_with_a_separate_source_and_another_strategy(tmp_path, corpus, backbone):
    from hub_emo.training import train_two_stage

    domain = corpus[1].features["domain"]
    speech = corpus[1].filter(lambda d: d == domain.str2int("speech"), input_columns="domain")
    music = corpus[1].filter(lambda d: d == domain.str2int("music"), input_columns="domain")
    result = train_two_stage(dataset=music, source_dataset=speech, strategy="weighted_sum",
                             source_strategy="baseline", backbone=backbone, folds="1", max_steps=3,
                             output_dir=str(tmp_path / "mer"), **FAST)
    fold = result["folds"]["1"]
    assert fold["stage1"]["strategy"] == "baseline" and fold["strategy"] == "weighted_sum"
    # baseline has no layer weights to hand on; backbone and head (same classes) carry.
    assert fold["transfer"] == {"carried": ["backbone", "head"], "fresh": ["layer_weights"]}
    with pytest.raises(ValueError, match="share domain"):
        train_two_stage(dataset=music, source_dataset=music, backbone=backbone, folds="1",
                        output_dir=str(tmp_path / "same"), **FAST)


def test_stage_1_takes_its_own_label_set_in_every_fold(tmp_path, corpus, backbone):
    from hub_emo.schema import get_label_set
    from hub_emo.training import parse
    from hub_emo.training.planning import plan

    target = list(get_label_set("4class").classes)
    source = target[::-1]  # the same emotions in another order: another head
    args = parse(**dict(FAST, dataset=corpus[0], backbone=backbone, source_domain="music", domain="speech",
                        source_label_set=",".join(source), folds="all", output_dir=str(tmp_path / "plan")))
    folds = plan(args).folds
    assert len(folds) > 1
    assert [[stage.name for stage in stages] for stages in folds] == [["stage1", "stage2"]] * len(folds)
    assert all(stages[0].labels == source and stages[1].labels == target for stages in folds)
    assert all((stages[0].label_set, stages[1].label_set) == (",".join(source), "4class") for stages in folds)


class StopInStage2(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if args.output_dir.endswith("stage2") and state.global_step == 3:
            raise KeyboardInterrupt("killed in stage 2")


def test_two_stage_resume_keeps_stage_1_and_finishes_stage_2(tmp_path, corpus, backbone):
    from hub_emo.training import train

    options = dict(FAST, dataset=corpus[0], backbone=backbone, source_domain="music", domain="speech",
                   folds="2", max_steps=4, eval_steps=2, learning_rate=5e-3, output_dir=str(tmp_path / "r"))
    whole = train(**dict(options, output_dir=str(tmp_path / "whole")))
    with pytest.raises(KeyboardInterrupt):
        train(callbacks=[StopInStage2()], **options)
    stage1 = tmp_path / "r" / "fold-2" / "stage1" / "results.json"
    written = stage1.stat().st_mtime_ns
    resumed = train(resume=True, **options)
    assert stage1.stat().st_mtime_ns == written  # stage 1 was read back, not retrained
    a, b = whole["folds"]["2"], resumed["folds"]["2"]
    assert (a["accuracy"], a["confusion_matrix"]) == (b["accuracy"], b["confusion_matrix"])
    np.testing.assert_allclose(a["layer_weights"], b["layer_weights"], atol=1e-6)
