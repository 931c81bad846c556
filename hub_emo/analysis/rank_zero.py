"""The analyses under torchrun / accelerate launch: every rank extracts, rank 0 analyses.

Probing and FAD are one device's work once the features exist, and their report files must
be written once. So every rank first takes its share of each model's missing clips
(`hub_emo.features.extract`, with the records left in rank 0's store and loaded nowhere);
then rank 0 runs the analysis alone, reading every record from its store, and the other
ranks return ``None`` (torchrun ends when rank 0 does). A model that fails on any rank
(cannot load, runs out of memory on one clip) fails on all of them together, and the
analysis leaves it out with the message. In one process the extraction step is skipped
unless asked for: probing asks, so the frames it caches for a later FAD run are written
but never loaded.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from hub_emo.distributed import alone, ranks

T = TypeVar("T")


def failure_message(error: Exception) -> str:
    """How a model's failure reads in a report: a ValueError's own words, else its type too."""
    return str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"


def extract_everywhere(backbones: dict, dataset, *, frames_per_clip: int, trust_remote_code: bool = False,
                       progress: bool = False) -> dict[str, str]:
    """Each model's missing records, extracted in shares by every rank into rank 0's store;
    returns the models that failed (on any rank) as name -> message, the same on every rank."""
    from hub_emo import features

    failed: dict[str, str] = {}
    with ranks() as group:
        for name, source in backbones.items():
            loaded, error = None, None
            try:
                loaded = features.load_backbone(source, trust_remote_code=trust_remote_code, name=name)
            except Exception as failure:  # noqa: BLE001 - every rank must skip the model together
                error = failure
            try:
                group.agree(error, f"model {name}: loading")
                features.extract(loaded, dataset, frames_cap=frames_per_clip, progress=progress, records="none")
            except Exception as failure:  # noqa: BLE001 - one model's failure must not end the others'
                failed[name] = failure_message(failure)
            loaded = None  # free the model before the next one loads
    return failed


def on_rank_zero(backbones: dict, dataset, analyse: Callable[[dict, dict], T], *, frames_per_clip: int,
                 trust_remote_code: bool = False, progress: bool = False, extract_first: bool = False) -> T | None:
    """``analyse(the backbones that extracted, failed: name -> message)`` on rank 0 alone, after
    `extract_everywhere` (under a launcher, or with ``extract_first``); None on other ranks.
    Raises ValueError when every model failed."""
    failed: dict[str, str] = {}
    with ranks() as group:  # the analysis below runs in `alone`: no step waits for the other ranks
        main = group.main
        if group.world > 1 or extract_first:
            failed = extract_everywhere(backbones, dataset, frames_per_clip=frames_per_clip,
                                        trust_remote_code=trust_remote_code, progress=progress)
    if not main:
        return None
    if backbones and len(failed) == len(backbones):
        raise ValueError("; ".join(failed.values()))
    with alone():
        return analyse({n: s for n, s in backbones.items() if n not in failed}, failed)
