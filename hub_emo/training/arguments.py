"""`TrainArguments`: every knob of a `hub-emo train` run, hub_emo's own and the Trainer's.

As transformers' ``run_audio_classification.py`` does, `transformers.HfArgumentParser` reads
hub_emo's dataclass plus `transformers.TrainingArguments`, so a YAML/JSON file and
command-line flags configure the same run (flags override the file) and ``--help`` lists
every option. The Trainer's options that hub_emo does not declare itself (``bf16``,
``gradient_checkpointing``, ``optim``, ``lr_scheduler_type``, ``torch_compile``, ...) are
`TrainerOptions` fields; those the user sets land in ``TrainArguments.trainer_options`` and go
to every stage's `TrainingArguments` unchanged. Options left unset take hub_emo's default
for the run (the strategy's learning rate and epochs, evaluation every epoch, ...), never
over a value the user gave. A two-stage cross-domain run is the same dataclass with the
``source_*`` options set: stage 1 trains on the source domain, stage 2 (the target,
described by the plain options) starts from it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

CROPS = ("random", "start", "center")


@dataclass
class TrainArguments:
    # ------------------------------------------------------------------ data
    dataset: str | None = field(
        default=None,
        metadata={"help": "Prepared dataset: a local folder or a Hub repo id (or pass a Dataset in Python)."},
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset config (subset) name."})
    label_set: str = field(default="ravdess6", metadata={"help": "Named label set (hub_emo.schema.LABEL_SETS) or a comma list of emotions."})
    drop_unlisted_labels: bool = field(
        default=False,
        metadata={"help": "Drop rows whose emotion the label set lacks, instead of refusing the data "
                          "(e.g. RAVDESS speech's disgust/surprised under ravdess6)."},
    )
    domain: str | None = field(
        default=None, metadata={"help": "Keep only this domain (speech or music); the target domain of a two-stage run."}
    )
    folds: str = field(
        default="all",
        metadata={"help": "'all' (cross-validation over the dataset's folds), a comma list of test folds, "
                          "or 'none' to use the dataset's train/validation/test splits."},
    )
    validation_fraction: float = field(
        default=0.15,
        metadata={"help": "Share of the training speakers held out (speaker-disjoint) for early stopping and "
                          "best-checkpoint selection; 0 trains on all and keeps the last checkpoint."},
    )
    max_seconds: float = field(default=6.0, metadata={"help": "Training clips are cropped to this length."})
    eval_max_seconds: float | None = field(
        default=None, metadata={"help": "Evaluation clips are center-cropped to this length (default: max_seconds)."}
    )
    crop: str = field(default="random", metadata={"help": f"Training crop: one of {CROPS}."})
    cache_features: bool | None = field(
        default=None,
        metadata={"help": "Run a frozen backbone once per clip and train the head on cached per-layer means "
                          "(strategies baseline/weighted_sum with mean pooling). Default: on where possible. "
                          "The random training crop becomes a fixed centre crop of max_seconds."},
    )
    # ------------------------------------------------------------------ model
    backbone: str | None = field(default=None, metadata={"help": "SSL backbone: a local folder or a Hub id."})
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow a remote-code backbone (MERT needs none: it loads natively)."})
    strategy: str = field(
        default="weighted_sum", metadata={"help": "baseline | weighted_sum | lora | bottleneck | full."}
    )
    pooling: str | None = field(default=None, metadata={"help": "mean | attentive_stats (default mean)."})
    head_hidden_sizes: list[int] | None = field(default=None, metadata={"help": "MLP head sizes (default 128 16)."})
    head_dropout: float | None = field(default=None, metadata={"help": "Head dropout (default 0.1)."})
    lora_rank: int | None = field(default=None, metadata={"help": "LoRA rank (default 16)."})
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha (default 32)."})
    lora_target_modules: list[str] | None = field(default=None, metadata={"help": "LoRA targets (default q_proj v_proj)."})
    bottleneck_reduction: int | None = field(default=None, metadata={"help": "Bottleneck width = hidden // this (16)."})
    class_weighted_loss: bool = field(
        default=False, metadata={"help": "Weight the cross-entropy by inverse class frequency of the training split."}
    )
    # ------------------------------------------------------------------ stage 1 (two-stage transfer)
    source_domain: str | None = field(
        default=None, metadata={"help": "Stage-1 domain (e.g. music for SER); setting it makes the run two-stage."}
    )
    source_dataset: str | None = field(default=None, metadata={"help": "Stage-1 dataset (default: dataset)."})
    source_dataset_config: str | None = field(default=None, metadata={"help": "Stage-1 dataset config."})
    source_label_set: str | None = field(default=None, metadata={"help": "Stage-1 label set (default: label_set)."})
    source_strategy: str | None = field(default=None, metadata={"help": "Stage-1 strategy (default: strategy)."})
    source_learning_rate: float | None = field(default=None, metadata={"help": "Stage-1 learning rate (default: learning_rate with the same strategy, else the source strategy's)."})
    source_epochs: float | None = field(default=None, metadata={"help": "Stage-1 epochs (default: num_train_epochs, else the strategy's)."})
    cross_domain: bool = field(
        default=True,
        metadata={"help": "Refuse a two-stage run whose stage-1 and stage-2 data share a domain."},
    )
    # ------------------------------------------------------------------ optimisation
    output_dir: str = field(default="hub_emo_runs/train", metadata={"help": "Where checkpoints and results go."})
    learning_rate: float | None = field(default=None, metadata={"help": "Default: the strategy's."})
    num_train_epochs: float | None = field(default=None, metadata={"help": "Default: the strategy's (30)."})
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many steps per stage (overrides epochs)."})
    per_device_train_batch_size: int = 8
    per_device_eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    warmup_ratio: float | None = field(
        default=None,
        metadata={"help": "Linear warm-up as a share of the steps, in [0, 1) (default 0.1 unless warmup_steps "
                          "is given; a number of steps is warmup_steps)."},
    )
    weight_decay: float = 0.0
    early_stopping_patience: int = field(
        default=5, metadata={"help": "Evaluations without improvement before stopping; 0 disables."}
    )
    metric_for_best_model: str = field(
        default="balanced_accuracy", metadata={"help": "accuracy | balanced_accuracy | macro_f1."}
    )
    eval_steps: int | None = field(
        default=None, metadata={"help": "Evaluate and checkpoint every N steps (default: every epoch)."}
    )
    seed: int = 42
    logging_steps: int = 10
    save_total_limit: int = 2
    dataloader_num_workers: int | None = field(
        default=None,
        metadata={"help": "Data loading processes per device (default: 0 on CPU, where they would take the "
                          "compute's cores; on an accelerator min(4, usable cores / local devices))."},
    )
    report_to: str = field(default="tensorboard", metadata={"help": "tensorboard | trackio | none."})
    use_cpu: bool = False
    ddp_timeout: int = field(
        default=1800,
        metadata={"help": "Seconds a rank waits at a barrier under torchrun (rank 0 alone prepares the data "
                          "and the backbone, and extraction shares can differ)."},
    )
    resume: bool = field(default=False, metadata={"help": "Continue an interrupted run in output_dir."})
    push_to_hub: str | None = field(
        default=None,
        metadata={"help": "Repo id `hub-emo train` pushes the best model to once training ends (in Python: "
                          "hub_emo.hub.publish.push_training_run(results, repo_id))."},
    )
    hub_private: bool = False
    #: The `TrainerOptions` the user set (name -> value); filled by `parse` / `from_namespace`.
    trainer_options: dict[str, Any] = field(default_factory=dict, init=False)

    def __post_init__(self):
        from .strategies import get_strategy

        get_strategy(self.strategy)
        if self.source_strategy is not None:
            get_strategy(self.source_strategy)
        if self.cache_features:
            strategy = get_strategy(self.strategy)
            if not strategy.frozen_backbone or self.pooling not in (None, "mean"):
                raise ValueError(
                    f"cache_features needs a frozen-backbone strategy (baseline, weighted_sum) with mean pooling, "
                    f"got strategy {self.strategy!r}, pooling {self.pooling or 'mean'!r}"
                )
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {self.crop!r}")
        for name in ("max_seconds", "eval_max_seconds"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if self.metric_for_best_model not in ("accuracy", "balanced_accuracy", "macro_f1"):
            raise ValueError(f"metric_for_best_model {self.metric_for_best_model!r} is not a metric this trainer logs")
        if self.warmup_ratio is not None and not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio is a share of the steps in [0, 1), got {self.warmup_ratio}; "
                             "for a number of steps use warmup_steps")

    @property
    def two_stage(self) -> bool:
        return self.source_domain is not None or self.source_dataset is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: Trainer options hub_emo sets itself: a user value that differs is refused, with the reason.
FIXED_TRAINER_OPTIONS = {
    "remove_unused_columns": (False, "the collators need every column"),
    "label_names": (["labels"], "the model's labels argument is 'labels'"),
}
#: Trainer options with a hub_emo equivalent, which the user should give instead.
REPLACED_TRAINER_OPTIONS = {
    "resume_from_checkpoint": "resume (every stage resumes from its own last checkpoint)",
    "hub_model_id": "push_to_hub REPO (hub-emo pushes the model chosen on validation once training ends)",
    "hub_private_repo": "hub_private",
    "hub_strategy": "push_to_hub REPO (the Trainer itself never pushes checkpoints)",
    "hub_always_push": "push_to_hub REPO (the Trainer itself never pushes checkpoints)",
    "hub_revision": "push_to_hub REPO",
    "hub_token": "HF_TOKEN or a saved login (hub-emo never takes a token on its command line)",
}

_TRAINER_OPTIONS = None


def trainer_options_class():
    """`TrainerOptions`: every `TrainingArguments` field that `TrainArguments` does not declare,
    with the Trainer's type and help, defaulting to None (unset: transformers' default)."""
    global _TRAINER_OPTIONS
    if _TRAINER_OPTIONS is None:
        import typing

        from transformers import TrainingArguments

        own = {f.name for f in dataclasses.fields(TrainArguments)}
        hints = typing.get_type_hints(TrainingArguments)
        specs = []
        for f in dataclasses.fields(TrainingArguments):
            if not f.init or f.name in own:
                continue
            metadata = dict(f.metadata)
            metadata["help"] = f"{str(metadata.get('help', '')).strip()} (TrainingArguments; unset: transformers' default)"
            if hints[f.name] in (bool, bool | None):  # `--bf16` alone means true, as in the Trainer's own parser
                metadata.update(nargs="?", const=True)
            specs.append((f.name, hints[f.name], field(default=None, metadata=metadata)))
        _TRAINER_OPTIONS = dataclasses.make_dataclass("TrainerOptions", specs)
        _TRAINER_OPTIONS.__doc__ = "The `transformers.TrainingArguments` options hub_emo passes on as given."
    return _TRAINER_OPTIONS


def trainer_option_names() -> set[str]:
    return {f.name for f in dataclasses.fields(trainer_options_class())}


def check_trainer_options(options: dict[str, Any]) -> dict[str, Any]:
    """The user's Trainer options, or a ValueError naming one hub_emo cannot honour and why."""
    for name, value in options.items():
        if name in REPLACED_TRAINER_OPTIONS:
            raise ValueError(f"{name}: use {REPLACED_TRAINER_OPTIONS[name]}")
        if name in FIXED_TRAINER_OPTIONS and value != FIXED_TRAINER_OPTIONS[name][0]:
            fixed, why = FIXED_TRAINER_OPTIONS[name]
            raise ValueError(f"{name} must be {fixed!r} in hub-emo train ({why}), got {value!r}")
    return dict(options)


