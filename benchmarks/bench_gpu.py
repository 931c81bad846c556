"""The study on an accelerator: extraction throughput ÷ a bare batched forward loop, and the
whole RAVDESS-scale study in minutes. Runs only where CUDA is present; elsewhere it says so
and exits 0 (``--cpu --tiny`` runs its code path on a CPU at toy size, to check it).

1. A RAVDESS-layout corpus of generated tones, 2452 clips (24 actors, speech and song, both
   intensities, statements and repetitions) at 48 kHz, each cut to its own length between
   3.0 and 5.3 s as RAVDESS's are, prepared with ``hub_emo.data``.
2. wav2vec2-base, HuBERT-base and MERT-v1-95M at their published shapes (random weights).
3. Per model, side by side, interleaved, best of ``--rounds``: hub_emo's ``extract`` (workers
   decode and resample, length-sorted padded batches, exact per clip, per-layer pooling,
   the store) against a bare loop of ``model(values, attention_mask=mask,
   output_hidden_states=True)`` over the same batches decoded, resampled and padded
   beforehand, moved to the device inside the loop, both 8 clips per pass. Goal: ratio
   bare ÷ hub_emo ≥ 0.9 on an accelerator (the exit status says; with ``--cpu`` the ratio
   is printed and the exit is 0: on a CPU, at toy size, fixed costs dominate).
4. The study, timed, each step printed as it ends: extraction of the three models into an
   empty cache (default batch size), ``run_probing`` and ``run_fad`` on the cache (label
   set 4class), and one LoRA fold (``--lora-steps`` steps) of wav2vec2-base on the speech
   clips of those four emotions (early stopping may end it sooner, as in the demo).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_gpu.py [--rounds 2] [--lora-steps 150]
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
MODELS = ("facebook/wav2vec2-base", "facebook/hubert-base-ls960", "m-a-p/MERT-v1-95M")
GOAL = 0.9


def ravdess_like(root: Path, tiny: bool) -> Path:
    """The corpus on disk, each file cut to a length drawn from 3.0-5.3 s (seeded)."""
    import numpy as np
    import soundfile as sf
    from corpora import make_ravdess

    both = (1, 2)
    # Tiny: actors 1-3, so fold 1 (actor 2) leaves two training speakers, enough for a validation split.
    layout = dict(actors=(1, 2, 3), intensities=(1,), statements=(1,), repetitions=(1,)) if tiny else dict(
        actors=range(1, 25), intensities=both, statements=both, repetitions=both)
    make_ravdess(root, seconds=5.3, sr=48000, **layout)
    rng = np.random.default_rng(0)
    for path in sorted(root.rglob("*.wav")):
        audio, rate = sf.read(path, dtype="int16")
        sf.write(path, audio[: int(rng.uniform(3.0, 5.3) * rate)], rate, subtype="PCM_16")
    return root


def backbone_folders(work: Path, tiny: bool) -> dict[str, str]:
    from real_shapes import TINY, write_repo

    return {repo.split("/")[1]: str(write_repo(repo, work / repo.replace("/", "__"), size=TINY if tiny else None))
            for repo in MODELS}


def synchronised(device, run) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def bare_batches(backbone, dataset, batch_size: int):
    """The clips decoded, resampled and padded beforehand, in hub_emo's batches (host memory)."""
    from hub_emo.features import decodable, waveform
    from hub_emo.modeling.batched_forward import length_batches

    rate = backbone.sampling_rate
    waves = [waveform(row, rate) for row in decodable(dataset)]
    batches = []
    for rows in length_batches([len(w) for w in waves], batch_size):
        inputs = backbone.feature_extractor([waves[i] for i in rows], sampling_rate=rate, padding=True,
                                            return_attention_mask=True, return_tensors="pt")
        batches.append((inputs["input_values"].pin_memory() if _cuda() else inputs["input_values"],
                        inputs["attention_mask"]))
    return batches


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def throughput(folders: dict[str, str], dataset, device, rounds: int) -> float:
    """Prints bare ÷ hub_emo per model; returns the worst ratio."""
    import torch

    from hub_emo.features import extract, load_backbone

    worst = float("inf")
    for name, folder in folders.items():
        backbone = load_backbone(folder)
        model = backbone.model.to(device).eval()
        dtype = next(model.parameters()).dtype
        batches = bare_batches(backbone, dataset, 8)

        def bare():
            with torch.inference_mode():
                for values, mask in batches:
                    model(values.to(device, dtype, non_blocking=True), attention_mask=mask.to(device),
                          output_hidden_states=True)

        hub = base = float("inf")
        options = dict(batch_size=8, refresh=True, device=device)  # the bare loop's batches, on any device
        extract(backbone, dataset.select(range(16)), **options)  # warm-up
        for _ in range(rounds):
            base = min(base, synchronised(device, bare))
            hub = min(hub, synchronised(device, lambda: extract(backbone, dataset, **options)))
        worst = min(worst, base / hub)
        verdict = f"{'meets' if base / hub >= GOAL else 'misses'} goal ≥ {GOAL}" if device.type == "cuda" else \
            "the goal is for an accelerator"
        print(f"  {name:22s} hub_emo {hub:7.2f} s   bare {base:7.2f} s   ratio {base / hub:.2f} "
              f"({len(dataset) / hub:.0f} clips/s; {verdict})")
        model.cpu()
    return worst


