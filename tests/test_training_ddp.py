"""The same `hub-emo train` command under torchrun (2 processes, gloo on CPU) agrees with 1 process,
with a feature cache of its own per rank, as on hosts whose disks are not shared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModel, Wav2Vec2FeatureExtractor

from corpora import make_ravdess
from tiny import tiny_backbone_config


# Each rank gets its own HUB_EMO_CACHE (torchrun gives both one environment), runs the command,
# and reports the timeout its process group got in a file of its own.
PER_RANK = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    os.environ["HUB_EMO_CACHE"] = f"{sys.argv[1]}-{os.environ['RANK']}"
    import torch, torch.distributed as dist
    from hub_emo.cli import main
    code = main(sys.argv[3:])
    backend = dist.distributed_c10d._get_default_group()._get_backend(torch.device("cpu"))
    Path(sys.argv[2], f"rank{os.environ['RANK']}.json").write_text(json.dumps(
        {"code": code, "timeout": backend.options._timeout.total_seconds()}))
""")


@pytest.mark.slow  # two torchrun processes training
@pytest.mark.timeout(300)
def test_two_processes_agree_with_one(tmp_path):
    import hub_emo.data
    from hub_emo.cli import main

    make_ravdess(tmp_path / "raw", actors=(1, 2, 4, 5), emotions=(1, 3, 4, 5), seconds=0.4)
    hub_emo.data.prepare_with_report(["ravdess_speech", "ravdess_song"], tmp_path / "raw", out=tmp_path / "data")
    torch.manual_seed(0)
    # No stochastic layers: what differs between 1 and 2 processes is then only the reduction order.
    quiet = dict(mask_time_prob=0.0, hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                 feat_proj_dropout=0.0)
    AutoModel.from_config(tiny_backbone_config(**quiet)).save_pretrained(tmp_path / "bb")
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path / "bb")
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(dict(
        dataset=str(tmp_path / "data"), backbone=str(tmp_path / "bb"), label_set="4class", domain="speech",
        folds="1", strategy="weighted_sum", max_steps=6, eval_steps=3, learning_rate=0.01, head_dropout=0.0,
        warmup_ratio=0.0, report_to="none", logging_steps=1,
    )))

    # Same global batch: 1 x 4 against 2 x 2.
    assert main(["train", str(config), "--per_device_train_batch_size", "4", "--output_dir", str(tmp_path / "one")]) == 0
    # Fresh feature caches, one per rank: the two processes extract (half each) instead of reading the
    # first run's, and each rank receives the other's records over the process group.
    script = tmp_path / "per_rank.py"
    script.write_text(PER_RANK)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(tmp_path / "cache-two"), str(tmp_path), "train", str(config),
               "--per_device_train_batch_size", "2", "--output_dir", str(tmp_path / "two"), "--ddp_timeout", "1234"]
    done = subprocess.run(command, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == {"code": 0, "timeout": 1234.0}

    one = json.loads((tmp_path / "one" / "results.json").read_text())["folds"]["1"]
    two = json.loads((tmp_path / "two" / "results.json").read_text())["folds"]["1"]
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert two["steps"] == one["steps"] == 6
    assert two["test_rows"] == one["test_rows"]  # every test clip evaluated once, none duplicated
    clips = one["feature_cache"]["clips"]
    assert one["feature_cache"]["extracted"] == clips  # weighted_sum trains on cached features
    assert 0 < two["feature_cache"]["extracted"] < clips  # rank 0 extracted its share; rank 1 the rest
    for rank in (0, 1):  # every rank's own cache holds every record: its share, and the other's received
        records = list(Path(f"{tmp_path / 'cache-two'}-{rank}", "features").rglob("*.safetensors"))
        assert len(records) == clips
        assert not list(Path(f"{tmp_path / 'cache-two'}-{rank}").rglob("*.tmp*"))
    np.testing.assert_allclose(two["layer_weights"], one["layer_weights"], atol=1e-4)
    for key in ("accuracy", "balanced_accuracy", "macro_f1"):
        assert abs(two[key] - one[key]) <= 0.05, (key, one[key], two[key])


# Rank 1 looks in a folder of its own, as on a host whose disk rank 0's files never reach.
UNSHARED = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from accelerate import PartialState
    from hub_emo.training import trainer
    rank, base = int(os.environ["RANK"]), Path(sys.argv[1])
    PartialState(cpu=True)
    trainer.SHARED_WAIT = 1.0
    outcome = {}
    for name, out in (("shared", base / "out"), ("unshared", base / f"out-{rank}")):
        try:
            trainer._check_shared(out)
            outcome[name] = "ok"
        except Exception as error:
            outcome[name] = f"{type(error).__name__}: {error}"
    outcome["markers left"] = [p.name for p in base.rglob(".shared-*")]
    Path(base, f"rank{rank}.json").write_text(json.dumps(outcome))
    import torch.distributed
    torch.distributed.destroy_process_group()
""")


@pytest.mark.slow  # two torchrun processes
@pytest.mark.timeout(120)
def test_an_output_dir_one_rank_does_not_see_is_refused_on_every_rank(tmp_path):
    script = tmp_path / "unshared.py"
    script.write_text(UNSHARED)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(tmp_path)]
    done = subprocess.run(command, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True,
                          timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    main, other = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert main["shared"] == other["shared"] == "ok"
    assert other["unshared"].startswith("ValueError: output_dir") and "is not shared" in other["unshared"]
    assert main["unshared"].startswith("RuntimeError:") and "rank 1" in main["unshared"]
    assert main["markers left"] == other["markers left"] == []
