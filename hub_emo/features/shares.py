"""Extraction across ranks: rank 0 decides what is missing and who extracts what; records
then reach the ranks that read them over the process group, not through a shared disk.

Each rank's cache may be its own (node-local ``HUB_EMO_CACHE``) or one shared folder whose
view lags on another host (NFS attribute caching). So only rank 0 looks at its cache to
decide what is missing; the missing clips are split into shares of about equal audio
duration (read from the files' headers, not decoded), since a rank's time goes with the
seconds it feeds, not with its clip count; and after extraction a rank that lacks a record
it must read receives it from a rank that has it, and stores it. On one shared disk
nothing travels but the lists of names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hub_emo.distributed import Ranks

from .store import Store, pack, unpack
from .window import Window, header_seconds

#: Records per message: bounds the memory a transfer holds (frames make a record ~1.6 MB
#: at 25 hidden states x 32 frames x 1024 dims).
CHUNK = 64

#: Who reads the records after `extract`: every rank (training), or no rank (rank 0's store
#: is complete; the analyses read it later on rank 0 alone).
RECORDS = ("all", "none")


@dataclass
class Plan:
    """Rank 0's decision, the same on every rank."""

    missing: list[str]  # unique clip fingerprints to extract
    shares: list[list[int]]  # per rank: the dataset rows it extracts
    refresh: bool = False  # stored records are stale: a rank takes every other rank's share


def durations(dataset, rows: list[int]) -> np.ndarray:
    """Seconds of audio of ``rows`` from the files' headers, not decoded (`window.header_seconds`)."""
    return header_seconds(dataset, rows)


def split_by_duration(weights, world: int) -> list[list[int]]:
    """Positions 0..n-1 in ``world`` shares of about equal total weight (longest first, each to
    the lightest share: within the longest item of the best split); each share in order."""
    loads = np.zeros(world)
    shares: list[list[int]] = [[] for _ in range(world)]
    for position in np.argsort(-np.asarray(weights, dtype=float), kind="stable"):
        lightest = int(np.argmin(loads))
        shares[lightest].append(int(position))
        loads[lightest] += float(weights[position])
    return [sorted(share) for share in shares]


def plan(group: Ranks, store: Store, dataset, clips: list[str], window: Window, frames_cap: int,
         refresh: bool) -> Plan:
    """Rank 0's view of what is missing and who extracts it, broadcast to every rank."""

    def decide() -> Plan:
        first = {c: i for i, c in reversed(list(enumerate(clips)))}
        missing = [c for c in first if refresh or not store.has(c, window, frames_cap)]
        rows = [first[c] for c in missing]
        if group.world == 1:
            return Plan(missing, [rows], refresh)
        shares = split_by_duration(durations(dataset, rows), group.world)
        return Plan(missing, [[rows[k] for k in share] for share in shares], refresh)

    return group.decide(decide, "deciding what to extract")


def deliver(group: Ranks, store: Store, clips: list[str], window: Window, frames_cap: int, decision: Plan,
            records: str = "all") -> list:
    """After every rank extracted its share: complete the stores of the ranks that read (every
    rank with ``records="all"``, else rank 0) and return the records in the order of ``clips``
    (none with ``"none"``). Raises on every rank when a reading rank still lacks a record."""
    if records not in RECORDS:
        raise ValueError(f"records must be one of {RECORDS}, got {records!r}")
    owner = {clips[row]: rank for rank, share in enumerate(decision.shares) for row in share}
    unique = list(dict.fromkeys(clips))

    def lacks(candidates):
        return [c for c in candidates if (decision.refresh and owner.get(c, group.rank) != group.rank)
                or not store.has(c, window, frames_cap)]

    lacking = group.broadcast(lacks(decision.missing) if group.main else None)
    problems = _transfer(group, store, lacking, window, frames_cap, lambda c: owner.get(c, 0), to=0)
    if records == "all" and group.world > 1:
        wanted = group.all_gather([] if group.main else lacks(unique))
        for rank in range(1, group.world):
            problems += _transfer(group, store, wanted[rank], window, frames_cap, lambda c: 0, to=rank)
    found: dict = {}
    if records == "all":
        found = {c: store.find(c, window, frames_cap) for c in unique}
        absent = [c for c, record in found.items() if record is None]
    else:
        absent = [c for c in unique if not store.has(c, window, frames_cap)] if group.main else []
    error = None
    if absent:
        error = RuntimeError(f"{store.directory}: {len(absent)} clips missing after extraction (e.g. {absent[:3]})"
                             + (f"; {problems[0]}" if problems else ""))
    group.agree(error, "reading the extracted records")
    return [found[c] for c in clips] if records == "all" else []


def _transfer(group: Ranks, store: Store, clips: list[str], window: Window, frames_cap: int, source_of,
              to: int) -> list[str]:
    """Send each of ``clips`` from the rank ``source_of`` names to rank ``to``, which stores it;
    returns what went wrong on this rank. Every rank walks the same list in the same order and
    only the two ranks of a message act; a record that cannot be read or written is skipped,
    never left half-sent, so the ranks stay in step and the final check names it."""
    problems: list[str] = []
    if group.world == 1:
        return problems
    for source in range(group.world):
        batch = [c for c in clips if source_of(c) == source]
        if source == to or group.rank not in (source, to):
            continue
        for start in range(0, len(batch), CHUNK):
            chunk = batch[start:start + CHUNK]
            if group.rank == source:
                group.send([_packed(store, c, window, frames_cap) for c in chunk], to)
                continue
            for clip, data in zip(chunk, group.receive(source)):
                try:
                    if data is not None:
                        store.write(clip, *unpack(data), frames_cap)
                except Exception as error:  # noqa: BLE001 - keep receiving; the final check fails
                    problems.append(f"storing {clip} from rank {source}: {type(error).__name__}: {error}")
    return problems


def _packed(store: Store, clip: str, window: Window, frames_cap: int) -> bytes | None:
    try:
        found = store.entry(clip, window, frames_cap)
    except Exception:  # noqa: BLE001 - an unreadable record travels as None; the final check names it
        return None
    return None if found is None else pack(*found)
