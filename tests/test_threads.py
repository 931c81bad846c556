"""The thread policy: set by importing hub_emo before torch, and never over the user's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hub_emo import threads

PROBE = """
import json, os, sys
{before}
import hub_emo
import torch
import numpy
from threadpoolctl import threadpool_info
blas = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
print(json.dumps({{"policy": os.environ.get("OMP_WAIT_POLICY"), "blocktime": os.environ.get("KMP_BLOCKTIME"),
                  "threads": torch.get_num_threads(), "numpy_blas": blas}}))
"""


def _run(before: str = "", **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in (*threads.DEFAULTS, threads.SWITCH, "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], capture_output=True, text=True,
                          env={**clean, **env}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_import_sets_the_policy_and_the_user_wins():
    assert _run(OMP_NUM_THREADS="1") == {"policy": "PASSIVE", "blocktime": "0", "threads": 1, "numpy_blas": [1]}
    assert _run(OMP_WAIT_POLICY="ACTIVE", OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="1") == {
        "policy": "ACTIVE", "blocktime": "0", "threads": 1, "numpy_blas": [2]}
    assert _run("import torch; torch.set_num_threads(1)")["threads"] == 1
    assert _run(**{threads.SWITCH: "off", "OMP_NUM_THREADS": "1"})["policy"] is None
    # torch first: OpenMP has read its environment already, so hub_emo leaves it alone
    assert _run("import torch", OMP_NUM_THREADS="1")["policy"] is None