def with_options(args: TrainArguments, **options) -> TrainArguments:
    """``args`` with ``options`` (hub_emo's fields or Trainer options) set; the rest kept."""
    own = {f.name for f in dataclasses.fields(TrainArguments) if f.init}
    unknown = sorted(set(options) - own - trainer_option_names())
    if unknown:
        raise ValueError(f"unknown options {unknown}")
    updated = dataclasses.replace(args, **{k: v for k, v in options.items() if k in own})
    trainer = {k: v for k, v in options.items() if k not in own}
    updated.trainer_options = check_trainer_options({**args.trainer_options, **trainer})
    return updated


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML or JSON mapping of `TrainArguments` and `TrainingArguments` options, with a clear
    error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such config file")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            values = json.loads(text)
        else:
            import yaml

            values = yaml.safe_load(text)
    except Exception as error:  # noqa: BLE001 - name the file
        raise ValueError(f"{path}: cannot parse config ({error})") from error
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config must be a mapping of option: value")
    known = {f.name for f in dataclasses.fields(TrainArguments) if f.init} | trainer_option_names()
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{path}: unknown options {unknown}")
    return values


def parser(**kwargs):
    """The `HfArgumentParser` of `TrainArguments` plus `TrainerOptions`: every field is one
    ``--flag`` (also spelt with dashes)."""
    from transformers import HfArgumentParser

    return HfArgumentParser((TrainArguments, trainer_options_class()), **kwargs)


