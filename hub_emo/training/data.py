"""From a prepared dataset to batches: load, select, split by fold, decode, crop, pad.

Everything here runs before training starts, so bad input (labels outside the label set,
an empty split, a fold that does not exist) stops the run at once with a message naming
the dataset and the problem.

Batches: audio decodes at its own rate and is downmixed and resampled (soxr) to the feature
extractor's rate by `hub_emo.features.waveform`, once per stage where memory allows
(`DecodedClips`), cropped to a stated maximum length by a `hub_emo.features.Window` (the path
cached features take too), then normalised and padded by the backbone's feature extractor. The attention
mask is always built: pooling needs it to ignore padded frames, and the model itself
withholds it from backbones pretrained without masks (``feat_extract_norm="group"``).
"""

from __future__ import annotations

import hashlib
import logging
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from hub_emo import features, schema
from hub_emo.data import select_rows

logger = logging.getLogger(__name__)

COLUMNS = ("id", "audio", "label")


def flatten(dataset):
    import datasets

    if isinstance(dataset, datasets.DatasetDict):
        return datasets.concatenate_datasets(list(dataset.values()))
    return dataset


def label_set_of(value):
    """A label-set name, or a comma list of canonical emotions ("happy,sad")."""
    if isinstance(value, str) and "," in value:
        return schema.get_label_set([v.strip() for v in value.split(",") if v.strip()])
    return schema.get_label_set(value)


def select(dataset, label_set, *, domain: str | None = None, drop_unlisted: bool = False, name: str = "dataset"):
    """Keep one domain and relabel into a label set; refuse labels the set lacks unless told to drop them."""
    import datasets

    if isinstance(dataset, datasets.DatasetDict):
        return datasets.DatasetDict(
            {k: select(v, label_set, domain=domain, drop_unlisted=drop_unlisted, name=f"{name}[{k}]")
             for k, v in dataset.items()}
        )
    ls = label_set_of(label_set)
    if domain is not None:
        if domain not in schema.DOMAINS:
            raise ValueError(f"unknown domain {domain!r}; use one of {schema.DOMAINS}")
        wanted = dataset.features["domain"].str2int(domain)
        dataset = dataset.filter(lambda d: d == wanted, input_columns="domain")
    names = dataset.features["label"].names
    labels = np.asarray(dataset["label"], dtype=np.int64)
    unlabelled = int((labels == schema.NO_LABEL).sum())
    if unlabelled:
        logger.warning("%s: %d clip(s) with no canonical class (label -1) left out", name, unlabelled)
    counts = np.bincount(labels[labels != schema.NO_LABEL], minlength=len(names))
    unlisted = {names[i]: int(c) for i, c in enumerate(counts) if c and ls.map(names[i]) is None}
    if unlisted and not drop_unlisted:
        raise ValueError(
            f"{name}: labels {unlisted} (emotion: rows) are not in label set {ls.name!r} "
            f"{list(ls.classes)}; choose another label set or set drop_unlisted_labels"
        )
    selected = schema.apply_label_set(dataset, ls)
    if len(selected) == 0:
        where = f" in domain {domain!r}" if domain else ""
        raise ValueError(f"{name}: no rows{where} with a label of {ls.name!r}")
    return selected


def domains_of(dataset) -> set[str]:
    dataset = flatten(dataset)
    names = dataset.features["domain"].names
    return {names[i] for i in set(dataset["domain"])}


@dataclass
class Split:
    """One fold's train / validation / test datasets (validation may be None)."""

    name: str
    train: Any
    validation: Any
    test: Any


_WARNED: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    """Print an adaptation once per dataset and process (not once per fold)."""
    if key not in _WARNED:
        _WARNED.add(key)
        print(message, file=sys.stderr)


