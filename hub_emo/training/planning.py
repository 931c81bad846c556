"""Pre-flight for a fine-tuning run: the arguments resolved, the data, folds, stages and backbone
loaded and checked, so that anything wrong fails before the first step."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from hub_emo.data import load_prepared, select_rows

from . import data as train_data
from .arguments import TrainArguments, parse, with_options
from .strategies import get_strategy


@dataclass
class StagePlan:
    name: str  # "train", or "stage1" / "stage2"
    strategy: str
    labels: list[str]
    label_set: str  # the label set's name as given (recorded with the stage's model)
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

    @cached_property
    def backbone_identity(self) -> str:
        """The loaded backbone's feature-cache identity, hashed once per run: every stage
        built fresh on it has these weights (`from_backbone` copies them, never changes them)."""
        from hub_emo import features

        return features.backbone_identity(self.backbone, self.feature_extractor)


def resolve(args: TrainArguments | None, options: dict) -> TrainArguments:
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
        train = select_rows(flat, [i for i, f in enumerate(folds) if f != target.name]) if target.name in folds else flat
    train, validation = train_data.holdout_speakers(train, args.validation_fraction, args.seed, name)
    if len(train) == 0:
        raise ValueError(f"{name}: no stage-1 training rows for fold {target.name!r}")
    return train_data.Split(target.name, train, validation, None)


def _source_data(args: TrainArguments, loaded, ls, target, name: str, source_dataset):
    """(stage 1's rows, their name, their label set resolved once), or (None, None, None) for a
    one-stage run; a cross-domain run whose stages share a domain is refused."""
    if not (args.two_stage or source_dataset is not None):
        return None, None, None
    src_name = args.source_dataset or args.dataset or "<dataset>"
    if source_dataset is not None:
        src_loaded = load_prepared(source_dataset)
    elif args.source_dataset:
        src_loaded = load_prepared(args.source_dataset, args.source_dataset_config)
    else:
        src_loaded = loaded
    src_ls = train_data.label_set_of(args.source_label_set) if args.source_label_set else ls
    source = train_data.select(
        src_loaded, src_ls, domain=args.source_domain,
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
    return source, src_name, src_ls


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

    source, src_name, src_ls = _source_data(args, loaded, ls, target, name, source_dataset)
    backbone, feature_extractor = _load_backbone(args)

    folds = []
    strategy = get_strategy(args.strategy)
    for split in target_splits:
        base = out / f"fold-{split.name}"
        stages = []
        if source is not None:
            src_strategy = get_strategy(args.source_strategy or args.strategy)
            stages.append(StagePlan(
                "stage1", src_strategy.name, list(src_ls.classes), args.source_label_set or args.label_set,
                _source_split(source, split, args, f"{src_name} (stage 1) fold {split.name}"),
                args.source_learning_rate
                or (args.learning_rate if src_strategy.name == strategy.name else None)
                or src_strategy.learning_rate,
                args.source_epochs or args.num_train_epochs or src_strategy.num_train_epochs,
                base / "stage1",
            ))
        stages.append(StagePlan(
            "stage2" if source is not None else "train", strategy.name, list(ls.classes), args.label_set, split,
            args.learning_rate or strategy.learning_rate,
            args.num_train_epochs or strategy.num_train_epochs,
            base / ("stage2" if source is not None else "train"),
        ))
        folds.append(stages)
    from hub_emo.modeling.backbones import public_source

    return Plan(args, backbone, feature_extractor, folds, public_source(name))  # a local folder: its name


def check_output_dir(out: Path, resume: bool) -> None:
    if resume or not out.exists():
        return
    used = [p for p in out.glob("fold-*/*") if p.is_dir()] + list(out.glob("results.json"))
    if used:
        raise ValueError(f"{out}: holds an earlier run; pass resume to continue it, or choose another output_dir")


def has_accelerator() -> bool:
    import torch

    xpu = getattr(torch, "xpu", None)
    return torch.cuda.is_available() or torch.backends.mps.is_available() or bool(xpu and xpu.is_available())


def use_cpu(args: TrainArguments) -> bool:
    """CPU when asked or when there is no accelerator: accelerate only sets up gloo DDP under
    torchrun when told the run is on CPU, otherwise each process trains alone."""
    return args.use_cpu or not has_accelerator()
