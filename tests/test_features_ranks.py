"""Extraction and the analyses across ranks: shares by duration, records carried between ranks,
a failure on one rank taken by all, the analyses run once on rank 0."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hub_emo import features
from hub_emo.features import shares
from hub_emo.features.store import pack, unpack
from test_analysis_data import make_backbone_folder, make_dataset


@pytest.mark.parametrize("world", [2, 3, 4])
def test_shares_split_by_duration_not_count(world):
    """A few long clips among many short ones: equal counts would give one rank every long clip."""
    rng = np.random.default_rng(world)
    weights = np.concatenate([np.full(4 * world, 30.0), rng.uniform(1.0, 3.0, 60)])
    split = shares.split_by_duration(weights, world)
    assert sorted(i for share in split for i in share) == list(range(len(weights)))
    assert all(share == sorted(share) for share in split)
    loads = [weights[share].sum() for share in split]
    assert max(loads) - min(loads) <= weights.max()  # longest-first greedy: within one item
    by_count = [weights[list(part)].sum() for part in np.array_split(np.arange(len(weights)), world)]
    assert max(loads) < max(by_count)


def test_durations_come_from_the_headers(tmp_path):
    import datasets
    import soundfile as sf

    from hub_emo import schema

    columns = {k: [] for k in schema.dataset_features()}
    for k, seconds in enumerate((0.25, 1.5, 0.75)):
        path = tmp_path / f"{k}.wav"
        sf.write(path, np.zeros(int(seconds * 8000), dtype=np.float32), 8000)
        columns["id"].append(str(k))
        columns["audio"].append(str(path))
        columns["label"].append(0)
        columns["domain"].append(0)
        for key in ("corpus", "speaker", "native_label", "fold"):
            columns[key].append("x")
        columns["valence"].append(0.0)
        columns["arousal"].append(0.0)
    dataset = datasets.Dataset.from_dict(columns, features=schema.dataset_features())
    np.testing.assert_allclose(shares.durations(dataset, [2, 0, 1]), [0.75, 0.25, 1.5])


def test_a_record_travels_as_safetensors_bytes():
    record = features.Record(np.ones((3, 4), np.float32), 800, 5, np.arange(2 * 5 * 4, dtype=np.float16).reshape(2, 5, 4))
    name, back = unpack(pack("center-48000", record))
    assert name == "center-48000" and (back.samples, back.frame_count) == (800, 5)
    for key in ("mean", "frames"):
        np.testing.assert_array_equal(getattr(back, key), getattr(record, key))
    assert unpack(pack("full", features.Record(record.mean, 800, 5)))[1].frames is None


def test_probing_writes_frames_for_fad_but_never_reads_them(tmp_path, monkeypatch):
    """Frame files overwritten with garbage after a first run: a second probing run still works."""
    from hub_emo.analysis import run_probing

    monkeypatch.setenv("HUB_EMO_CACHE", str(tmp_path / "cache"))
    dataset = make_dataset(tmp_path / "wavs", per_cell=1)
    folder = make_backbone_folder(tmp_path / "model")
    options = dict(epochs=2, frames_per_clip=4, progress=False, cross_domain=False)
    first = run_probing({"tiny": folder}, dataset, "ravdess6", tmp_path / "one", **options)
    frame_files = list((tmp_path / "cache").rglob("*.frames-*.safetensors"))
    assert len(frame_files) == len(dataset)  # written for a later FAD run
    for path in frame_files:
        path.write_bytes(b"not a safetensors file")
    second = run_probing({"tiny": folder}, dataset, "ravdess6", tmp_path / "two", **options)
    assert not second.failed and second.rows == first.rows


# Run under torchrun by the tests below; each rank reports in a file of its own.
RANKS = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    rank = int(os.environ["RANK"])
    data, folders, out = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    os.environ["HUB_EMO_CACHE"] = str(out / f"cache-{rank}")  # nothing shared between the ranks' caches
    import datasets, torch, torch.distributed as dist
    from transformers import Wav2Vec2Model
    from hub_emo.analysis import run_probing
    from hub_emo.cli import main

    def out_of_memory(module, args):  # rank 1 fails model "oom" on its first clip, as CUDA would
        if isinstance(module, Wav2Vec2Model) and Path(module.config._name_or_path).name == "oom" and rank == 1:
            raise RuntimeError("CUDA out of memory (on purpose)")

    torch.nn.modules.module.register_module_forward_pre_hook(out_of_memory)
    backbones = {"unloadable": folders["good"] if rank == 0 else str(out / "absent"),
                 "oom": folders["oom"], "good": folders["good"]}
    result = run_probing(backbones, datasets.load_from_disk(data), "ravdess6", out / "probe", epochs=2,
                         frames_per_clip=4, progress=False)
    fad = main(["fad", "-m", f"good={folders['good']}", "--dataset", data, "--label-set", "ravdess6",
                "--layers", "-1", "--bootstrap", "0", "--out", str(out / "fad"), "--quiet"])
    (out / f"rank{rank}.json").write_text(json.dumps({
        "result": None if result is None else {"failed": result.failed,
                                               "models": sorted({r["model"] for r in result.rows})},
        "fad": fad, "group_left": dist.is_initialized(),
        "records": {store.name: len([p for p in store.rglob("*.safetensors") if ".frames-" not in p.name])
                    for store in (out / f"cache-{rank}" / "features").iterdir()},
    }))
""")


