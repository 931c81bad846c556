"""Extraction over clips of different lengths, clips per pass: what batching buys on this
machine for the demo's stand-in backbones and for base-size ones, side by side in one run.

Two backbone shapes (random weights), each over generated clips, no two lengths equal,
spread as the clips it meets are:

* ``stand-in``: the demo's tiny wav2vec2 (`hub_emo.demo.pretrain.TINY_CONFIG`, 0.24 M
  parameters, layer norm) over 176 clips (the quick demo's corpus) of the demo corpus's
  lengths (0.9-3.4 s);
* ``base``: the published wav2vec2-base shape (95 M parameters, group norm: the case that
  needs the per-clip first convolution) over 24 clips of RAVDESS's lengths (3.0-5.3 s).

``--clips`` gives both shapes that many clips instead. Fewer clips over the same lengths
means more padding in a batch (near-equal lengths are further apart).

Per shape, interleaved, best of ``--rounds``: hub_emo ``extract`` (decode, pad, forward, pool
every layer, write the store) at each of ``--batches`` clips per pass, and a bare loop over
the same clips decoded beforehand: ``model(x, output_hidden_states=True)`` one clip per pass,
and the stock padded forward (``attention_mask``, no exactness fix) on hub_emo's batches of
the largest size. The thread policy is the CLI's (`hub_emo.threads.configure`).

Printed per shape: clips per pass, wall and CPU seconds, and the ratios batch-1 ÷ batch-N
(> 1: batching is faster here; CPU time is the steadier figure on a shared machine) and
bare ÷ hub_emo (the pipeline's overhead; the accelerator goal is ≥ 0.9).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_extract_batch.py [--clips N] [--batches 1 4 8]
        [--shapes stand-in base] [--threads 2]
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
#: shape -> the clip lengths (seconds) it is measured on, and how many clips by default.
LENGTHS = {"stand-in": (0.94, 3.36), "base": (3.0, 5.3)}
CLIPS = {"stand-in": 176, "base": 24}


def corpus(count: int, seconds: tuple[float, float], seed: int = 0):
    """``count`` noise clips, lengths evenly spread over ``seconds`` in random order."""
    import datasets
    import numpy as np

    rng = np.random.default_rng(seed)
    lengths = rng.permutation(np.linspace(*seconds, count))
    audio = [{"array": rng.normal(scale=0.1, size=int(s * RATE)).astype(np.float32), "sampling_rate": RATE}
             for s in lengths]
    return datasets.Dataset.from_dict({"id": [f"clip{i:04d}" for i in range(count)], "audio": audio}).cast_column(
        "audio", datasets.Audio())


def backbone(shape: str):
    """A hub_emo Backbone of ``shape`` with random weights."""
    import torch
    from real_shapes import published
    from transformers import AutoModel, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from hub_emo.demo.pretrain import backbone_config
    from hub_emo.features import load_backbone
    from hub_emo.inference import feature_extractor_for
    from hub_emo.modeling.backbones import config_from_dict

    torch.manual_seed(0)
    if shape == "stand-in":
        model = Wav2Vec2Model(backbone_config())
        extractor = feature_extractor_for(model.config)  # as the demo saves it
    else:
        options, preprocessor = published("facebook/wav2vec2-base")
        model = AutoModel.from_config(config_from_dict(options))
        extractor = Wav2Vec2FeatureExtractor(**{k: v for k, v in preprocessor.items()
                                                if k != "feature_extractor_type"})
    parameters = sum(p.numel() for p in model.parameters())
    return load_backbone((model, extractor), name=f"{shape} ({parameters / 1e6:.2f} M parameters)")


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


def runs_of(shape: str, clips: int, batches: list[int], workers: int) -> tuple[str, float, dict, dict]:
    """(backbone name, seconds of audio, name -> run, name -> forward passes) for one shape."""
    import torch

    from hub_emo.features import extract

    dataset, loaded = corpus(clips, LENGTHS[shape]), backbone(shape)
    model = loaded.model.eval()
    largest = max(batches)
    one, padded = bare_batches(loaded, dataset, 1), bare_batches(loaded, dataset, largest)

    def bare(batches_):
        with torch.inference_mode():
            for values, mask in batches_:
                model(values, attention_mask=None if values.shape[0] == 1 else mask, output_hidden_states=True)

    def hub(size):
        return lambda: extract(loaded, dataset, batch_size=size, refresh=True, num_workers=workers)

    runs = {f"hub_emo, batch {b}": hub(b) for b in batches}
    runs.update({"bare loop, batch 1": lambda: bare(one), f"bare loop, batch {largest}": lambda: bare(padded)})
    passes = {f"hub_emo, batch {b}": extract(loaded, dataset, batch_size=b, refresh=True).forward_passes
              for b in batches}  # also warms up
    passes.update({"bare loop, batch 1": len(one), f"bare loop, batch {largest}": len(padded)})
    return loaded.name, sum(len(values[0]) for values, _ in one) / RATE, runs, passes


def report(shape: str, name: str, audio: float, clips: int, batches: list[int], best: dict, passes: dict) -> None:
    largest = max(batches)
    low, high = LENGTHS[shape]
    print(f"\n{shape}: {name}, {clips} clips, {audio:.0f} s of audio ({low}-{high} s each, all lengths different)")
    print("\n| run | forward passes | clips per pass | wall s | CPU s |\n|---|---:|---:|---:|---:|")
    for run, (wall, cpu) in best.items():
        print(f"| {run} | {passes[run]} | {clips / passes[run]:.1f} | {wall:.2f} | {cpu:.2f} |")
    for k, kind in enumerate(("wall", "CPU")):
        one = best["hub_emo, batch 1"][k]
        gains = ", ".join(f"{b}: {one / best[f'hub_emo, batch {b}'][k]:.2f}" for b in batches if b != 1)
        overhead = best[f"bare loop, batch {largest}"][k] / best[f"hub_emo, batch {largest}"][k]
        print(f"{kind}: hub_emo batch 1 ÷ batch N ({gains}; > 1: batching is faster here); "
              f"bare ÷ hub_emo at batch {largest} {overhead:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, help="clips per shape (default: 176 stand-in, 24 base)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8], help="hub_emo's clips per pass")
    parser.add_argument("--shapes", nargs="+", choices=sorted(LENGTHS), default=["stand-in", "base"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="hub_emo's decoding workers")
    args = parser.parse_args()
    batches = sorted(set([1, *args.batches]))
    os.environ["HUB_EMO_CACHE"] = tempfile.mkdtemp(prefix="bench_extract_batch_")
    from hub_emo import threads

    threads.configure()
    import torch

    torch.set_num_threads(args.threads)
    clips = {shape: args.clips or CLIPS[shape] for shape in args.shapes}
    shapes = {shape: runs_of(shape, clips[shape], batches, args.workers) for shape in args.shapes}
    best = {(shape, run): (float("inf"), float("inf")) for shape, (_, _, runs, _) in shapes.items() for run in runs}
    for _ in range(args.rounds):
        for shape, (_, _, runs, _) in shapes.items():
            for run, call in runs.items():
                best[shape, run] = tuple(map(min, best[shape, run], timed(call)))
    print(f"{args.threads} thread(s), {args.workers} decoding worker(s); load {os.getloadavg()[0]:.2f} at the end; "
          f"best of {args.rounds}, interleaved")
    for shape, (name, audio, runs, passes) in shapes.items():
        report(shape, name, audio, clips[shape], batches, {run: best[shape, run] for run in runs}, passes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
