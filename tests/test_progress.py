"""Progress bars reach the terminal (with an ETA) but not the step's log, and stay quiet off a TTY."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

STEP = """
import sys
from pathlib import Path
import numpy as np, soundfile as sf
from hub_emo.demo.pretrain import pretrain_backbone
from hub_emo.demo.run import Progress

out = Path(sys.argv[1])
wave = np.random.default_rng(0).standard_normal(16000).astype("float32") * 0.1
sf.write(out / "clip.wav", wave, 16000)

def step():
    print("detail for the log")
    pretrain_backbone([out / "clip.wav"], out / "backbone", "speech", steps=3, batch_size=1, crop_seconds=0.5)

Progress(["pretrain"], out / "logs").run("pretrain", step)
"""


def _run(tmp_path, stderr_on_a_terminal: bool) -> tuple[str, str]:
    # TQDM_MININTERVAL=0: redraw on every step, so even fast steps show a bar with an ETA
    env = {**{k: v for k, v in os.environ.items() if k != "HUB_EMO_PROGRESS"}, "TQDM_MININTERVAL": "0"}
    if not stderr_on_a_terminal:
        done = subprocess.run([sys.executable, "-c", STEP, str(tmp_path)], capture_output=True, text=True,
                              env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout + done.stderr, (tmp_path / "logs" / "pretrain.log").read_text()
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a new pty is 0 wide
    process = subprocess.Popen([sys.executable, "-c", STEP, str(tmp_path)], stdout=subprocess.PIPE,
                               stderr=follower, env=env)
    os.close(follower)
    console = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the pty is closed once the child has exited
            break
        if not chunk:
            break
        console += chunk
    stdout, _ = process.communicate(timeout=300)
    os.close(leader)
    assert process.returncode == 0, console.decode(errors="replace")[-3000:]
    return stdout.decode() + console.decode(errors="replace"), (tmp_path / "logs" / "pretrain.log").read_text()


@pytest.mark.slow
def test_bar_on_a_terminal_not_in_the_log(tmp_path):
    console, log = _run(tmp_path, stderr_on_a_terminal=True)
    assert "[1/1] pretrain ..." in console and "[1/1] pretrain done in" in console
    assert re.search(r"pretrain speech backbone: .* [123]/3 \[\d\d:\d\d<\d\d:\d\d", console), console  # ETA
    assert "detail for the log" in log and "detail for the log" not in console
    assert "pretrain speech backbone" not in log


@pytest.mark.slow
def test_quiet_when_not_a_terminal(tmp_path):
    console, log = _run(tmp_path, stderr_on_a_terminal=False)
    assert "[1/1] pretrain done in" in console
    assert "pretrain speech backbone" not in console + log
