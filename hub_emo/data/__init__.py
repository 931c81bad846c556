"""The data stage: corpora into one schema, and prepared datasets back.

One module per job: `preparation` (`prepare`: the steps in order, and collecting the
corpus modules' records), `decode` (every clip read and checked, in one or several
processes), `report` (what was left out, ``skipped.tsv``), `parquet` (`write`: shards,
card and report, atomically), `card` (the dataset card), `upload` (`push` to a dataset
repo) and `read` (read back prepared datasets, fingerprint their clips).
"""

from __future__ import annotations

from hub_emo.data.card import dataset_card
from hub_emo.data.parquet import MAX_SHARD_BYTES, write
from hub_emo.data.preparation import Prepared, prepare, prepare_with_report
from hub_emo.data.read import clip_fingerprints, clips_hashed, load_prepared, select_rows
from hub_emo.data.report import SKIP_REPORT, PrepareError, Skipped, read_skip_report, write_skip_report
from hub_emo.data.upload import push

__all__ = [
    "MAX_SHARD_BYTES",
    "SKIP_REPORT",
    "PrepareError",
    "Prepared",
    "Skipped",
    "clip_fingerprints",
    "clips_hashed",
    "dataset_card",
    "load_prepared",
    "prepare",
    "prepare_with_report",
    "push",
    "read_skip_report",
    "select_rows",
    "write",
    "write_skip_report",
]
