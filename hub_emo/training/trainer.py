"""Fine-tune an `EmoForAudioClassification` with `transformers.Trainer`: one or two stages, per fold.

Entry points::

    train(args: TrainArguments | None = None, dataset=None, *, source_dataset=None,
          callbacks=None, **options) -> dict
    train_two_stage(args=None, dataset=None, *, source_domain=None, source_dataset=None,
                    **options) -> dict

``options`` are `TrainArguments` fields (they override ``args``). ``dataset`` /
``source_dataset`` may be `datasets.Dataset`/`DatasetDict` objects instead of the paths in
the arguments. Everything that can be checked (backbone, data, labels, folds, domains,
output folder) is checked before the first step.

Layout of ``output_dir``::

    results.json                  summary: per-fold metrics, mean and std, run settings
    fold-<f>/[stage1|stage2|train]/  Trainer checkpoints, runs/ (TensorBoard), best/ (model)
    fold-<f>/[stage2|train]/results.json, confusion_matrix.png, layer_weights.png

A run interrupted anywhere continues with ``resume=True``: finished stages are read
back, an unfinished one resumes from its last Trainer checkpoint (optimizer, scheduler,
RNG and early-stopping state), and the result equals an uninterrupted run's. Under
``torchrun`` / ``accelerate launch`` the Trainer runs DDP (gloo on CPU, NCCL on GPUs);
only the main process writes files.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hub_emo import features, progress
from hub_emo.distributed import host, ranks
from hub_emo.data import load_prepared
from hub_emo.metric import SUMMARY_METRICS, load_metric

from . import data as train_data
from . import feature_cache
from .arguments import TrainArguments, parse, with_options
from .strategies import get_strategy, strategy_config, trainable_share

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------- planning (pre-flight)
@dataclass
class StagePlan:
    name: str  # "train", or "stage1" / "stage2"
    strategy: str
    labels: list[str]
    split: train_data.Split
    learning_rate: float
    num_train_epochs: float
    output_dir: Path


@dataclass
class Plan:
    args: TrainArguments
    backbone: Any
    feature_extractor: Any
    folds: list[list[StagePlan]]
    dataset_name: str


def _resolve(args: TrainArguments | None, options: dict) -> TrainArguments:
    """``args`` (or the defaults) with ``options``: hub_emo's fields or any `TrainingArguments` option."""
    if args is None:
        return parse(**options)
    if options:
        return with_options(args, **options)
    return args


def _load_backbone(args: TrainArguments):
    """The backbone through `hub_emo.modeling.backbones.load_model` (the one loader), and its preprocessor."""
    from hub_emo.inference import feature_extractor_for
    from hub_emo.modeling.backbones import load_model

    if not args.backbone:
        raise ValueError("no backbone given: set backbone to a local folder or a Hub id")
    model = load_model(args.backbone, trust_remote_code=args.trust_remote_code)
    return model, feature_extractor_for(model.config, args.backbone, args.trust_remote_code)


def _source_split(source, target: train_data.Split, args: TrainArguments, name: str) -> train_data.Split:
    """Stage-1 data for one target fold: the source rows outside the target's test fold (no test speaker)."""
    import datasets

    if isinstance(source, datasets.DatasetDict) and "train" in source and target.name == "none":
        train = source["train"]
    else:
        flat = train_data.flatten(source)
        folds = [str(f) for f in flat["fold"]]
        train = flat.select([i for i, f in enumerate(folds) if f != target.name]) if target.name in folds else flat
    train, validation = train_data.holdout_speakers(train, args.validation_fraction, args.seed, name)
    if len(train) == 0:
        raise ValueError(f"{name}: no stage-1 training rows for fold {target.name!r}")
    return train_data.Split(target.name, train, validation, None)


