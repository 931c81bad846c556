"""Write a prepared dataset: Parquet shards per corpus, the skip report and the card, atomically."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from hub_emo.data.card import dataset_card
from hub_emo.data.report import SKIP_REPORT, PrepareError, Skipped, write_skip_report
from hub_emo.schema import LabelSet

#: Default Parquet shard size (bytes of Arrow data per shard).
MAX_SHARD_BYTES = 500 << 20


def check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PrepareError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise PrepareError(f"{out}: exists and is not empty (pass overwrite=True / --overwrite)")


def write(
    parts: Mapping[str, Any],
    modules: Mapping[str, Any],
    skipped: Sequence[Skipped],
    out: str | os.PathLike,
    *,
    label_set: LabelSet | None = None,
    overwrite: bool = False,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    roots: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``data/<corpus>/train-*.parquet``, the skip report and README.md, atomically.

    Everything goes to a temporary folder beside ``out`` that replaces it at the end, so
    a failure leaves either the old folder or nothing, never half a dataset.
    """
    out = Path(out).resolve()
    check_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    old = None
    try:
        files: dict[str, list[str]] = {}
        for name, part in parts.items():
            if len(part) == 0:
                continue
            shards = max(1, math.ceil(part.data.nbytes / max_shard_bytes))
            folder = tmp / "data" / name
            folder.mkdir(parents=True)
            for i in range(shards):
                shard = part.shard(shards, i, contiguous=True)
                shard.to_parquet(str(folder / f"train-{i:05d}-of-{shards:05d}.parquet"))
            files[name] = [f"data/{name}/*.parquet"]
        write_skip_report(skipped, tmp / SKIP_REPORT, roots or {})
        card = dataset_card(parts, modules, skipped, label_set=label_set)
        card.save(tmp / "README.md")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out
