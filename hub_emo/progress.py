"""Progress bars with an ETA on the console for work that takes more than a few seconds.

Bars are drawn on the terminal the process started with (``sys.__stderr__``), not on
``sys.stderr``: the demo sends each step's output to ``logs/<step>.log``, and a bar
redrawn there would fill the log with carriage returns while the console stayed silent.
They are off when that stream is not a TTY (pipes, CI, files) or with
``HUB_EMO_PROGRESS=0``.

    bar(iterable=None, *, total=None, desc=None, unit="it") -> tqdm
    trainer_callback(desc) -> transformers.TrainerCallback  (a bar over the optimizer steps)
"""

from __future__ import annotations

import os
import sys

SWITCH = "HUB_EMO_PROGRESS"


def console():
    """The process's original stderr (the terminal, when there is one)."""
    return sys.__stderr__


def enabled() -> bool:
    if os.environ.get(SWITCH, "").strip().lower() in ("0", "off", "false", "no"):
        return False
    stream = console()
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def bar(iterable=None, *, total=None, desc: str | None = None, unit: str = "it", disable: bool = False, **options):
    """A tqdm bar on the console (elapsed, rate, ETA); a silent pass-through when disabled."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, file=console(), leave=False,
                dynamic_ncols=True, disable=disable or not enabled(), **options)


def trainer_callback(desc: str = "training"):
    """A `transformers.TrainerCallback` that shows the optimizer steps of a `Trainer` run with
    an ETA and the last logged loss (the Trainer's own bar writes to ``sys.stderr``)."""
    from transformers import TrainerCallback

    class ConsoleProgress(TrainerCallback):
        def __init__(self):
            self.bar = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = bar(total=state.max_steps, desc=desc, unit="step", initial=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.bar is not None and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return ConsoleProgress()
