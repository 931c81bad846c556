"""One stage of a fold: its model, its inputs (cached layer features or audio), the Trainer, its
best model and test metrics."""

from __future__ import annotations

import contextlib
import json
import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hub_emo import features, progress
from hub_emo.distributed import ranks
from hub_emo.metric import SUMMARY_METRICS, load_metric

from . import data as train_data
from . import feature_cache
from .arguments import TrainArguments
from .models import build_model, transfer_weights
from .planning import Plan, StagePlan, use_cpu
from .results import write_stage
from .strategies import trainable_share


def trainer_classes():
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


def training_arguments(args: TrainArguments, stage: StagePlan, has_validation: bool):
    """The stage's `TrainingArguments`: hub_emo's defaults, under the user's Trainer options, under
    what hub_emo fixes (the stage's folder, learning rate and epochs, hub_emo's own fields)."""
    from transformers import TrainingArguments

    if "warmup_steps" in args.trainer_options and args.warmup_ratio is not None:
        raise ValueError("give warmup_ratio (a share of the steps) or warmup_steps, not both")
    every = "steps" if args.eval_steps else "epoch"
    cpu = use_cpu(args)
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
        dataloader_num_workers=dataloader_workers(args, cpu),
        remove_unused_columns=False,
        label_names=["labels"],
        push_to_hub=False,  # hub-emo pushes the model chosen on validation, after every fold
        ddp_timeout=args.ddp_timeout,  # the process group made before these arguments waits as long
    )
    return TrainingArguments(**{**defaults, **args.trainer_options, **fixed})


def dataloader_workers(args: TrainArguments, cpu: bool) -> int:
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


def _scores(predictions, label_ids, num_labels: int) -> dict:
    """Every metric of the project's metric module for logits (or a tuple holding them first)."""
    logits = predictions[0] if isinstance(predictions, tuple) else predictions
    return load_metric().compute(predictions=np.argmax(logits, axis=-1), references=label_ids,
                                 labels=list(range(num_labels)))


def compute_metrics(num_labels: int):
    """The Trainer's validation metrics: the summary ones of `_scores`."""
    def compute(prediction):
        result = _scores(prediction.predictions, prediction.label_ids, num_labels)
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


def on_rank_zero(decision, what: str):
    """``decision()`` read on rank 0 alone and broadcast: every rank acts on one view of
    ``output_dir``, however another host's file-system cache lags."""
    with ranks() as group:
        return group.decide(decision, what)


def run_stage(run_plan: Plan, stage: StagePlan, init_from: Path | None = None, callbacks=None) -> dict:
    """Train one stage, keep its best model in ``<stage>/best`` and evaluate it; returns its results."""
    from transformers import EarlyStoppingCallback

    args = run_plan.args
    if args.resume:
        finished = on_rank_zero(lambda: _finished_stage(stage), f"{stage.output_dir}: reading a finished stage")
        if finished is not None:
            return finished

    model, transfer = _stage_model(run_plan, stage, init_from)
    EmoTrainer, CropEpoch = trainer_classes()
    inputs = _stage_inputs(run_plan, stage, model, CropEpoch, carried=transfer is not None)
    extra = list(inputs.callbacks)
    if inputs.validation is not None and args.early_stopping_patience > 0:
        extra.append(EarlyStoppingCallback(early_stopping_patience=args.early_stopping_patience))
    trainer = EmoTrainer(
        model=model,
        args=training_arguments(args, stage, inputs.validation is not None),
        train_dataset=inputs.train,
        eval_dataset=inputs.validation,
        data_collator=inputs.collator,
        eval_collator=inputs.eval_collator,
        compute_metrics=compute_metrics(len(stage.labels)),
        callbacks=extra + [progress.trainer_callback(f"{stage.name} ({stage.strategy})")] + list(callbacks or []),
    )
    checkpoint = (on_rank_zero(lambda: _last_checkpoint(stage.output_dir), f"{stage.output_dir}: finding the "
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
        write_stage(run_plan, stage, result, best)
    trainer.accelerator.wait_for_everyone()
    return result


def _stage_model(run_plan: Plan, stage: StagePlan, init_from: Path | None):
    """(the stage's fresh model, seeded; what it carried over from ``init_from``, or None)."""
    from transformers import set_seed

    args = run_plan.args
    set_seed(args.seed)
    model = build_model(run_plan.backbone, stage.labels, stage.strategy, args, run_plan.feature_extractor)
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


def _stage_inputs(run_plan: Plan, stage: StagePlan, model, CropEpoch, carried: bool) -> _StageInputs:
    """Features from the cache where the stage's model allows it, else audio cropped per epoch.
    ``carried``: the model took its backbone from stage 1 rather than from the run's backbone."""
    args, split = run_plan.args, stage.split
    caches = _feature_caches(run_plan, model, carried) if _caches_features(args, model) else None
    if caches is not None:
        train_caches, eval_cache = caches
        train = train_caches.dataset(split.train)
        validation = None if split.validation is None else eval_cache.dataset(split.validation)
        return _StageInputs(train, validation, eval_cache.dataset, feature_cache.collate_features, None, [], caches)
    decoded = partial(train_data.DecodedClips, rate=int(run_plan.feature_extractor.sampling_rate))
    train = decoded(split.train)
    validation = None if split.validation is None else decoded(split.validation)
    collator = train_data.AudioCollator(run_plan.feature_extractor, args.max_seconds, args.crop, args.seed)
    eval_collator = train_data.AudioCollator(
        run_plan.feature_extractor, args.eval_max_seconds or args.max_seconds, "center", args.seed
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


def _caches_features(args: TrainArguments, model) -> bool:
    """Cache when asked or by default, wherever the stage's model allows it (a LoRA stage 1
    before a cached weighted_sum stage 2 trains on audio)."""
    return args.cache_features is not False and model.accepts_layer_features


def _feature_caches(run_plan: Plan, model, carried: bool):
    """(training cache, evaluation cache): one object when both crops are the same. The cache's
    identity is the run's backbone's, hashed once, unless stage 1 handed on its own backbone."""
    from accelerate import PartialState

    args = run_plan.args
    model.to(PartialState().device)  # extract on this rank's device (train() set it up); Trainer keeps it there
    identity = (features.backbone_identity(model.backbone, run_plan.feature_extractor) if carried
                else run_plan.backbone_identity)
    size = args.per_device_eval_batch_size
    train_crop = feature_cache.extraction_crop(args.crop)
    eval_seconds = args.eval_max_seconds or args.max_seconds
    train_cache = feature_cache.FeatureCache(model, run_plan.feature_extractor, args.max_seconds, train_crop, size,
                                             identity)
    if (eval_seconds, "center") == (args.max_seconds, train_crop):
        return train_cache, train_cache
    return train_cache, feature_cache.FeatureCache(model, run_plan.feature_extractor, eval_seconds, "center", size,
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
    result = _scores(output.predictions, output.label_ids, num_labels)
    result.pop("labels")
    result["test_rows"] = int(len(output.label_ids))
    return result
