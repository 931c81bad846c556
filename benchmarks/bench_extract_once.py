"""`hub-emo probe`, then `fad`, then `train --strategy weighted_sum` on one backbone and data:
how often each clip runs through the backbone, and what each step costs.

A random wav2vec2 (hidden 256, 6 layers) over a generated RAVDESS layout (4 actors, 4
emotions, speech and song, 2 s clips); training's crop (6 s) covers every clip. Clips
through the backbone are counted by a global forward hook on its top module (rows fed).
Goal: each clip once over the three steps, i.e. clips through the backbone
÷ clips = 1.0, and the second and third steps extract nothing. Uses only the public
functions, so the same script measures any revision (``PYTHONPATH=<tree>``).

Usage: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_extract_once.py [--seconds 2] [--threads 1]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ["HUB_EMO_CACHE"] = tempfile.mkdtemp(prefix="bench_extract_once_")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import torch
    from transformers import AutoModel, Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    import hub_emo.data
    from corpora import make_ravdess
    from hub_emo.analysis import run_fad, run_probing
    from hub_emo.training import train

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="bench_extract_once_data_"))
    make_ravdess(tmp / "raw", actors=(1, 2, 4, 5), emotions=(1, 3, 4, 5), seconds=args.seconds)
    corpus = hub_emo.data.prepare_with_report(["ravdess_speech", "ravdess_song"], tmp / "raw",
                                              out=tmp / "prepared").dataset
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=256, num_hidden_layers=6, num_attention_heads=4, intermediate_size=1024)
    AutoModel.from_config(config).save_pretrained(tmp / "backbone")
    Wav2Vec2FeatureExtractor().save_pretrained(tmp / "backbone")
    backbone = str(tmp / "backbone")
    fed = [0]

    def count(module, inputs, kwargs, _output):
        if isinstance(module, Wav2Vec2Model):
            fed[0] += int((inputs[0] if inputs else kwargs["input_values"]).shape[0])

    torch.nn.modules.module.register_module_forward_hook(count, with_kwargs=True)
    steps = {
        "probe": lambda: run_probing({"m": backbone}, corpus, "4class", tmp / "probe", epochs=5, progress=False),
        "fad": lambda: run_fad({"m": backbone}, corpus, "4class", [-1], tmp / "fad", n_boot=0, progress=False),
        "train": lambda: train(dataset=corpus, backbone=backbone, strategy="weighted_sum", max_seconds=6.0,
                               label_set="4class", domain="speech", folds="1", max_steps=4, report_to="none",
                               output_dir=str(tmp / "train")),
    }
    print(f"{len(corpus)} clips × {args.seconds:g} s, wav2vec2 hidden 256, 7 hidden states, {args.threads} thread(s); "
          f"load average {os.getloadavg()[0]:.2f}")
    for name, run in steps.items():
        before, wall, cpu = fed[0], time.perf_counter(), time.process_time()
        run()
        print(f"{name:6s} clips through the backbone {fed[0] - before:4d}   wall {time.perf_counter() - wall:6.2f} s"
              f"   CPU {time.process_time() - cpu:6.2f} s")
    ratio = fed[0] / len(corpus)
    print(f"clips through the backbone ÷ clips: {ratio:.2f} (goal 1.0)   {'PASS' if ratio == 1.0 else 'MISS'}")
    return 0 if ratio == 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
