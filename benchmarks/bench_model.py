"""Inference cost of hub_emo's adapters against the stock transformers classifier.

Measured side by side in one run on a wav2vec2-base-sized random backbone (95 M
parameters), interleaving the models so machine noise hits them alike; prints ratios
against the stock `Wav2Vec2ForSequenceClassification` (weighted layer sum, as ours), and
the trainable share of parameters per adapter.

Goals: merged LoRA ≤ 1.05 × stock; unmerged LoRA and bottleneck ≤ 1.15 × stock;
LoRA and bottleneck trainable share < 2 %.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import Wav2Vec2Config, Wav2Vec2ForSequenceClassification

from hub_emo import EmoConfig, EmoForAudioClassification

NUM_LABELS = 6


def build(adapter: str, backbone: Wav2Vec2Config):
    torch.manual_seed(0)
    return EmoForAudioClassification(EmoConfig(backbone_config=backbone, adapter=adapter, num_labels=NUM_LABELS)).eval()


def trainable_share(model) -> float:
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad) / total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    backbone = Wav2Vec2Config(layerdrop=0.0)
    stock = Wav2Vec2ForSequenceClassification(
        Wav2Vec2Config(layerdrop=0.0, use_weighted_layer_sum=True, num_labels=NUM_LABELS)
    ).eval()
    models = {"stock": stock}
    merged = build("lora", backbone)
    with torch.no_grad():  # a trained LoRA: non-zero B, so merging really changes weights
        for name, p in merged.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    shares = {a: trainable_share(build(a, backbone)) for a in ("none", "lora", "bottleneck")}
    models["lora (unmerged)"] = merged
    models["bottleneck"] = build("bottleneck", backbone)
    merged_copy = build("lora", backbone)
    merged_copy.load_state_dict(merged.state_dict())
    models["lora (merged)"] = merged_copy.merge_and_unload()

    x = torch.randn(args.clips, int(args.seconds * 16000))
    times = {name: [] for name in models}
    with torch.no_grad():
        for model in models.values():  # warm-up
            model(x[:1, :16000])
        for _ in range(args.repeats):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["stock"])
    print(f"forward of {args.clips} clips x {args.seconds:g} s, median of {args.repeats}, torch threads {torch.get_num_threads()}")
    goals = {"lora (merged)": 1.05, "lora (unmerged)": 1.15, "bottleneck": 1.15}
    for name, ts in times.items():
        med = statistics.median(ts)
        ratio = med / base
        goal = goals.get(name)
        verdict = "" if goal is None else f"  goal <= {goal:.2f}: {'met' if ratio <= goal else 'MISSED'}"
        print(f"  {name:16s} {med:7.3f} s  ratio {ratio:5.3f}{verdict}")
    print("trainable share of parameters (goal < 2 % for adapters):")
    for adapter, share in shares.items():
        print(f"  {adapter:16s} {100 * share:6.3f} %")


if __name__ == "__main__":
    main()