@pytest.mark.slow  # two torchrun processes, three models
@pytest.mark.timeout(300)
def test_a_model_failing_on_one_rank_is_skipped_by_both_and_the_next_one_succeeds(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_EMO_CACHE", str(tmp_path / "cache-test"))
    dataset = make_dataset(tmp_path / "wavs", per_cell=1)
    dataset.save_to_disk(str(tmp_path / "data"))
    folders = {"good": str(make_backbone_folder(tmp_path / "good", seed=1)),
               "oom": str(make_backbone_folder(tmp_path / "oom", seed=2))}
    script = tmp_path / "ranks.py"
    script.write_text(RANKS)
    torchrun = Path(sys.executable).with_name("torchrun")
    done = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script),
                           str(tmp_path / "data"), json.dumps(folders), str(tmp_path)],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    main, other = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert other["result"] is None and other["fad"] == 0  # rank 1 extracted, then left the analyses to rank 0
    failed = main["result"]["failed"]
    assert sorted(failed) == ["oom", "unloadable"] and main["result"]["models"] == ["good"]
    assert "rank 1" in failed["unloadable"] and "CUDA out of memory" in failed["oom"]
    assert main["fad"] == 0 and (tmp_path / "fad" / "report.md").is_file()
    assert (tmp_path / "probe" / "report.md").is_file()
    assert not main["group_left"] and not other["group_left"]  # the group extraction started is gone
    # Rank 0's cache holds every record of the good model; rank 1 keeps only what it extracted
    # itself, since the analyses read on rank 0 alone.
    good = features.Store(features.load_backbone(folders["good"]).identity).directory.name
    assert main["records"][good] == len(dataset)
    assert 0 < other["records"][good] < len(dataset)


