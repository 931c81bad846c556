"""Training step time and peak memory per strategy, ÷ `full`, on a wav2vec2-base-sized backbone.

Goals: weighted_sum ≤ 0.35 time and ≤ 0.4 memory of full; lora ≤ 0.7 time and
≤ 0.75 memory; plus the trainable share of parameters per strategy.

Each strategy runs in its own subprocess so memory high-water marks do not mix. One step
is what `transformers.Trainer` does per batch: forward with labels, backward, AdamW
step, zero_grad, in training mode. Memory is the process's peak RSS (``ru_maxrss``)
minus its RSS after importing torch/transformers, i.e. the model plus everything the
training step needs. The backbone is random (default `Wav2Vec2Config`: 12 layers, 768
dims, 94 M parameters); the cost does not depend on the weights.

Time is the CPU time of one step (``time.process_time``), single-threaded by default,
the fastest over all steps and rounds (strategies alternate in each round): on a shared
machine wall time swings with other people's work (we saw bottleneck "faster" than
weighted_sum), while one thread's CPU time does not. Wall time is printed beside it.
The ``full`` subprocess also times its forward pass alone under ``torch.no_grad`` in eval
mode (as frozen strategies run the backbone): the floor for any strategy that still runs
the backbone every step.

Cached rows (``baseline``/``weighted_sum`` with ``cache_features``, the default): the
backbone runs once per clip (``extract_layer_features``, no grad, eval mode), then every
step is head-only on ``forward(layer_features=...)``. Their step time is amortised over
``--epochs`` (default 30, the strategies' default): extraction time of one batch ÷ epochs
+ one head-only step (each epoch has as many steps as extraction batches). Their memory is
the peak of extraction and head steps together.

Usage: ``.venv/bin/python benchmarks/bench_train.py [--clips 2] [--seconds 3] [--steps 3] [--rounds 2] [--threads 1] [--epochs 30]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

STRATEGIES = ("full", "baseline", "weighted_sum", "lora", "bottleneck", "baseline+cache", "weighted_sum+cache")
GOALS = {"weighted_sum": (0.35, 0.40), "weighted_sum+cache": (0.35, 0.40), "lora": (0.70, 0.75)}
#: weighted_sum trains on cached features by default; its uncached row (cache_features false) is shown, not judged.
JUDGED = ("weighted_sum+cache", "lora")
CACHED = "+cache"


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def measure(strategy: str, clips: int, seconds: float, steps: int, threads: int, epochs: int = 30) -> dict:
    """One strategy, in this process: fastest step time (s), peak memory above imports (MiB), shares."""
    import resource
    import statistics
    import time

    import torch
    from transformers import Wav2Vec2Config

    import hub_emo  # noqa: F401
    from hub_emo.modeling import EmoConfig, EmoForAudioClassification
    from hub_emo.training.strategies import strategy_config, trainable_share

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base_kib = _rss_kib()
    cached = strategy.endswith(CACHED)
    config = EmoConfig(backbone_config=Wav2Vec2Config(), id2label={i: str(i) for i in range(6)},
                       **strategy_config(strategy.removesuffix(CACHED)))
    model = EmoForAudioClassification(config).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    inputs = torch.randn(clips, int(seconds * 16000))
    mask = torch.ones_like(inputs, dtype=torch.long)
    labels = torch.arange(clips) % 6
    extract = None
    if cached:  # what the feature cache does once per clip: eval mode, no grad
        extracts = []
        model.eval()
        for _ in range(steps):
            start = time.process_time()
            with torch.inference_mode():
                features = model.extract_layer_features(inputs, mask)
            extracts.append(time.process_time() - start)
        model.train()
        extract = min(extracts)
        batch = {"layer_features": features.clone()}
    else:
        batch = {"input_values": inputs, "attention_mask": mask}
    times, walls = [], []
    for step in range(steps + 1):  # the first step (allocations, optimizer state) is not timed
        start, wall = time.process_time(), time.perf_counter()
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step:
            times.append(time.process_time() - start)
            walls.append(time.perf_counter() - wall)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    forward = None
    if strategy == "full":
        forwards = []
        model.eval()  # as a frozen backbone runs while the frozen strategies train
        with torch.no_grad():
            for _ in range(steps):
                start = time.process_time()
                model(inputs, attention_mask=mask)
                forwards.append(time.process_time() - start)
        forward = min(forwards)
    head = min(times)
    return {
        "strategy": strategy,
        "step_s": head + (extract / epochs if cached else 0.0),
        "head_step_s": head if cached else None,
        "extract_s": extract,
        "wall_s": statistics.median(walls) + (extract / epochs if cached else 0.0),
        "forward_s": forward,
        "memory_mib": (peak_kib - base_kib) / 1024,
        "peak_rss_mib": peak_kib / 1024,
        "trainable_share": trainable_share(model),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=30, help="epochs that share one extraction (cached rows)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.clips, args.seconds, args.steps, args.threads, args.epochs)))
        return 0

    rows: dict[str, dict] = {}
    for round_ in range(args.rounds):
        for strategy in STRATEGIES:
            command = [sys.executable, __file__, "--one", strategy, "--clips", str(args.clips),
                       "--seconds", str(args.seconds), "--steps", str(args.steps), "--threads", str(args.threads),
                       "--epochs", str(args.epochs)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"  round {round_ + 1} {strategy}: {row['step_s']:.2f} s/step, {row['memory_mib']:.0f} MiB",
                  file=sys.stderr)
            if strategy in rows:
                row["step_s"] = min(row["step_s"], rows[strategy]["step_s"])
                for key in ("extract_s", "head_step_s"):
                    if row[key] is not None:
                        row[key] = min(row[key], rows[strategy][key])
                if row["forward_s"] is not None:
                    row["forward_s"] = min(row["forward_s"], rows[strategy]["forward_s"])
                row["memory_mib"] = max(row["memory_mib"], rows[strategy]["memory_mib"])
                row["peak_rss_mib"] = max(row["peak_rss_mib"], rows[strategy]["peak_rss_mib"])
            rows[strategy] = row

    full = rows["full"]
    print(f"wav2vec2-base-sized random backbone, {args.clips} clips x {args.seconds:g} s, "
          f"fastest of {args.rounds} x {args.steps} AdamW steps, {args.threads} thread(s)")
    print(f"{'strategy':<19}{'CPU s':>8}{'÷full':>7}{'wall s':>8}{'mem MiB':>9}{'÷full':>7}{'peak RSS':>10}"
          f"{'trainable':>12}{'share':>9}  goal")
    ok = True
    for name, row in rows.items():
        t = row["step_s"] / full["step_s"]
        m = row["memory_mib"] / full["memory_mib"]
        goal = GOALS.get(name)
        verdict = ""
        if goal:
            met = t <= goal[0] and m <= goal[1]
            ok &= met or name not in JUDGED
            verdict = f"time ≤ {goal[0]}, mem ≤ {goal[1]}: {'met' if met else 'MISSED'}"
        print(f"{name:<19}{row['step_s']:>8.2f}{t:>7.2f}{row['wall_s']:>8.2f}{row['memory_mib']:>9.0f}{m:>7.2f}"
              f"{row['peak_rss_mib']:>10.0f}{row['trainable']:>12,}{row['trainable_share']:>9.2%}  {verdict}")
    for name, row in rows.items():
        if row["extract_s"] is not None:
            print(f"{name}: extraction {row['extract_s']:.2f} s per batch (once per clip) / {args.epochs} epochs "
                  f"+ head-only step {row['head_step_s']:.4f} s = {row['step_s']:.3f} s/step; in the first epoch "
                  f"{(row['extract_s'] + row['head_step_s']) / full['step_s']:.2f} of full, every later epoch "
                  f"{row['head_step_s'] / full['step_s']:.4f}")
    floor = full["forward_s"] / full["step_s"]
    print(f"floor: the backbone's forward alone (no grad) costs {full['forward_s']:.2f} s = {floor:.2f} of a "
          "full step; a strategy that runs the backbone each step cannot go below it (the cached rows run it "
          "once per clip)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