def plan(args: TrainArguments, dataset=None, source_dataset=None) -> Plan:
    """Load and check everything a run needs; raises ValueError before any training."""
    source_name = dataset if dataset is not None else args.dataset
    if source_name is None:
        raise ValueError("no dataset given: set dataset to a prepared folder or Hub repo (or pass a Dataset)")
    name = args.dataset or "<dataset>"
    ls = train_data.label_set_of(args.label_set)
    loaded = load_prepared(source_name, args.dataset_config)
    target = train_data.select(loaded, ls, domain=args.domain, drop_unlisted=args.drop_unlisted_labels, name=name)
    target_splits = train_data.splits(target, args.folds, args.validation_fraction, args.seed, name)
    out = Path(args.output_dir)

    source = None
    if args.two_stage or source_dataset is not None:
        src_name = args.source_dataset or args.dataset or "<dataset>"
        if source_dataset is not None:
            src_loaded = load_prepared(source_dataset)
        elif args.source_dataset:
            src_loaded = load_prepared(args.source_dataset, args.source_dataset_config)
        else:
            src_loaded = loaded
        source = train_data.select(
            src_loaded, args.source_label_set or ls, domain=args.source_domain,
            drop_unlisted=args.drop_unlisted_labels, name=f"{src_name} (stage 1)",
        )
        if args.cross_domain:
            shared = train_data.domains_of(source) & train_data.domains_of(target)
            if shared:
                raise ValueError(
                    f"cross-domain transfer asked, but stage 1 ({src_name}, domain {args.source_domain}) and "
                    f"stage 2 ({name}, domain {args.domain}) share domain(s) {sorted(shared)}; set domain and "
                    "source_domain to different domains (or cross_domain false)"
                )
    backbone, feature_extractor = _load_backbone(args)

    folds = []
    strategy = get_strategy(args.strategy)
    for split in target_splits:
        base = out / f"fold-{split.name}"
        stages = []
        if source is not None:
            src_strategy = get_strategy(args.source_strategy or args.strategy)
            src_ls = train_data.label_set_of(args.source_label_set or ls)
            stages.append(StagePlan(
                "stage1", src_strategy.name, list(src_ls.classes),
                _source_split(source, split, args, f"{src_name} (stage 1) fold {split.name}"),
                args.source_learning_rate
                or (args.learning_rate if src_strategy.name == strategy.name else None)
                or src_strategy.learning_rate,
                args.source_epochs or args.num_train_epochs or src_strategy.num_train_epochs,
                base / "stage1",
            ))
        stages.append(StagePlan(
            "stage2" if source is not None else "train", strategy.name, list(ls.classes), split,
            args.learning_rate or strategy.learning_rate,
            args.num_train_epochs or strategy.num_train_epochs,
            base / ("stage2" if source is not None else "train"),
        ))
        folds.append(stages)
    from hub_emo.modeling.backbones import public_source

    return Plan(args, backbone, feature_extractor, folds, public_source(name))  # a local folder: its name


def _check_output_dir(out: Path, resume: bool) -> None:
    if resume or not out.exists():
        return
    used = [p for p in out.glob("fold-*/*") if p.is_dir()] + list(out.glob("results.json"))
    if used:
        raise ValueError(f"{out}: holds an earlier run; pass resume to continue it, or choose another output_dir")


# ---------------------------------------------------------------------- model
def build_model(backbone, labels: Sequence[str], strategy: str, args: TrainArguments, feature_extractor=None):
    """A fresh classifier for one stage: the strategy's `EmoConfig` on the loaded backbone (and
    its preprocessor, which the model saves beside itself)."""
    from hub_emo.modeling import EmoForAudioClassification

    options = strategy_config(
        strategy,
        pooling=args.pooling,
        head_hidden_sizes=args.head_hidden_sizes,
        head_dropout=args.head_dropout,
        lora_rank=args.lora_rank,
        lora_alpha=args.lora_alpha,
        lora_target_modules=args.lora_target_modules,
        bottleneck_reduction=args.bottleneck_reduction,
    )
    return EmoForAudioClassification.from_backbone(
        backbone, list(labels), trust_remote_code=args.trust_remote_code, feature_extractor=feature_extractor,
        **options
    )


