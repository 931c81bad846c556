"""Processes under torchrun / accelerate launch: what every rank agrees on, safe across hosts.

hub_emo's collective steps keep three rules, so a run works when the ranks sit on hosts
whose disks differ (node-local caches) or lag (NFS attribute caching):

* rank 0 decides (what is missing, what is done) and broadcasts the decision; no rank acts
  on its own view of a folder another host writes;
* a failure on one rank is every rank's (`Ranks.agree` raises on all of them), so each rank
  leaves the step together and the next collective step pairs up with the same step;
* a process group hub_emo starts (gloo, for feature extraction or the analyses) is
  destroyed when the work that needed it ends, so a `transformers.Trainer` later in the
  process sets up its own, with its own ``ddp_timeout``.

A group hub_emo starts waits ``HUB_EMO_DDP_TIMEOUT`` seconds at a step (default 1800, the
Trainer's ``ddp_timeout`` default); `hub_emo.training` starts its group with ``ddp_timeout``.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import os
import re
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Iterator

TIMEOUT_VARIABLE = "HUB_EMO_DDP_TIMEOUT"
DEFAULT_TIMEOUT = 1800

_ALONE = contextvars.ContextVar("hub_emo_alone", default=False)
#: Groups this process started: every rank starts them in the same order, so the count names
#: the same group on every rank.
_STARTS = itertools.count()


def timeout() -> timedelta:
    """How long a group hub_emo starts waits at a collective step."""
    value = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    try:
        seconds = int(value) if value else DEFAULT_TIMEOUT
    except ValueError:
        raise ValueError(f"{TIMEOUT_VARIABLE}={value!r}: give a whole number of seconds") from None
    if seconds <= 0:
        raise ValueError(f"{TIMEOUT_VARIABLE}={value!r}: give a positive number of seconds")
    return timedelta(seconds=seconds)


def host() -> str:
    """This machine's name, reduced to characters safe in a file name."""
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


def launched_world_size() -> int:
    """Processes torchrun / accelerate launch started (1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


@dataclass
class Ranks:
    """This process's place among the ranks, and the collective steps hub_emo uses.

    Values travel as Python objects (lists of names, bytes of safetensors files) over the
    default group: gloo on CPU; with NCCL through the device accelerate set for the rank.
    """

    world: int = 1
    rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def broadcast(self, value: Any = None) -> Any:
        """Rank 0's ``value``, on every rank."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        box = [value if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, value: Any) -> list:
        """Every rank's ``value``, in rank order, on every rank."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        out: list = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def send(self, value: Any, to: int) -> None:
        import torch.distributed as dist

        dist.send_object_list([value], dst=to)

    def receive(self, source: int) -> Any:
        import torch.distributed as dist

        box = [None]
        dist.recv_object_list(box, src=source)
        return box[0]

    def decide(self, decision: Callable[[], Any], what: str) -> Any:
        """``decision()`` taken on rank 0, its answer on every rank; raises on every rank if it fails."""
        answer, error = None, None
        if self.main:
            try:
                answer = decision()
            except Exception as failure:  # noqa: BLE001 - every rank must leave the step together
                error = failure
        self.agree(error, what)
        return self.broadcast(answer)

    def agree(self, error: BaseException | None, what: str) -> None:
        """Raise on every rank when any rank failed ``what``: the failing rank re-raises its
        own error, the others a RuntimeError naming the rank, its host and the message."""
        if self.world == 1:
            if error is not None:
                raise error
            return
        note = None if error is None else f"{type(error).__name__}: {error}"
        notes = self.all_gather(None if note is None else (host(), note))
        if error is not None:
            raise error
        failed = [(rank, n) for rank, n in enumerate(notes) if n is not None]
        if failed:
            rank, (where, message) = failed[0]
            raise RuntimeError(f"{what} failed on rank {rank} ({where}): {message}")


@contextlib.contextmanager
def ranks() -> Iterator[Ranks]:
    """The ranks of the running group; one started (gloo) when a launcher set WORLD_SIZE > 1
    and no group exists yet, and destroyed on leaving. Inside `alone`, this process alone."""
    import torch.distributed as dist

    if _ALONE.get() or not dist.is_available():
        yield Ranks()
        return
    started = False
    if not dist.is_initialized():
        if launched_world_size() <= 1:
            yield Ranks()
            return
        _start_group()
        started = True
    try:
        yield Ranks(dist.get_world_size(), dist.get_rank())
    finally:
        if started:
            dist.destroy_process_group()


def _start_group() -> None:
    """A gloo group over the launcher's store, under keys of its own: the store outlives a
    destroyed group, and a later group under the same keys would read the old group's
    addresses (torch resets its group names on destruction) and connect to closed sockets."""
    import torch.distributed as dist

    store, rank, world = next(dist.rendezvous("env://", rank=int(os.environ.get("RANK", "0")),
                                              world_size=launched_world_size(), timeout=timeout()))
    store.set_timeout(timeout())
    store = dist.PrefixStore(f"hub_emo-{next(_STARTS)}", store)
    dist.init_process_group(backend="gloo", store=store, rank=rank, world_size=world, timeout=timeout())


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Work in this block involves this process only (rank 0's analysis after the shared
    extraction): `ranks` gives a world of one, so no step waits for the other ranks."""
    token = _ALONE.set(True)
    try:
        yield
    finally:
        _ALONE.reset(token)

