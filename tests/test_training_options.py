"""`hub-emo train` takes every `TrainingArguments` option: parsed with hub_emo's own, from a YAML file
or flags, passed to every stage's Trainer, with hub_emo's defaults only where the user left one unset.

bf16 (CPU autocast) and gradient checkpointing are exercised through `train()` itself.
"""

from __future__ import annotations

import math

import pytest
import torch
from transformers import TrainerCallback

from training_setup import prepared_ravdess, tiny_backbone_folder

torch.set_num_threads(1)

FAST = dict(report_to="none", per_device_train_batch_size=4, per_device_eval_batch_size=8, label_set="4class",
            logging_steps=1, head_dropout=0.0, domain="speech", folds="1", validation_fraction=0.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return prepared_ravdess(tmp_path_factory.mktemp("ravdess"))


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    return tiny_backbone_folder(tmp_path_factory.mktemp("backbone"), seed=0)


def _stage_arguments(args, has_validation=True):
    from pathlib import Path

    from hub_emo.training.planning import StagePlan
    from hub_emo.training.stage import training_arguments
    from hub_emo.training.strategies import get_strategy

    strategy = get_strategy(args.strategy)
    stage = StagePlan("train", strategy.name, ["a", "b"], "custom", None,
                      args.learning_rate or strategy.learning_rate,
                      args.num_train_epochs or strategy.num_train_epochs, Path("unused"))
    return training_arguments(args, stage, has_validation)


def test_a_yaml_file_with_trainer_options_and_flags_configure_the_trainer(tmp_path):
    from hub_emo.training.arguments import parse

    config = tmp_path / "run.yaml"
    config.write_text("strategy: full\nbf16: true\nlr_scheduler_type: cosine\noptim: adamw_torch\n"
                      "gradient_checkpointing: true\nadam_beta2: 0.98\nmax_grad_norm: 0.5\n")
    args = parse(config, ["--label_smoothing_factor", "0.1", "--save_strategy", "steps", "--eval_steps", "5"])
    assert args.trainer_options == {"bf16": True, "lr_scheduler_type": "cosine", "optim": "adamw_torch",
                                    "gradient_checkpointing": True, "adam_beta2": 0.98, "max_grad_norm": 0.5,
                                    "label_smoothing_factor": 0.1, "save_strategy": "steps"}
    trainer_args = _stage_arguments(args)
    assert trainer_args.bf16 and trainer_args.activation_checkpointing
    assert (trainer_args.lr_scheduler_type.value, trainer_args.optim.value) == ("cosine", "adamw_torch")
    assert (trainer_args.adam_beta2, trainer_args.max_grad_norm, trainer_args.label_smoothing_factor) == (0.98, 0.5, 0.1)
    assert trainer_args.learning_rate == 3e-5  # unset: the strategy's
    assert parse(config, ["--learning_rate", "1e-4"]).learning_rate == 1e-4  # set: the user's


def test_hub_emos_defaults_fill_only_what_the_user_left_unset():
    from hub_emo.training.arguments import parse

    default = _stage_arguments(parse())
    assert (default.eval_strategy.value, default.save_strategy.value, default.load_best_model_at_end) == (
        "epoch", "epoch", True)
    assert (default.dataloader_num_workers, default.warmup_steps, default.disable_tqdm) == (0, 0.1, True)
    mine = _stage_arguments(parse(argv=["--disable_tqdm", "false", "--ddp_find_unused_parameters", "true",
                                        "--warmup_steps", "7", "--dataloader_num_workers", "1"]))
    assert (mine.disable_tqdm, mine.ddp_find_unused_parameters, mine.warmup_steps, mine.dataloader_num_workers) == (
        False, True, 7, 1)


def test_warmup_ratio_is_a_share_of_the_steps():
    from hub_emo.training.arguments import parse

    arguments = _stage_arguments(parse(warmup_ratio=0.25))
    assert arguments.get_warmup_steps(200) == 50
    with pytest.raises(ValueError, match=r"warmup_ratio is a share of the steps in \[0, 1\), got 5"):
        parse(warmup_ratio=5)
    with pytest.raises(ValueError, match="not both"):
        _stage_arguments(parse(warmup_ratio=0.2, warmup_steps=10))


@pytest.mark.parametrize("option,value,message", [
    ("resume_from_checkpoint", "x", "resume_from_checkpoint: use resume"),
    ("hub_model_id", "me/x", "hub_model_id: use push_to_hub REPO"),
    ("remove_unused_columns", True, "remove_unused_columns must be False"),
])
def test_trainer_options_hub_emo_owns_are_refused_with_the_reason(option, value, message):
    from hub_emo.training.arguments import parse

    with pytest.raises(ValueError, match=message):
        parse(**{option: value})


def test_data_loading_workers_default_above_zero_only_on_an_accelerator():
    from hub_emo.threads import usable_cores
    from hub_emo.training.arguments import parse
    from hub_emo.training.stage import dataloader_workers

    args = parse()
    assert dataloader_workers(args, cpu=True) == 0
    if usable_cores() >= 2 and not torch.cuda.is_available():
        assert dataloader_workers(args, cpu=False) == min(4, usable_cores() - 1) > 0
    assert dataloader_workers(parse(dataloader_num_workers=3), cpu=False) == 3


class _LinearDtypes:
    """Output dtypes of every nn.Linear call while open (autocast shows as bfloat16)."""

    def __enter__(self):
        self.seen = set()
        self.handle = torch.nn.modules.module.register_module_forward_hook(self._hook)
        return self

    def _hook(self, module, args, output):
        if isinstance(module, torch.nn.Linear) and torch.is_tensor(output):
            self.seen.add(output.dtype)

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.mark.parametrize("strategy", ["lora", "full"])
def test_bf16_on_cpu_trains_lora_and_full_fine_tuning(strategy, tmp_path, corpus, backbone):
    from hub_emo.training import train

    with _LinearDtypes() as dtypes:
        results = train(dataset=corpus[1], backbone=backbone, strategy=strategy, max_steps=2, bf16=True,
                        output_dir=str(tmp_path / strategy), **FAST)
    fold = results["folds"]["1"]
    assert torch.bfloat16 in dtypes.seen
    assert fold["steps"] == 2 and math.isfinite(fold["train_loss"])
    assert results["arguments"]["trainer_options"] == {"bf16": True}


class _FirstGradients(TrainerCallback):
    """The gradients of the first optimizer step, by parameter name."""

    def __init__(self):
        self.gradients = None

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if self.gradients is None:
            self.checkpointing = model.is_activation_checkpointing
            self.gradients = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("strategy,kwargs", [
    ("full", {"use_reentrant": False}), ("full", {"use_reentrant": True}), ("lora", {"use_reentrant": False}),
])
def test_gradient_checkpointing_gives_the_same_gradients(strategy, kwargs, tmp_path, corpus, backbone):
    from hub_emo.training import train

    runs = {}
    for checkpointing in (False, True):
        capture = _FirstGradients()
        options = dict(gradient_checkpointing=True, gradient_checkpointing_kwargs=kwargs) if checkpointing else {}
        train(dataset=corpus[1], backbone=backbone, strategy=strategy, max_steps=1, callbacks=[capture],
              output_dir=str(tmp_path / f"gc-{checkpointing}"), cache_features=False, **FAST, **options)
        assert capture.checkpointing == checkpointing
        runs[checkpointing] = capture.gradients
    assert runs[True].keys() == runs[False].keys()
    assert any("lora_" in n for n in runs[True]) == (strategy == "lora")
    assert any(".encoder.layers." in n for n in runs[True])  # gradients reach the checkpointed layers
    for name, gradient in runs[False].items():
        torch.testing.assert_close(runs[True][name], gradient, rtol=1e-4, atol=1e-6, msg=name)
