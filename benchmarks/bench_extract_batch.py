"""Extraction over clips of RAVDESS-like, all different lengths: clips per pass, and hub_emo's
throughput beside a bare forward loop at one clip and at ``--batch`` clips per pass.

A wav2vec2-base-shaped backbone (the published config, random weights, group norm: the
case that needs the per-clip first convolution) over ``--clips`` generated clips whose
lengths are spread as RAVDESS's are (3.0-5.3 s, 16 kHz, no two equal). Side by side in one
process, interleaved, best of ``--rounds``:

* hub_emo ``extract`` (decode, resample, pad, forward, pool every layer, write the store)
  at batch size 1 and ``--batch``;
* a bare loop over the same clips decoded beforehand: ``model(x, output_hidden_states=True)``
  one clip per pass, and the stock padded forward (``attention_mask``, no exactness fix)
  on the same length-sorted batches.

Printed: clips per pass, seconds, and the ratios bare ÷ hub_emo (the pipeline's overhead;
the accelerator goal is ≥ 0.9) and batch-1 ÷ batch-N (what batching buys on this machine).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_extract_batch.py [--clips 24] [--batch 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
RATE = 16000


def corpus(count: int, seed: int = 0):
    """``count`` noise clips, lengths evenly spread over 3.0-5.3 s in random order."""
    import datasets
    import numpy as np

    rng = np.random.default_rng(seed)
    seconds = rng.permutation(np.linspace(3.0, 5.3, count))
    audio = [{"array": rng.normal(scale=0.1, size=int(s * RATE)).astype(np.float32), "sampling_rate": RATE}
             for s in seconds]
    return datasets.Dataset.from_dict({"id": [f"clip{i:04d}" for i in range(count)], "audio": audio}).cast_column(
        "audio", datasets.Audio())


def wav2vec2_base():
    """The published wav2vec2-base shape with random weights, as a hub_emo Backbone."""
    import torch
    from real_shapes import published
    from transformers import AutoModel, Wav2Vec2FeatureExtractor

    from hub_emo.features import load_backbone
    from hub_emo.modeling.backbones import config_from_dict

    options, preprocessor = published("facebook/wav2vec2-base")
    torch.manual_seed(0)
    model = AutoModel.from_config(config_from_dict(options))
    extractor = Wav2Vec2FeatureExtractor(**{k: v for k, v in preprocessor.items() if k != "feature_extractor_type"})
    return load_backbone((model, extractor), name="wav2vec2-base shape")


def bare_batches(backbone, dataset, batch: int):
    """The clips decoded beforehand, as padded (values, mask) batches in hub_emo's length order."""
    from hub_emo.features import decodable, waveform
    from hub_emo.modeling.batched_forward import length_batches

    waves = [waveform(row, RATE) for row in decodable(dataset)]
    out = []
    for rows in length_batches([len(w) for w in waves], batch):
        inputs = backbone.feature_extractor([waves[i] for i in rows], sampling_rate=RATE, padding=True,
                                            return_attention_mask=True, return_tensors="pt")
        out.append((inputs["input_values"], inputs["attention_mask"]))
    return out


def timed(run) -> tuple[float, float]:
    """(wall s, this process's CPU s): on a shared machine CPU time is the steadier of the two."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="hub_emo's decoding workers")
    args = parser.parse_args()
    os.environ["HUB_EMO_CACHE"] = tempfile.mkdtemp(prefix="bench_extract_batch_")
    import torch

    from hub_emo.features import extract

    torch.set_num_threads(args.threads)
    dataset, backbone = corpus(args.clips), wav2vec2_base()
    model = backbone.model.eval()
    one, padded = bare_batches(backbone, dataset, 1), bare_batches(backbone, dataset, args.batch)

    def bare(batches):
        with torch.inference_mode():
            for values, mask in batches:
                model(values, attention_mask=None if values.shape[0] == 1 else mask, output_hidden_states=True)

    runs = {
        "hub_emo, batch 1": lambda: extract(backbone, dataset, batch_size=1, refresh=True, num_workers=args.workers),
        f"hub_emo, batch {args.batch}": lambda: extract(backbone, dataset, batch_size=args.batch, refresh=True,
                                                         num_workers=args.workers),
        "bare loop, batch 1": lambda: bare(one),
        f"bare loop, batch {args.batch}": lambda: bare(padded),
    }
    passes = {  # the hub_emo runs here also warm up
        "hub_emo, batch 1": extract(backbone, dataset, batch_size=1, refresh=True).forward_passes,
        f"hub_emo, batch {args.batch}": extract(backbone, dataset, batch_size=args.batch, refresh=True).forward_passes,
        "bare loop, batch 1": len(one), f"bare loop, batch {args.batch}": len(padded),
    }
    best = {name: (float("inf"), float("inf")) for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            best[name] = tuple(map(min, best[name], timed(run)))
    audio = sum(len(values[0]) for values, _ in one) / RATE
    print(f"{args.clips} clips, {audio:.0f} s of audio (3.0-5.3 s each, all lengths different); wav2vec2-base "
          f"shape; {args.threads} thread(s), {args.workers} decoding worker(s); load {os.getloadavg()[0]:.2f}; "
          f"best of {args.rounds}")
    print("\n| run | forward passes | clips per pass | wall s | CPU s | clip-s of audio per wall s |\n"
          "|---|---:|---:|---:|---:|---:|")
    for name in runs:
        print(f"| {name} | {passes[name]} | {args.clips / passes[name]:.1f} | {best[name][0]:.2f} | "
              f"{best[name][1]:.2f} | {audio / best[name][0]:.1f} |")
    n = args.batch
    for k, kind in enumerate(("wall", "CPU")):
        ratio = best["bare loop, batch 1"][k] / best["hub_emo, batch 1"][k]
        print(f"\n{kind}: bare ÷ hub_emo at batch 1 {ratio:.2f}, "
              f"at batch {n} {best[f'bare loop, batch {n}'][k] / best[f'hub_emo, batch {n}'][k]:.2f} "
              f"(accelerator goal ≥ 0.9); batch 1 ÷ batch {n}: hub_emo "
              f"{best['hub_emo, batch 1'][k] / best[f'hub_emo, batch {n}'][k]:.2f}, bare "
              f"{best['bare loop, batch 1'][k] / best[f'bare loop, batch {n}'][k]:.2f} (> 1: batching is faster here)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