def from_namespace(namespace, **overrides) -> TrainArguments:
    """`TrainArguments` from parsed flags (other attributes, such as a CONFIG path, are ignored);
    a Trainer option is the user's when it is not None."""
    own = {f.name for f in dataclasses.fields(TrainArguments) if f.init}
    trainer = trainer_option_names()
    unknown = sorted(set(overrides) - own - trainer)
    if unknown:
        raise ValueError(f"unknown options {unknown}")
    values = {k: v for k, v in vars(namespace).items() if k in own or (k in trainer and v is not None)}
    values.update(overrides)
    args = TrainArguments(**{k: v for k, v in values.items() if k in own})
    args.trainer_options = check_trainer_options({k: v for k, v in values.items() if k in trainer})
    return args


def parse(config_file: str | Path | None = None, argv: Sequence[str] | None = None, **overrides) -> TrainArguments:
    """`TrainArguments` from a config file, then flags (``argv``), then keyword overrides."""
    import argparse

    p = parser(exit_on_error=False)
    if config_file:
        p.set_defaults(**read_config_file(config_file))
    try:
        namespace, rest = p.parse_known_args(list(argv or []))
    except argparse.ArgumentError as error:
        raise ValueError(str(error)) from None
    if rest:
        raise ValueError(f"unknown options: {' '.join(rest)}")
    return from_namespace(namespace, **overrides)
