"""Which clips a feature set holds: the labelled metadata and row positions probing and FAD share.

Both analyses read one cached extraction (`hub_emo.features.extract_features`) whose rows are clip
ids; these two functions line those rows up with a dataset under a label set, once.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from hub_emo import schema


def clip_metadata(dataset, label_set) -> tuple[list[str], dict[str, np.ndarray], tuple[str, ...]]:
    """(ids, {label, domain, fold} arrays, class names) after applying a label set; no audio decoded."""
    meta = dataset.select_columns(["id", "label", "domain", "fold"])
    meta = schema.apply_label_set(meta, label_set)
    if len(meta) == 0:
        raise ValueError(f"no clip of the dataset belongs to label set {schema.get_label_set(label_set).name!r}")
    domain_names = meta.features["domain"].names
    columns = meta.to_dict()
    arrays = {
        "label": np.asarray(columns["label"]),
        "domain": np.asarray([domain_names[d] for d in columns["domain"]]),
        "fold": np.asarray([str(f) for f in columns["fold"]]),
    }
    return [str(i) for i in columns["id"]], arrays, tuple(meta.features["label"].names)


def rows_for(feature_ids: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """Positions of ``wanted`` ids in a feature set."""
    position = {clip: i for i, clip in enumerate(feature_ids)}
    missing = [w for w in wanted if w not in position]
    if missing:
        raise ValueError(f"{len(missing)} clips lack features (e.g. {missing[:3]}); was the cache built on another dataset?")
    return np.asarray([position[w] for w in wanted], dtype=np.int64)


def unlabelled_note(dataset) -> list[str]:
    """The report line for clips left out because they have no canonical class (none if none)."""
    count = schema.count_unlabelled(dataset)
    return [f"{count} clip(s) with no canonical class (label -1) left out"] if count else []
