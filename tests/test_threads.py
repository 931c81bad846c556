"""The thread policy: set by the CLI (or `threads.configure`) before torch, never by an import,
never over the user's settings, and never a cap on a many-core host."""

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
from hub_emo import threads
threads.configure(cores=2)
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


def _fresh(code: str, **env) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in (*threads.DEFAULTS, threads.SWITCH)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env},
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_an_import_sets_nothing_and_the_cli_sets_the_policy():
    imported = _fresh("import os; before = dict(os.environ); import hub_emo, hub_emo.inference, hub_emo.training; "
                      "print(dict(os.environ) == before)")
    assert imported == "True"
    cli = _fresh("import os; from hub_emo.cli import main; main(['--version']); print(os.environ.get('OMP_WAIT_POLICY'))")
    assert cli == "PASSIVE"


def test_a_many_core_host_keeps_its_blas_threads():
    code = "from hub_emo import threads; print(sorted(threads.configure(cores={})))"
    assert _fresh(code.format(64)) == str(["KMP_BLOCKTIME", "OMP_WAIT_POLICY"])
    assert _fresh(code.format(2)) == str(["KMP_BLOCKTIME", "OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS"])


@pytest.mark.slow
def test_configure_sets_the_policy_and_the_user_wins():
    assert _run(OMP_NUM_THREADS="1") == {"policy": "PASSIVE", "blocktime": "0", "threads": 1, "numpy_blas": [1]}
    assert _run(OMP_WAIT_POLICY="ACTIVE", OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="1") == {
        "policy": "ACTIVE", "blocktime": "0", "threads": 1, "numpy_blas": [2]}
    assert _run("import torch; torch.set_num_threads(1)")["threads"] == 1
    assert _run(**{threads.SWITCH: "off", "OMP_NUM_THREADS": "1"})["policy"] is None
    # torch first: OpenMP has read its environment already, so hub_emo leaves it alone
    assert _run("import torch", OMP_NUM_THREADS="1")["policy"] is None




@pytest.fixture
def two_threads(monkeypatch):
    """torch on 2 intra-op threads, the policy on; put back after."""
    import torch

    monkeypatch.delenv(threads.SWITCH, raising=False)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_task_parallel_gives_the_budget_as_tasks_of_one_thread(two_threads):
    import torch

    with threads.task_parallel() as workers:
        assert (workers, torch.get_num_threads()) == (2, 1)
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), threads.task_parallel():
        raise RuntimeError("a failing fit")
    assert torch.get_num_threads() == 2
    torch.set_num_threads(1)  # the user's one thread: one task
    with threads.task_parallel() as workers:
        assert (workers, torch.get_num_threads()) == (1, 1)


def test_task_parallel_policy_off_leaves_torch_alone(two_threads, monkeypatch):
    import torch

    monkeypatch.setenv(threads.SWITCH, "off")
    with threads.task_parallel() as workers:
        assert (workers, torch.get_num_threads()) == (1, 2)


def test_probe_scores_are_the_same_on_any_thread_count_and_leave_it(monkeypatch):
    """The layers' probes train as parallel groups, one per intra-op thread torch was given:
    the scores do not depend on that count, and the count is put back afterwards."""
    import numpy as np
    import torch

    from hub_emo.analysis import probing

    monkeypatch.delenv(threads.SWITCH, raising=False)
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1, 2], 16)
    folds = np.repeat(["a", "b", "c"], 16)
    dim = probing.GROUP_MIN_DIM  # wide enough for the layers to be split into groups
    features = rng.normal(size=(5, 48, dim)).astype(np.float32) + labels[None, :, None]
    before = torch.get_num_threads()
    results = []
    try:
        for count in (1, 2, 3, 5):
            torch.set_num_threads(count)
            results.append(probing.probe_scores(features, labels, ["speech"] * 48, folds, num_classes=3, epochs=3))
            assert torch.get_num_threads() == count
    finally:
        torch.set_num_threads(before)
    assert results[0] and all(rows == results[0] for rows in results[1:])
