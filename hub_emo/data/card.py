"""The dataset card (README.md) of a prepared dataset: configs, counts, licences, citations."""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

from hub_emo.data.report import SKIP_REPORT, Skipped
from hub_emo.schema import DOMAINS, NO_LABEL, LabelSet


def _configs(parts: Mapping[str, Any], modules: Mapping[str, Any]) -> list[dict]:
    """``configs:`` of the card: all (default), one per corpus, one per domain present."""
    present = [n for n, p in parts.items() if len(p)]
    configs = [
        {
            "config_name": "all",
            "default": True,
            "data_files": [{"split": "train", "path": [f"data/{n}/*.parquet" for n in present]}],
        }
    ]
    for name in present:
        configs.append(
            {"config_name": name, "data_files": [{"split": "train", "path": f"data/{name}/*.parquet"}]}
        )
    for domain in DOMAINS:
        members = [n for n in present if modules[n].DOMAIN == domain]
        if members:
            configs.append(
                {
                    "config_name": domain,
                    "data_files": [{"split": "train", "path": [f"data/{n}/*.parquet" for n in members]}],
                }
            )
    return configs


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def dataset_card(parts: Mapping[str, Any], modules: Mapping[str, Any], skipped: Sequence[Skipped], *,
                 label_set: LabelSet | None = None):
    """The README.md of a prepared dataset, from ``model_cards/dataset_card.md``."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from model_cards import template_path

    present = {n: p for n, p in parts.items() if len(p)}
    any_part = next(iter(present.values()))
    label_names = any_part.features["label"].names
    counts, no_label = {}, {}
    for name, part in present.items():
        labels = Counter(part["label"])
        counts[name] = [labels.get(i, 0) for i in range(len(label_names))]
        no_label[name] = labels.get(NO_LABEL, 0)
    skips = Counter(s.corpus for s in skipped)
    total = sum(len(p) for p in present.values())
    domains = sorted({modules[n].DOMAIN for n in present})
    data = DatasetCardData(
        pretty_name="hub_emo emotion corpora: " + ", ".join(present),
        license="other",
        task_categories=["audio-classification"],
        tags=["emotion-recognition", *domains, "hub_emo"],
        size_categories=[_size_category(total)],
        configs=_configs(present, modules),
    )
    corpora = [
        {
            "name": name,
            "domain": modules[name].DOMAIN,
            "clips": len(part),
            "skipped": skips.get(name, 0),
            "homepage": modules[name].HOMEPAGE,
            "license": modules[name].LICENSE,
            "citation": modules[name].CITATION,
            "label_map": modules[name].LABEL_MAP,
            "dropped": modules[name].DROPPED,
            "unlabelled": getattr(modules[name], "UNLABELLED", {}),
            "no_label": no_label[name],
            "counts": counts[name],
        }
        for name, part in present.items()
    ]
    return DatasetCard.from_template(
        data,
        template_path=str(template_path("dataset_card.md")),
        corpora=corpora,
        label_names=label_names,
        label_set=label_set,
        total=total,
        skipped=len(skipped),
        skip_report=SKIP_REPORT,
        domains=domains,
    )
