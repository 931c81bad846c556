"""How hub_emo's CPU work shares a machine: OpenMP threads that sleep instead of spinning.

torch's CPU kernels (and its MKL) run on OpenMP (libgomp), one thread per core. With
``OMP_WAIT_POLICY`` unset, libgomp's threads spin for up to 300 000 iterations at every
barrier before they sleep. When another process holds a core, a spinning thread burns
the time slice that the thread the barrier waits for needs, so workloads made of many
small ops (tiny models, probes) slow far more than the core they lost: 30 pretraining
steps of the demo's tiny backbone beside one busy process took 242 s spinning and 30 s
with ``OMP_WAIT_POLICY=PASSIVE`` (2 cores, load 12).

`configure` sets ``OMP_WAIT_POLICY=PASSIVE`` (and ``KMP_BLOCKTIME=0`` for Intel's
runtime) where they are unset. OpenMP reads them once, when it is loaded, so this runs
when hub_emo is imported (the CLI, and a library user who imports hub_emo before torch);
once torch is loaded it changes nothing. The user's settings win: any value they set for
these variables, ``HUB_EMO_THREAD_POLICY=off``, and the thread count, which hub_emo
leaves to ``OMP_NUM_THREADS`` / ``torch.set_num_threads``.
"""

from __future__ import annotations

import os
import sys

#: Applied only where the environment does not set them.
DEFAULTS: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}

#: ``off`` (or 0 / false / no) leaves the OpenMP runtime's own defaults.
SWITCH = "HUB_EMO_THREAD_POLICY"


def disabled() -> bool:
    return os.environ.get(SWITCH, "").strip().lower() in ("off", "0", "false", "no")


def runtime_loaded() -> bool:
    """Whether torch, and with it libgomp, is loaded: then it is too late to set the policy."""
    return "torch" in sys.modules


def configure() -> dict[str, str]:
    """Set the defaults the environment lacks, before torch loads; returns what was set."""
    if disabled() or runtime_loaded():
        return {}
    applied = {name: value for name, value in DEFAULTS.items() if name not in os.environ}
    os.environ.update(applied)
    return applied