def transfer_weights(source, target) -> dict[str, list[str]]:
    """Start a stage-2 model from a trained stage-1 model; returns what was carried and what was not.

    * Backbone: always carried (so a fully fine-tuned stage 1 hands on its encoder). LoRA
      carries as LoRA when both stages use the same rank and targets; otherwise it is
      merged into the backbone weights first and stage 2's own adapters start fresh.
    * Layer weights, attentive pooling and bottleneck adapters: carried when stage 2 has them.
    * Head: carried only when both stages have the same classes in the same order;
      otherwise stage 2 starts a fresh head (its output layer could not mean the same).
    """
    carried, fresh = [], []
    src_cfg, dst_cfg = source.config, target.config
    same_lora = (
        src_cfg.adapter == dst_cfg.adapter == "lora"
        and src_cfg.lora_rank == dst_cfg.lora_rank
        and sorted(src_cfg.lora_targets) == sorted(dst_cfg.lora_targets)
    )
    if same_lora:
        target.backbone.load_state_dict(source.backbone.state_dict())
        carried.append("backbone+lora")
    else:
        if src_cfg.adapter == "lora":
            source.merge_and_unload()
        target.load_backbone_weights(source.backbone.state_dict())
        carried.append("backbone")
        if dst_cfg.adapter == "lora":
            fresh.append("lora")
    same_labels = src_cfg.id2label == dst_cfg.id2label
    for module in ("layer_weights", "pooling", "bottleneck", "head"):
        src, dst = getattr(source, module, None), getattr(target, module, None)
        if dst is None or not list(dst.parameters()):
            continue
        src_state = None if src is None else src.state_dict()
        dst_state = dst.state_dict()
        compatible = src_state is not None and src_state.keys() == dst_state.keys() and all(
            src_state[k].shape == dst_state[k].shape for k in dst_state
        )
        if compatible and (module != "head" or same_labels):
            dst.load_state_dict(src_state)
            carried.append(module)
        else:
            fresh.append(module)
    target.apply_freezing()
    return {"carried": carried, "fresh": fresh}


# ---------------------------------------------------------------------- one stage
def _trainer_classes():
    from transformers import Trainer, TrainerCallback

    class EmoTrainer(Trainer):
        """Trainer whose evaluation batches use their own (centre-cropping) collator."""

        def __init__(self, *a, eval_collator=None, **kw):
            super().__init__(*a, **kw)
            self.eval_collator = eval_collator

        @contextlib.contextmanager
        def _eval_collation(self):
            train_collator, self.data_collator = self.data_collator, self.eval_collator or self.data_collator
            try:
                yield
            finally:
                self.data_collator = train_collator

        def get_eval_dataloader(self, eval_dataset=None):
            with self._eval_collation():
                return super().get_eval_dataloader(eval_dataset)

        def get_test_dataloader(self, test_dataset):
            with self._eval_collation():
                return super().get_test_dataloader(test_dataset)

    class CropEpoch(TrainerCallback):
        """Tell the training collator the epoch, so random crops change per epoch yet survive resume."""

        def __init__(self, collator):
            self.collator = collator

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.collator.epoch = int(math.floor((state.epoch or 0.0) + 1e-6))

    return EmoTrainer, CropEpoch


