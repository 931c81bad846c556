"""How hub_emo's CPU work shares a machine: threads that sleep instead of spinning.

torch's CPU kernels (and its MKL) run on OpenMP (libgomp), one thread per core. With
``OMP_WAIT_POLICY`` unset, libgomp's threads spin for up to 300 000 iterations at every
barrier before they sleep. When another process holds a core, a spinning thread burns
the time slice that the thread the barrier waits for needs, so workloads made of many
small ops (tiny models, probes) slow far more than the core they lost: 30 pretraining
steps of the demo's tiny backbone beside one busy process took 242 s spinning and 30 s
with ``OMP_WAIT_POLICY=PASSIVE`` (2 cores, load 12). numpy's and scipy's OpenBLAS has its
own pthreads pool that behaves alike: 150 rounds of a 64-dim Gram matrix and eigh (FAD's
statistics at the demo's size) took 37 s with 2 threads and 1.6 s with 1 under that load.

`configure` sets ``OMP_WAIT_POLICY=PASSIVE`` and ``KMP_BLOCKTIME=0`` (Intel's runtime) where
they are unset: threads then sleep at barriers, and no thread count changes. On a small host
(`SMALL_HOST` usable cores or fewer), where one busy neighbour takes half the machine, it
also sets ``OPENBLAS_NUM_THREADS=1``; a larger host keeps OpenBLAS's own thread count, so
the policy never caps a many-core node. Each runtime reads these once, when it is loaded, so
`hub-emo` calls `configure` first thing; importing hub_emo never does (a library user who
wants the policy calls it before importing torch or numpy). The user's settings win: any
value they set, ``HUB_EMO_THREAD_POLICY=off``, and torch's thread count, which hub_emo
leaves to ``OMP_NUM_THREADS`` / ``torch.set_num_threads``.

`task_parallel` is for work made of many small ops that splits into independent tasks
(the probes of 13 or 25 layers): the tasks run in parallel on one intra-op thread each
instead of one task on all of them. Intra-op threads meet at a barrier after every op,
so when another process holds a core each op waits for the thread it descheduled:
probe fits on 2 cores took about 4x as long beside one busy process on 2 intra-op
threads, 1.3-1.7x as parallel tasks, at the same quiet speed within 6 %
(`benchmarks/bench_probe_threads.py`). torch's thread count is process-wide: other
threads' torch work also runs on one intra-op thread while a block is open.
"""

from __future__ import annotations

import contextlib
import os
import sys

#: variable -> (value, the module whose import loads the runtime that reads it).
DEFAULTS: dict[str, tuple[str, str]] = {
    "OMP_WAIT_POLICY": ("PASSIVE", "torch"),
    "KMP_BLOCKTIME": ("0", "torch"),
    "OPENBLAS_NUM_THREADS": ("1", "numpy"),
}
#: Set only on hosts with at most `SMALL_HOST` usable cores: they cap a thread count.
SMALL_HOST_ONLY = ("OPENBLAS_NUM_THREADS",)
SMALL_HOST = 4

#: ``off`` (or 0 / false / no) leaves the runtimes' own defaults.
SWITCH = "HUB_EMO_THREAD_POLICY"


def disabled() -> bool:
    return os.environ.get(SWITCH, "").strip().lower() in ("off", "0", "false", "no")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def configure(cores: int | None = None) -> dict[str, str]:
    """Set the defaults the environment lacks while their runtime is not loaded yet;
    returns what was set. ``cores``: the usable cores (default: `usable_cores`)."""
    if disabled():
        return {}
    small = (usable_cores() if cores is None else cores) <= SMALL_HOST
    applied = {name: value for name, (value, loader) in DEFAULTS.items()
               if name not in os.environ and loader not in sys.modules and (small or name not in SMALL_HOST_ONLY)}
    os.environ.update(applied)
    return applied


@contextlib.contextmanager
def task_parallel():
    """Yield how many independent tasks to run at once, each on one torch intra-op thread.

    The count is torch's intra-op thread count (the user's choice, else torch's default), so
    the user's setting stays the total. With the policy off: one task on torch's own threads.
    """
    import torch

    budget = torch.get_num_threads()
    if disabled() or budget == 1:
        yield 1
        return
    torch.set_num_threads(1)
    try:
        yield budget
    finally:
        torch.set_num_threads(budget)