def holdout_speakers(train, fraction: float, seed: int, name: str):
    """Split off a speaker-disjoint validation set (at least one speaker), reproducibly."""
    if fraction <= 0:
        return train, None
    speakers = sorted(set(train["speaker"]))
    if len(speakers) < 2:
        _warn_once(name.split(" fold ")[0], (
            f"warning: {name.split(' fold ')[0]}: validation split falls back to none: a speaker-disjoint "
            f"validation split needs 2+ training speakers and a fold has {len(speakers)} ({speakers}); "
            "training runs without validation (no early stopping; the final model is kept). Give more "
            "speakers, or set validation_fraction 0 to silence this"))
        return train, None
    order = sorted(speakers, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    held = set(order[: max(1, round(fraction * len(speakers)))])
    column = train["speaker"]
    val_rows = [i for i, s in enumerate(column) if s in held]
    train_rows = [i for i, s in enumerate(column) if s not in held]
    return select_rows(train, train_rows), select_rows(train, val_rows)


def fold_names(dataset) -> list[str]:
    """The dataset's folds, in numeric order where they are numbers (never '10' before '2')."""
    found = {str(f) for f in flatten(dataset)["fold"] if f not in (None, "")}
    return sorted(found, key=lambda f: (0, int(f), "") if f.isdigit() else (1, 0, f))


def splits(dataset, folds: str, validation_fraction: float, seed: int, name: str = "dataset") -> list[Split]:
    """Train/validation/test per test fold ('all' or a comma list), or the dataset's own splits ('none')."""
    import datasets

    if folds.strip().lower() == "none":
        if not isinstance(dataset, datasets.DatasetDict) or "train" not in dataset:
            raise ValueError(f"{name}: folds 'none' needs a dataset with a 'train' split (and 'test')")
        if "test" not in dataset:
            raise ValueError(f"{name}: folds 'none' needs a 'test' split; found {list(dataset)}")
        validation = dataset.get("validation")
        train = dataset["train"]
        if validation is None:
            train, validation = holdout_speakers(train, validation_fraction, seed, name)
        result = [Split("none", train, validation, dataset["test"])]
    else:
        flat = flatten(dataset)
        available = fold_names(flat)
        if not available:
            raise ValueError(f"{name}: rows have no fold; use folds 'none' with train/test splits")
        wanted = available if folds.strip().lower() == "all" else [f.strip() for f in folds.split(",") if f.strip()]
        missing = [f for f in wanted if f not in available]
        if missing:
            raise ValueError(f"{name}: fold(s) {missing} do not exist; folds are {available}")
        column = [str(f) for f in flat["fold"]]
        result = []
        for fold in wanted:
            test = select_rows(flat, [i for i, f in enumerate(column) if f == fold])
            train = select_rows(flat, [i for i, f in enumerate(column) if f != fold])
            train, validation = holdout_speakers(train, validation_fraction, seed, f"{name} fold {fold}")
            result.append(Split(fold, train, validation, test))
    for split in result:
        for part in ("train", "validation", "test"):
            data = getattr(split, part)
            if data is not None and len(data) == 0:
                raise ValueError(f"{name}: fold {split.name!r} has an empty {part} split")
    return result


#: Decoded audio a split (a stage's training, validation or test rows) keeps in memory across
#: epochs, in bytes: a RAVDESS-size corpus (2452 clips, ~580 MB at 16 kHz) fits, so every clip
#: decodes and resamples once per stage instead of once per epoch; beyond it clips decode on
#: each read. A stage's splits are freed with the stage.
DECODED_BUDGET = 2 << 30


class DecodedClips:
    """A split's rows as only what a batch needs, ``{"id", "label", "wave"}``, the wave mono
    float32 at the extractor's ``rate``.

    Decoding and resampling are `hub_emo.features.waveform`'s, so cached and uncached training
    see the same samples. Waves decoded in the main process are kept (read-only, up to `DECODED_BUDGET`);
    DataLoader workers, which an accelerator run uses to decode beside the compute and which
    restart every epoch, keep nothing.
    """

    def __init__(self, dataset, rate: int, budget: int = DECODED_BUDGET):
        self.rows = features.decodable(dataset, COLUMNS)
        self.rate = int(rate)
        self.ids, self.labels = list(dataset["id"]), list(dataset["label"])
        self.kept: dict[int, np.ndarray] = {}
        self.room = budget

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict:
        wave = self.kept.get(index)
        if wave is None:
            wave = features.waveform(self.rows[index], self.rate)
            if wave.nbytes <= self.room and _in_main_process():
                wave.setflags(write=False)
                self.kept[index] = wave
                self.room -= wave.nbytes
        return {"id": self.ids[index], "label": self.labels[index], "wave": wave}


def _in_main_process() -> bool:
    from torch.utils.data import get_worker_info

    return get_worker_info() is None


def class_weights(dataset, num_labels: int) -> list[float]:
    """Inverse-frequency weights n / (C · n_c) (scikit-learn's 'balanced'); absent classes get 0."""
    counts = np.bincount(np.asarray(dataset["label"], dtype=np.int64), minlength=num_labels).astype(float)
    present = counts > 0
    weights = np.zeros(num_labels)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.tolist()


class AudioCollator:
    """Crop and pad a batch of decoded rows (`DecodedClips` items) into model inputs.

    Cropping is `hub_emo.features.Window`'s, as for cached features: training crops are
    random windows whose offset is a hash of (seed, epoch, clip id), reproducible after
    ``--resume`` without saving any state. Evaluation crops are centred.
    """

    def __init__(self, feature_extractor, max_seconds: float | None, crop: str = "center", seed: int = 0):
        self.feature_extractor = feature_extractor
        self.rate = int(feature_extractor.sampling_rate)
        self.window = features.Window.of(max_seconds, self.rate, crop)
        self.seed = seed
        self.epoch = 0

    def waveform(self, row: dict) -> np.ndarray:
        """One row's audio (a `DecodedClips` item), cropped."""
        return self.window.cut(row["wave"], row["id"], self.seed, self.epoch)

    def pad(self, waves: list[np.ndarray]):
        """Normalise and pad waveforms into ``input_values`` + ``attention_mask`` tensors."""
        return self.feature_extractor(
            waves, sampling_rate=self.rate, padding=True, return_attention_mask=True, return_tensors="pt"
        )

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        batch = self.pad([self.waveform(row) for row in rows])
        batch["labels"] = torch.tensor([int(row["label"]) for row in rows], dtype=torch.long)
        return dict(batch)