def _training_arguments(args: TrainArguments, stage: StagePlan, has_validation: bool):
    """The stage's `TrainingArguments`: hub_emo's defaults, under the user's Trainer options, under
    what hub_emo fixes (the stage's folder, learning rate and epochs, hub_emo's own fields)."""
    from transformers import TrainingArguments

    if "warmup_steps" in args.trainer_options and args.warmup_ratio is not None:
        raise ValueError("give warmup_ratio (a share of the steps) or warmup_steps, not both")
    every = "steps" if args.eval_steps else "epoch"
    cpu = _use_cpu(args)
    defaults = dict(
        eval_strategy=every if has_validation else "no",
        save_strategy=every,
        save_steps=args.eval_steps,
        load_best_model_at_end=has_validation,
        greater_is_better=True,
        ddp_find_unused_parameters=False,
        restore_callback_states_from_checkpoint=True,
        disable_tqdm=True,
        dataloader_pin_memory=not cpu,
    )
    if "warmup_steps" not in args.trainer_options or args.warmup_ratio is not None:
        defaults["warmup_steps"] = 0.1 if args.warmup_ratio is None else args.warmup_ratio  # < 1: a share
    fixed = dict(
        output_dir=str(stage.output_dir),
        learning_rate=stage.learning_rate,
        num_train_epochs=stage.num_train_epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.per_device_train_batch_size,
        per_device_eval_batch_size=args.per_device_eval_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        weight_decay=args.weight_decay,
        eval_steps=args.eval_steps,
        save_total_limit=args.save_total_limit,
        metric_for_best_model=args.metric_for_best_model if has_validation else None,
        logging_steps=args.logging_steps,
        seed=args.seed,
        report_to=[] if args.report_to in ("none", "") else [args.report_to],
        use_cpu=cpu,
        dataloader_num_workers=_dataloader_workers(args, cpu),
        remove_unused_columns=False,
        label_names=["labels"],
        push_to_hub=False,  # hub-emo pushes the model chosen on validation, after every fold
        ddp_timeout=args.ddp_timeout,  # the process group made before these arguments waits as long
    )
    return TrainingArguments(**{**defaults, **args.trainer_options, **fixed})