# Run under torchrun by the two tests below: the library called from Python, not the CLI.
LIBRARY = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    rank = int(os.environ["RANK"])
    data, folders, out = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    os.environ["HUB_EMO_CACHE"] = str(out / f"cache-{rank}")
    from datetime import timedelta
    import datasets, numpy as np, torch.distributed as dist
    from accelerate import PartialState
    from hub_emo import distributed, features
    from hub_emo.analysis import run_fad

    # The launcher's store: every process group started in the run rendezvouses there (new keys).
    launcher = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False)
    keys = [launcher.num_keys()]
    dataset = datasets.load_from_disk(data)
    unloadable = folders["good"] if rank == 0 else str(out / "absent")  # loads on rank 0 only
    try:
        features.extract_features(unloadable, dataset, name="unloadable", frames_per_clip=0, progress=False)
        direct = None
    except Exception as error:
        direct = f"{type(error).__name__}: {error}"
    keys.append(launcher.num_keys())
    failed = {}
    each = {name: list(fs.pooled.shape) for name, fs in features.extract_each(
        {"unloadable": unloadable, "good": folders["good"]}, dataset, failed, frames_per_clip=0, progress=False)}
    again = features.extract_features(folders["good"], dataset, frames_per_clip=0, cache=False, progress=False)
    keys.append(launcher.num_keys())  # both ranks are past the call's last step (rank 1 may run ahead later)
    distributed.close()  # as at exit; the next step starts a group of its own
    fad = run_fad({"good": folders["good"]}, dataset, "ravdess6", [-1], out / f"fad-{rank}", frames_per_clip=4,
                  n_boot=0, progress=False)
    group_left = dist.is_initialized()  # what a Trainer's PartialState would find and adopt
    PartialState(cpu=True, timeout=timedelta(seconds=120))  # as hub_emo.training does before its Trainer
    under_trainer = features.extract_features(folders["good"], dataset, frames_per_clip=0, cache=False,
                                              progress=False)
    (out / f"rank{rank}.json").write_text(json.dumps({
        "direct": direct, "failed": failed, "each": each, "group_left": group_left, "keys": keys,
        "fad": None if fad is None else {"failed": fad.failed, "rows": len(fad.rows)},
        "trainer_group": [dist.is_initialized(), dist.get_backend(), dist.get_world_size()],
        "same_features": bool(np.allclose(under_trainer.pooled, again.pooled, atol=1e-6)),
        "extracted": [again.extracted, under_trainer.extracted],
    }))
""")


@pytest.fixture(scope="module")
def library_ranks(tmp_path_factory):
    """Both ranks' reports from one torchrun of `LIBRARY` (two processes, one tiny model)."""
    tmp_path = tmp_path_factory.mktemp("library")
    dataset = make_dataset(tmp_path / "wavs", per_cell=1)
    dataset.save_to_disk(str(tmp_path / "data"))
    folders = {"good": str(make_backbone_folder(tmp_path / "good", seed=1))}
    script = tmp_path / "library.py"
    script.write_text(LIBRARY)
    torchrun = Path(sys.executable).with_name("torchrun")
    # A rank left waiting would fail the step after 60 s instead of the default half hour.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HUB_EMO_DDP_TIMEOUT": "60"}
    done = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script),
                           str(tmp_path / "data"), json.dumps(folders), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path, len(dataset), [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.slow  # two torchrun processes
@pytest.mark.timeout(300)
def test_extract_features_with_a_model_failing_to_load_on_one_rank_fails_on_both(library_ranks):
    _, clips, (main, other) = library_ranks
    assert other["direct"].startswith("ValueError: cannot load backbone") and "absent" in other["direct"]
    assert main["direct"].startswith("RuntimeError") and "rank 1" in main["direct"]
    # extract_each skips the model on both ranks together, and the next model extracts on both.
    for rank in (main, other):
        assert list(rank["failed"]) == ["unloadable"] and list(rank["each"]) == ["good"]
        assert rank["each"]["good"][1] == clips
        assert not rank["group_left"]


@pytest.mark.slow  # two torchrun processes
@pytest.mark.timeout(300)
def test_one_group_serves_every_extraction_and_none_is_left_for_a_trainer(library_ranks):
    """Every call after the first (extract_each's two models, a second extract_features) reuses
    the group the first call started: no new rendezvous keys in the launcher's store."""
    _, clips, (main, other) = library_ranks
    for rank in (main, other):
        before, after_first, after_all = rank["keys"]
        assert before < after_first == after_all
        # torch's default group stays free: the Trainer's PartialState starts its own (gloo on a
        # CPU, with its own timeout), and extraction then runs over it.
        assert not rank["group_left"] and rank["trainer_group"] == [True, "gloo", 2]
        assert rank["same_features"] and sum(rank["extracted"]) > 0
    assert main["extracted"][0] + other["extracted"][0] == clips


@pytest.mark.slow  # two torchrun processes
@pytest.mark.timeout(300)
def test_run_fad_from_python_scores_and_reports_on_rank_zero_only(library_ranks):
    tmp_path, _, (main, other) = library_ranks
    assert main["fad"] == {"failed": {}, "rows": main["fad"]["rows"]} and main["fad"]["rows"] > 0
    assert (tmp_path / "fad-0" / "report.md").is_file()
    assert other["fad"] is None and not (tmp_path / "fad-1").exists()  # rank 1 wrote nothing
