"""The analyses' view of `hub_emo.features`: cache hits, cache keys, hub_emo models, bad models, shards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hub_emo.features import extract_features, load_backbone
from test_analysis_data import make_backbone_folder, make_dataset


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    return root, make_dataset(root / "wavs", per_cell=1), make_backbone_folder(root / "model")


def _counted(backbone):
    """Clips per forward pass of the backbone."""
    calls = []
    backbone.model.register_forward_hook(lambda _module, args, _out: calls.append(args[0].shape[0]))
    return calls


def test_second_run_hits_the_cache_without_forward_passes(parts):
    _, dataset, folder = parts
    backbone = load_backbone(str(folder), name="tiny")
    calls = _counted(backbone)
    first = extract_features(backbone, dataset, frames_per_clip=8, progress=False, batch_size=4)
    assert sum(calls) == len(dataset) == first.extracted and not first.from_cache
    assert len(calls) == first.forward_passes == -(-len(dataset) // 4)  # equal-length clips share a batch
    assert first.pooled.shape == (3, len(dataset), 32) and first.layers == [0, 1, 2]
    assert first.frames[1].dtype == np.float16 and first.frames[1].shape[0] == first.frame_clip.shape[0]
    assert np.bincount(first.frame_clip).max() <= 8
    again = extract_features(backbone, dataset, frames_per_clip=8, progress=False)
    pooled_only = extract_features(backbone, dataset, frames_per_clip=0, progress=False)
    assert sum(calls) == len(dataset)
    assert again.from_cache and pooled_only.from_cache and again.forward_passes == 0
    np.testing.assert_array_equal(again.pooled, first.pooled)
    np.testing.assert_array_equal(again.frames[2], first.frames[2])
    assert str(again.cache_dir).startswith(os.environ["HUB_EMO_CACHE"])
    # the mean of the kept frames equals the pooled mean when no frame was dropped
    full = extract_features(backbone, dataset, frames_per_clip=10_000, cache=False, progress=False)
    clip0 = full.frames[2][full.frame_clip == 0].astype(np.float64).mean(0)
    np.testing.assert_allclose(clip0, full.pooled[2, 0], atol=2e-3)


def test_cache_key_follows_weights_not_layers(parts, tmp_path):
    _, dataset, folder = parts
    base = extract_features(str(folder), dataset, frames_per_clip=0, progress=False)
    other = extract_features(str(make_backbone_folder(tmp_path / "m", seed=7)), dataset,
                             frames_per_clip=0, progress=False)
    assert other.cache_dir != base.cache_dir and not other.from_cache
    last = extract_features(str(folder), dataset, layers=[-1], frames_per_clip=0, progress=False)
    assert last.layers == [2] and last.cache_dir == base.cache_dir and last.from_cache
    np.testing.assert_array_equal(last.layer(2), base.layer(2))
    with pytest.raises(ValueError, match="layer 0 was not extracted"):
        last.layer(0)


def test_bad_models_and_layers(parts):
    import torch
    from transformers import PretrainedConfig, Wav2Vec2FeatureExtractor
    from transformers.modeling_outputs import BaseModelOutput

    _, dataset, folder = parts
    with pytest.raises(ValueError, match="layer 3 does not exist; the model has hidden states 0..2"):
        extract_features(str(folder), dataset, layers=[3], progress=False)

    class NoHiddenStates(torch.nn.Module):
        """An encoder that ignores output_hidden_states."""

        def __init__(self):
            super().__init__()
            self.config = PretrainedConfig()
            self.proj = torch.nn.Linear(1, 4)

        def forward(self, input_values, **_):
            return BaseModelOutput(last_hidden_state=self.proj(input_values[..., None]))

    pair = (NoHiddenStates(), Wav2Vec2FeatureExtractor())
    with pytest.raises(ValueError, match="plain: returned 0 hidden states"):
        extract_features(pair, dataset, name="plain", progress=False)
    with pytest.raises(ValueError, match="cannot load a model config"):
        load_backbone(str(folder.parent / "missing"))


def test_hub_emo_model_gives_its_backbone(parts, tmp_path):
    import torch

    from hub_emo import EmoConfig, EmoForAudioClassification
    from tiny import tiny_backbone_config
    from transformers import Wav2Vec2FeatureExtractor

    _, dataset, _ = parts
    torch.manual_seed(0)
    model = EmoForAudioClassification(EmoConfig(backbone_config=tiny_backbone_config(), num_labels=3))
    model.train()  # extraction must still run in eval mode with no layer drop
    model.save_pretrained(tmp_path / "emo")
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True).save_pretrained(tmp_path / "emo")
    from_folder = extract_features(str(tmp_path / "emo"), dataset, frames_per_clip=0, progress=False)
    plain = (model.backbone, Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True))
    direct = extract_features(plain, dataset, frames_per_clip=0, cache=False, progress=False)
    assert from_folder.layers == [0, 1, 2] and not model.backbone.training
    np.testing.assert_allclose(from_folder.pooled, direct.pooled, rtol=1e-5, atol=1e-6)


# Each rank reports in its own file, not on the stdout pipe the ranks share: unbuffered
# (PYTHONUNBUFFERED=1), print() writes a line and its newline in two write()s, and under
# load two ranks' lines interleave as "rank 1 ...rank 0 ...\n\n".
SHARDED = textwrap.dedent("""
    import json, os, sys, numpy as np, datasets, torch.distributed as dist
    from pathlib import Path
    from hub_emo.features import extract_features
    result = extract_features(sys.argv[2], datasets.load_from_disk(sys.argv[1]), frames_per_clip=4,
                              progress=False)
    assert not dist.is_initialized()  # the group extraction started is gone: a later Trainer starts its own
    rank = int(os.environ["RANK"])
    out = Path(sys.argv[3])
    (out / f"rank{rank}.json").write_text(json.dumps({"extracted": result.extracted,
                                                      "shape": list(result.pooled.shape)}))
    if rank == 0:
        np.save(out / "pooled.npy", result.pooled)
""")


@pytest.mark.slow
def test_sharded_extraction_under_torchrun(parts, tmp_path):
    root, dataset, folder = parts
    data = root / "saved"
    if not data.exists():
        dataset.save_to_disk(str(data))
    script = tmp_path / "extract.py"
    script.write_text(SHARDED)
    env = {**os.environ, "HUB_EMO_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    done = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(data),
                           str(folder), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert sorted(r["extracted"] for r in reports) == [len(dataset) // 2, len(dataset) - len(dataset) // 2]
    assert all(r["shape"] == [3, len(dataset), 32] for r in reports)
    single = extract_features(str(folder), dataset, frames_per_clip=4, cache=False, progress=False)
    np.testing.assert_allclose(np.load(tmp_path / "pooled.npy"), single.pooled, rtol=1e-5, atol=1e-6)
    cached = list((tmp_path / "cache").rglob("*.safetensors"))
    assert len([p for p in cached if ".frames-" not in p.name]) == len(dataset)  # one record per clip
    assert not list((tmp_path / "cache").rglob("*.tmp*"))