def _dataloader_workers(args: TrainArguments, cpu: bool) -> int:
    """The user's count; else 0 on CPU (workers would take the compute's cores) and, on an
    accelerator, up to 4 per local device from the usable cores."""
    if args.dataloader_num_workers is not None:
        return args.dataloader_num_workers
    if cpu:
        return 0
    import torch

    from hub_emo.threads import usable_cores

    devices = max(1, torch.cuda.device_count()) if torch.cuda.is_available() else 1
    return max(0, min(4, usable_cores() // devices - 1))


def _compute_metrics(num_labels: int):
    metric = load_metric()

    def compute(prediction):
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        result = metric.compute(
            predictions=np.argmax(logits, axis=-1), references=prediction.label_ids, labels=list(range(num_labels))
        )
        return {k: result[k] for k in SUMMARY_METRICS}

    return compute


def _last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _finished_stage(stage: StagePlan) -> dict | None:
    """The results of a stage a resumed run finished before, or None."""
    done = stage.output_dir / "results.json"
    if done.is_file() and (stage.output_dir / "best").is_dir():
        return json.loads(done.read_text())
    return None


def _on_rank_zero(decision, what: str):
    """``decision()`` read on rank 0 alone and broadcast: every rank acts on one view of
    ``output_dir``, however another host's file-system cache lags."""
    with ranks() as group:
        return group.decide(decision, what)


def run_stage(plan_: Plan, stage: StagePlan, init_from: Path | None = None, callbacks=None) -> dict:
    """Train one stage, keep its best model in ``<stage>/best`` and evaluate it; returns its results."""
    from transformers import EarlyStoppingCallback

    args = plan_.args
    if args.resume:
        finished = _on_rank_zero(lambda: _finished_stage(stage), f"{stage.output_dir}: reading a finished stage")
        if finished is not None:
            return finished

    model, transfer = _stage_model(plan_, stage, init_from)
    EmoTrainer, CropEpoch = _trainer_classes()
    inputs = _stage_inputs(plan_, stage, model, CropEpoch)
    extra = list(inputs.callbacks)
    if inputs.validation is not None and args.early_stopping_patience > 0:
        extra.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    trainer = EmoTrainer(
        model=model,
        args=_training_arguments(args, stage, inputs.validation is not None),
        train_dataset=inputs.train,
        eval_dataset=inputs.validation,
        data_collator=inputs.collator,
        eval_collator=inputs.eval_collator,
        compute_metrics=_compute_metrics(len(stage.labels)),
        callbacks=extra + [progress.trainer_callback(f"{stage.name} ({stage.strategy})")] + list(callbacks or []),
    )
    checkpoint = (_on_rank_zero(lambda: _last_checkpoint(stage.output_dir), f"{stage.output_dir}: finding the "
                                "last checkpoint") if args.resume else None)
    train_output = trainer.train(resume_from_checkpoint=checkpoint)

    best = stage.output_dir / "best"
    trainer.save_model(str(best))
    result = _stage_result(trainer, train_output, stage, best, transfer)
    if stage.split.test is not None:
        result.update(evaluate_model(trainer, inputs.evaluation(stage.split.test), len(stage.labels)))
    if inputs.caches is not None:
        result["feature_cache"] = _cache_report(inputs.caches, args)
    if trainer.is_world_process_zero():
        _write_stage(plan_, stage, result, best)
    trainer.accelerator.wait_for_everyone()
    return result


def _stage_model(plan_: Plan, stage: StagePlan, init_from: Path | None):
    """(the stage's fresh model, seeded; what it carried over from ``init_from``, or None)."""
    from transformers import set_seed

    args = plan_.args
    set_seed(args.seed)
    model = build_model(plan_.backbone, stage.labels, stage.strategy, args, plan_.feature_extractor)
    transfer = None
    if init_from is not None:
        from hub_emo.modeling import EmoForAudioClassification

        transfer = transfer_weights(EmoForAudioClassification.from_pretrained(str(init_from)), model)
    if args.class_weighted_loss:
        model.config.class_weights = train_data.class_weights(stage.split.train, len(stage.labels))
    return model, transfer


@dataclass
class _StageInputs:
    """What a stage's Trainer reads: cached layer features, or decoded audio with its collators."""

    train: Any
    validation: Any
    evaluation: Any  # rows of a split -> what the evaluation collator takes (the test split, after training)
    collator: Any
    eval_collator: Any
    callbacks: list
    caches: tuple | None


def _stage_inputs(plan_: Plan, stage: StagePlan, model, CropEpoch) -> _StageInputs:
    """Features from the cache where the stage's model allows it, else audio cropped per epoch."""
    args, split = plan_.args, stage.split
    caches = _feature_caches(plan_, model) if _caches_features(args, model) else None
    if caches is not None:
        train_caches, eval_cache = caches
        train = train_caches.dataset(split.train)
        validation = None if split.validation is None else eval_cache.dataset(split.validation)
        return _StageInputs(train, validation, eval_cache.dataset, feature_cache.collate_features, None, [], caches)
    decoded = train_data.rows_for_training
    train = decoded(split.train)
    validation = None if split.validation is None else decoded(split.validation)
    collator = train_data.AudioCollator(plan_.feature_extractor, args.max_seconds, args.crop, args.seed)
    eval_collator = train_data.AudioCollator(
        plan_.feature_extractor, args.eval_max_seconds or args.max_seconds, "center", args.seed
    )
    return _StageInputs(train, validation, decoded, collator, eval_collator, [CropEpoch(collator)], None)


def _stage_result(trainer, train_output, stage: StagePlan, best: Path, transfer: dict | None) -> dict:
    """What the stage's training did (its test metrics are added by the caller)."""
    result: dict[str, Any] = {
        "stage": stage.name,
        "strategy": stage.strategy,
        "labels": stage.labels,
        "learning_rate": stage.learning_rate,
        "train_rows": len(stage.split.train),
        "validation_rows": 0 if stage.split.validation is None else len(stage.split.validation),
        "trainable_share": trainable_share(trainer.model),
        "train_loss": float(train_output.training_loss),
        "steps": int(trainer.state.global_step),
        "world_size": int(trainer.args.world_size),
        "best_checkpoint": trainer.state.best_model_checkpoint,
        "best_validation": trainer.state.best_metric,
        "loss_history": [h["loss"] for h in trainer.state.log_history if "loss" in h],
        "model": str(best),
    }
    if transfer is not None:
        result["transfer"] = transfer
    weights = trainer.model.layer_weight_shares()
    if weights is not None:
        result["layer_weights"] = weights
    return result


def _write_stage(plan_: Plan, stage: StagePlan, result: dict, best: Path) -> None:
    """The main process's files: the best model's preprocessor and results, the plots, and the
    stage's ``results.json`` (written last: it marks the stage done for ``resume``)."""
    args = plan_.args
    plan_.feature_extractor.save_pretrained(str(best))
    results = {
        **_portable(result, Path(args.output_dir)),
        "dataset": plan_.dataset_name,
        "label_set": args.label_set if stage.name != "stage1" else (args.source_label_set or args.label_set),
    }
    (best / "results.json").write_text(json.dumps(results, indent=2))
    _plots(result, stage.output_dir)
    (stage.output_dir / "results.json").write_text(json.dumps(result, indent=2))


def _portable(result: dict, root: Path) -> dict:
    """A stage result as it travels with its model (and to the Hub): folders relative to the run's
    output_dir, the feature cache by its key under the cache root; no path of this machine."""
    from hub_emo.paths import cache_dir

    def relative(path, base: Path) -> str | None:
        if path is None:
            return None
        path = Path(path).resolve()
        return str(path.relative_to(base.resolve())) if path.is_relative_to(base.resolve()) else path.name

    out = dict(result, model=relative(result["model"], root), best_checkpoint=relative(result["best_checkpoint"], root))
    if "feature_cache" in result:
        out["feature_cache"] = dict(result["feature_cache"],
                                    directory=relative(result["feature_cache"]["directory"], cache_dir()))
    return out


def _caches_features(args: TrainArguments, model) -> bool:
    """Cache when asked or by default, wherever the stage's model allows it (a LoRA stage 1
    before a cached weighted_sum stage 2 trains on audio)."""
    return args.cache_features is not False and model.accepts_layer_features


def _feature_caches(plan_: Plan, model):
    """(training cache, evaluation cache): one object when both crops are the same."""
    from accelerate import PartialState

    args = plan_.args
    model.to(PartialState().device)  # extract on this rank's device (train() set it up); Trainer keeps it there
    identity = features.backbone_identity(model.backbone, plan_.feature_extractor)
    size = args.per_device_eval_batch_size
    train_crop = feature_cache.extraction_crop(args.crop)
    eval_seconds = args.eval_max_seconds or args.max_seconds
    train_cache = feature_cache.FeatureCache(model, plan_.feature_extractor, args.max_seconds, train_crop, size,
                                             identity)
    if (eval_seconds, "center") == (args.max_seconds, train_crop):
        return train_cache, train_cache
    return train_cache, feature_cache.FeatureCache(model, plan_.feature_extractor, eval_seconds, "center", size,
                                                   identity)


def _cache_report(caches, args: TrainArguments) -> dict:
    """What the feature cache did in this stage (this process's share under DDP)."""
    train_cache, eval_cache = caches
    stats = dict(train_cache.stats)
    if eval_cache is not train_cache:
        stats = {k: stats[k] + eval_cache.stats[k] for k in stats}
    return {**stats, "train_crop": feature_cache.extraction_crop(args.crop), "max_seconds": args.max_seconds,
            "directory": str(train_cache.directory)}


def evaluate_model(trainer, test, num_labels: int) -> dict:
    """Test-split metrics of the trainer's (best) model: WA, UA, macro-F1, per-class F1, confusion.

    ``test`` is what the trainer's collator takes: decoded rows, or a cached `FeatureDataset`.
    """
    output = trainer.predict(test)
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    result = load_metric().compute(
        predictions=np.argmax(logits, -1), references=output.label_ids, labels=list(range(num_labels))
    )
    result.pop("labels")
    result["test_rows"] = int(len(output.label_ids))
    return result


def _plots(result: dict, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if "confusion_matrix" in result:
        matrix = np.asarray(result["confusion_matrix"])
        labels = result["labels"]
        fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 1 + 0.6 * len(labels)))
        ax.imshow(matrix, cmap="Blues")
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("reference")
        ax.set_title(f"{result['strategy']}: UA {result['balanced_accuracy']:.3f}")
        fig.tight_layout()
        fig.savefig(folder / "confusion_matrix.png", dpi=120)
        plt.close(fig)
    if "layer_weights" in result:
        weights = result["layer_weights"]
        fig, ax = plt.subplots(figsize=(max(3, 0.35 * len(weights)), 2.5))
        ax.bar(range(len(weights)), weights)
        ax.set_xlabel("hidden state (0 = first layer's input)")
        ax.set_ylabel("softmax weight")
        fig.tight_layout()
        fig.savefig(folder / "layer_weights.png", dpi=120)
        plt.close(fig)


# ---------------------------------------------------------------------- whole runs
def summarize(per_fold: dict[str, dict]) -> dict:
    """Mean and standard deviation (ddof=1; 0 for one fold) of each metric across folds."""
    mean, std, text = {}, {}, {}
    for key in SUMMARY_METRICS:
        values = np.array([r[key] for r in per_fold.values() if key in r], dtype=float)
        if values.size == 0:
            continue
        mean[key] = float(values.mean())
        std[key] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        text[key] = f"{mean[key]:.4f} ± {std[key]:.4f}"
    return {**mean, "std": std, "summary": text}


def train(args: TrainArguments | None = None, dataset=None, *, source_dataset=None, callbacks=None, **options) -> dict:
    """Fine-tune per fold (one stage, or two with ``source_*`` set); returns and writes ``results.json``."""
    args = _resolve(args, options)
    state = _process_state(args)
    # Before the first stage, so no rank can see folders another rank has begun to write.
    _on_rank_zero(lambda: _check_output_dir(Path(args.output_dir), args.resume), f"{args.output_dir}: checking")
    _check_shared(Path(args.output_dir))
    with state.main_process_first():
        plan_ = plan(args, dataset, source_dataset)
    per_fold: dict[str, dict] = {}
    for stages in plan_.folds:
        init_from = None
        fold_results = {}
        for stage in stages:
            fold_results[stage.name] = run_stage(plan_, stage, init_from, callbacks)
            init_from = stage.output_dir / "best"
        final = fold_results[stages[-1].name]
        per_fold[stages[-1].split.name] = {
            **{k: v for k, v in final.items() if k != "loss_history"},
            **({"stage1": fold_results["stage1"]} if "stage1" in fold_results else {}),
        }
    two_stage = any(len(stages) == 2 for stages in plan_.folds)
    best_fold, chosen_by = choose_fold(per_fold, args.metric_for_best_model)
    results = {
        "dataset": plan_.dataset_name,
        "label_set": args.label_set,
        "strategy": args.strategy,
        "backbone": args.backbone,
        "domain": args.domain,
        "two_stage": two_stage,
        "source": (
            {"domain": args.source_domain, "dataset": args.source_dataset or plan_.dataset_name,
             "strategy": args.source_strategy or args.strategy}
            if two_stage else None
        ),
        **summarize(per_fold),
        "folds": per_fold,
        "validation": _mean_validation(per_fold),
        "best_fold": best_fold,
        "best_fold_chosen_by": chosen_by,
        "best_model": per_fold[best_fold]["model"],
        "arguments": args.to_dict(),
    }
    if state.is_main_process:
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_dir) / "results.json").write_text(json.dumps(results, indent=2, default=str))
    state.wait_for_everyone()
    return results