def study(folders: dict[str, str], dataset, work: Path, device, lora_steps: int) -> dict[str, float]:
    """Wall seconds of each step of the study, into a fresh cache."""
    from hub_emo.analysis import run_fad, run_probing
    from hub_emo.features import extract, load_backbone
    from hub_emo.training import train

    os.environ["HUB_EMO_CACHE"] = str(work / "study_cache")
    steps = {
        "extraction (3 models, frames for FAD)": lambda: [
            extract(load_backbone(f), dataset, frames_cap=32, device=device) for f in folders.values()],
        "probing (cached)": lambda: run_probing(folders, dataset, "4class", work / "probe", progress=False),
        "FAD (cached)": lambda: run_fad(folders, dataset, "4class", [-1], work / "fad", progress=False),
        f"one LoRA fold (≤ {lora_steps} steps)": lambda: train(
            dataset=dataset, backbone=folders["wav2vec2-base"], strategy="lora", label_set="4class", domain="speech",
            drop_unlisted_labels=True, folds="1", max_steps=lora_steps, report_to="none",
            output_dir=str(work / "lora"), use_cpu=device.type == "cpu"),
    }
    took = {}
    for name, run in steps.items():  # each printed as it ends: a later step's failure keeps the earlier figures
        took[name] = synchronised(device, run)
        print(f"  {name:40s} {took[name]:8.1f} s  {took[name] / 60:6.1f} min", flush=True)
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--lora-steps", type=int, default=150, help="the demo's steps per stage")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU anyway (with --tiny: a code check)")
    parser.add_argument("--tiny", action="store_true", help="3 actors, tiny models: checks the code path")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available() and not args.cpu:
        print("bench_gpu: no CUDA device here (torch.cuda.is_available() is False); nothing measured. "
              "Run it on a GPU node; on a CPU see bench_extract_batch.py and bench_real_shape.py.")
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    work = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    os.environ["HUB_EMO_CACHE"] = str(work / "cache")
    import hub_emo.data

    start = time.perf_counter()
    raw = ravdess_like(work / "RAVDESS", args.tiny)
    dataset = hub_emo.data.prepare_with_report(["ravdess_speech", "ravdess_song"], raw, out=work / "prepared").dataset
    folders = backbone_folders(work, args.tiny)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"{len(dataset)} clips (3.0-5.3 s, 48 kHz), {len(folders)} models, {name}; set-up "
          f"{time.perf_counter() - start:.0f} s; work folder {work}")
    print(f"\nextraction throughput, bare batched forward ÷ hub_emo (batch 8, best of {args.rounds}):")
    worst = throughput(folders, dataset, device, args.rounds)
    print("\nthe study, step by step:")
    took = study(folders, dataset, work, device, args.lora_steps)
    print(f"  {'total':40s} {sum(took.values()):8.1f} s  {sum(took.values()) / 60:6.1f} min")
    return 0 if worst >= GOAL or device.type != "cuda" else 1


if __name__ == "__main__":
    raise SystemExit(main())
