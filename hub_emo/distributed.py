"""Processes under torchrun / accelerate launch: what every rank agrees on, safe across hosts.

hub_emo's collective steps keep three rules, so a run works when the ranks sit on hosts
whose disks differ (node-local caches) or lag (NFS attribute caching):

* rank 0 decides (what is missing, what is done) and broadcasts the decision; no rank acts
  on its own view of a folder another host writes;
* a failure on one rank is every rank's (`Ranks.agree` raises on all of them), so each rank
  leaves the step together and the next collective step pairs up with the same step;
* where no process group exists, hub_emo starts one of its own (gloo) on first need and
  every later step of the process uses it (one rendezvous and one set of connections per
  process, not one per extraction); it is closed at exit (or by `close`). It is not
  torch's default group (``torch.distributed.is_initialized()`` stays False), so a
  `transformers.Trainer` later in the process sets up its own, with its own ``ddp_timeout``
  and backend, and from then on hub_emo's steps use the Trainer's group.

hub_emo's own group waits ``HUB_EMO_DDP_TIMEOUT`` seconds at a step (default 1800, the
Trainer's ``ddp_timeout`` default; read when the group starts); `hub_emo.training` starts
its group with ``ddp_timeout``.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import itertools
import os
import pickle
import re
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterator

TIMEOUT_VARIABLE = "HUB_EMO_DDP_TIMEOUT"
DEFAULT_TIMEOUT = 1800

_ALONE = contextvars.ContextVar("hub_emo_alone", default=False)
#: Groups this process started: every rank starts them in the same order, so the count names
#: the same group on every rank.
_STARTS = itertools.count()
#: hub_emo's own group (a gloo backend outside torch's group registry), once started.
_OWN: list = []


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

    Values travel as Python objects (lists of names, bytes of safetensors files), pickled:
    over hub_emo's own gloo group (``group``), or with ``group=None`` over torch's default
    group (a Trainer's: gloo on CPU; NCCL through the device accelerate set for the rank).
    """

    world: int = 1
    rank: int = 0
    group: Any = field(default=None, repr=False, compare=False)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world == 1:
            return
        import torch.distributed as dist

        if self.group is not None:
            self.group.barrier().wait()
        else:
            dist.barrier()

    def broadcast(self, value: Any = None) -> Any:
        """Rank 0's ``value``, on every rank."""
        if self.world == 1:
            return value
        import torch.distributed as dist

        if self.group is not None:
            return _own_broadcast(self.group, value if self.main else None)
        box = [value if self.main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def all_gather(self, value: Any) -> list:
        """Every rank's ``value``, in rank order, on every rank."""
        if self.world == 1:
            return [value]
        import torch.distributed as dist

        if self.group is not None:
            return _own_all_gather(self.group, value)
        out: list = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def send(self, value: Any, to: int) -> None:
        import torch.distributed as dist

        if self.group is not None:
            data = _packed(value)
            for tensor in (_length(data.numel()), data):
                self.group.send([tensor], to, 0).wait()
            return
        dist.send_object_list([value], dst=to)

    def receive(self, source: int) -> Any:
        import torch
        import torch.distributed as dist

        if self.group is not None:
            length = _length(0)
            self.group.recv([length], source, 0).wait()
            data = torch.empty(int(length), dtype=torch.uint8)
            self.group.recv([data], source, 0).wait()
            return _unpacked(data)
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
    """The ranks of the running group: torch's default group when one exists (a Trainer's),
    else, when a launcher set WORLD_SIZE > 1, hub_emo's own (started on first need, kept for
    the process). Inside `alone`, this process alone."""
    import torch.distributed as dist

    if _ALONE.get() or not dist.is_available():
        yield Ranks()
    elif dist.is_initialized():
        yield Ranks(dist.get_world_size(), dist.get_rank())
    elif launched_world_size() <= 1:
        yield Ranks()
    else:
        if not _OWN:
            _OWN.append(_start_group())
        group = _OWN[0]
        yield Ranks(group.size(), group.rank(), group)


def close() -> None:
    """Close hub_emo's own group (registered to run at exit; call it to free the connections
    earlier). Every rank must call it at the same step; a later step starts a new group."""
    while _OWN:
        _OWN.pop().shutdown()


atexit.register(close)


def _start_group():
    """A gloo group over the launcher's store, outside torch's group registry, under keys of its
    own: the store outlives a closed group, and a later group under the same keys would read
    the old group's addresses and connect to closed sockets."""
    import torch.distributed as dist

    store, rank, world = next(dist.rendezvous("env://", rank=int(os.environ.get("RANK", "0")),
                                              world_size=launched_world_size(), timeout=timeout()))
    store.set_timeout(timeout())
    return dist.ProcessGroupGloo(dist.PrefixStore(f"hub_emo-{next(_STARTS)}", store), rank, world, timeout())


def _length(value: int):
    import torch

    return torch.tensor([value], dtype=torch.int64)


def _packed(value: Any):
    import torch

    return torch.frombuffer(bytearray(pickle.dumps(value)), dtype=torch.uint8)


def _unpacked(data) -> Any:
    return pickle.loads(data.numpy().tobytes())


def _own_broadcast(group, value: Any) -> Any:
    """Rank 0's ``value`` over hub_emo's own group: its length, then its pickled bytes."""
    import torch
    import torch.distributed as dist

    options = dist.BroadcastOptions()
    options.rootRank = 0
    data = _packed(value) if group.rank() == 0 else None
    length = _length(0 if data is None else data.numel())
    group.broadcast([length], options).wait()
    if data is None:
        data = torch.empty(int(length), dtype=torch.uint8)
    group.broadcast([data], options).wait()
    return _unpacked(data)


def _own_all_gather(group, value: Any) -> list:
    """Every rank's ``value`` over hub_emo's own group: lengths, then bytes padded to the longest."""
    import torch

    data = _packed(value)
    lengths = [[_length(0) for _ in range(group.size())]]
    group.allgather(lengths, [_length(data.numel())]).wait()
    sizes = [int(n) for n in lengths[0]]
    padded = torch.zeros(max(sizes), dtype=torch.uint8)
    padded[: data.numel()] = data
    out = [[torch.empty(max(sizes), dtype=torch.uint8) for _ in sizes]]
    group.allgather(out, [padded]).wait()
    return [_unpacked(part[:size]) for part, size in zip(out[0], sizes)]


@contextlib.contextmanager
def alone() -> Iterator[None]:
    """Work in this block involves this process only (rank 0's analysis after the shared
    extraction): `ranks` gives a world of one, so no step waits for the other ranks."""
    token = _ALONE.set(True)
    try:
        yield
    finally:
        _ALONE.reset(token)