def _process_state(args: TrainArguments):
    """accelerate's process state, whose process group (under torchrun) waits ``ddp_timeout``
    seconds at a barrier: the Trainer's own arguments come later and find the group made."""
    from datetime import timedelta

    from accelerate import PartialState

    return PartialState(cpu=_use_cpu(args), timeout=timedelta(seconds=args.ddp_timeout))


#: Seconds a rank looks for rank 0's marker in ``output_dir`` before calling the folder unshared
#: (a network file system may show a new file to another host a moment later).
SHARED_WAIT = 10.0


def _check_shared(out: Path) -> None:
    """Refuse, on every rank, an ``output_dir`` that some rank does not share with rank 0: the
    Trainer saves checkpoints and the best model on rank 0 only, and every rank reads them back
    (best model, stage 2's start, resume)."""
    import os
    import time
    import uuid

    with ranks() as group:
        if group.world == 1:
            return
        marker = out / f".shared-{group.broadcast(uuid.uuid4().hex)}"
        if group.main:
            out.mkdir(parents=True, exist_ok=True)
            marker.write_text(host())
        group.barrier()
        deadline = time.monotonic() + SHARED_WAIT
        seen = group.main
        while not seen and time.monotonic() < deadline:
            seen = out.is_dir() and marker.name in os.listdir(out)  # listing revalidates an NFS client's view
            if not seen:
                time.sleep(0.5)
        error = None if seen else ValueError(
            f"output_dir {out} is not shared: this host ({host()}) does not see the files rank 0 writes there. "
            "The Trainer saves checkpoints and the best model on rank 0 only and every rank reads them back: "
            "give an output_dir on a file system every host mounts")
        group.barrier()
        if group.main:
            marker.unlink()
        group.agree(error, f"output_dir {out}")


def _mean_validation(per_fold: dict[str, dict]) -> float | None:
    """Mean over folds of the best checkpoints' validation scores: what a choice between runs may use."""
    scores = [r.get("best_validation") for r in per_fold.values()]
    return None if not scores or any(v is None for v in scores) else float(np.mean(scores))


def choose_fold(per_fold: dict[str, dict], metric: str) -> tuple[str, str]:
    """(fold whose model to publish, how it was chosen): the best *validation* score of its best
    checkpoint, never a test score; the first fold when a fold has no validation split."""
    scores = {f: r.get("best_validation") for f, r in per_fold.items()}
    if any(v is None for v in scores.values()):
        first = next(iter(per_fold))
        return first, f"fold {first}, the first fold: without a validation split no fold is chosen by a score"
    best = max(scores, key=lambda f: scores[f])  # first maximum in fold order
    return best, (f"fold {best}: the best validation {metric} ({scores[best]:.4f}) of the {len(scores)} folds' "
                  "best checkpoints (speaker-disjoint validation split; test folds unseen)")


def train_two_stage(args: TrainArguments | None = None, dataset=None, *, source_domain: str | None = None,
                    source_dataset=None, **options) -> dict:
    """`train` with stage 1 on ``source_domain`` (and/or ``source_dataset``), stage 2 on the target."""
    if source_domain is not None:
        options["source_domain"] = source_domain
    args = _resolve(args, options)
    if not args.two_stage and source_dataset is None:
        raise ValueError("a two-stage run needs source_domain or source_dataset")
    return train(args, dataset, source_dataset=source_dataset)


def _has_accelerator() -> bool:
    import torch

    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or torch.backends.mps.is_available() or bool(xpu and xpu.is_available())


def _use_cpu(args: TrainArguments) -> bool:
    """CPU when asked or when there is no accelerator: accelerate only sets up gloo DDP under
    torchrun when told the run is on CPU, otherwise each process trains alone."""
    return args.use_cpu or not _has_accelerator()
