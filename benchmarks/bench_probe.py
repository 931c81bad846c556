"""Probing every layer from one cached extraction ÷ a naive loop that re-extracts per layer.

A small random wav2vec2 (12 transformer layers, 13 hidden states) on generated clips, so
that extraction dominates, as it does for real models. Both variants run the same code:
the naive loop calls `extract_features(layers=[k], cache=False)` and probes layer k, for
every k; the cached variant extracts all hidden states once (into a fresh cache) and
probes all layers. A third line shows a second cached run (features read from disk).

Goal: speed-up ≥ 0.8 × number of layers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def build(args, folder: Path):
    import datasets
    import numpy as np
    import soundfile as sf
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from hub_emo import schema

    rng = np.random.default_rng(0)
    rate = 16000
    t = np.arange(int(args.seconds * rate)) / rate
    columns = {k: [] for k in schema.dataset_features()}
    emotions = ("neutral", "happy", "sad", "angry")
    for i in range(args.clips):
        domain, emotion = i % 2, emotions[(i // 2) % len(emotions)]
        pitch = 180.0 * (1.3 ** emotions.index(emotion))
        wave = 0.3 * np.sin(2 * np.pi * pitch * t) if domain else 0.1 * rng.normal(size=t.size)
        path = folder / f"clip{i}.wav"
        sf.write(path, wave.astype(np.float32), rate)
        row = {"id": f"clip{i}", "audio": str(path), "label": schema.EMOTIONS.index(emotion), "domain": domain,
               "corpus": "bench", "speaker": str(i % 4), "native_label": emotion, "valence": 0.0,
               "arousal": 0.0, "fold": str(i % 4)}
        for key, value in row.items():
            columns[key].append(value)
    dataset = datasets.Dataset.from_dict(columns, features=schema.dataset_features())
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=args.hidden, num_hidden_layers=args.layers, num_attention_heads=4,
                            intermediate_size=4 * args.hidden, conv_dim=(256,) * 7, layerdrop=0.0)
    model = Wav2Vec2Model(config).eval()
    return dataset, (model, Wav2Vec2FeatureExtractor(sampling_rate=rate, do_normalize=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--layers", type=int, default=12, help="transformer layers (hidden states = layers + 1)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--probe", choices=("mlp", "logistic"), default="mlp")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/BLAS threads for both variants (1 keeps a shared machine's noise low)")
    args = parser.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    os.environ["HUB_EMO_CACHE"] = tempfile.mkdtemp(prefix="bench_probe_cache_")
    import numpy as np

    from hub_emo.features import extract_features
    from hub_emo.analysis.clips import clip_metadata, rows_for
    from hub_emo.analysis.probing import probe_scores

    with tempfile.TemporaryDirectory() as tmp:
        dataset, backbone = build(args, Path(tmp))
        ids, meta, classes = clip_metadata(dataset, "4class")
        options = dict(num_classes=len(classes), probe=args.probe, epochs=args.epochs, cross_domain=False)
        states = args.layers + 1

        def probe(features, layer_ids):
            matrix = np.stack([features.layer(k) for k in layer_ids])[:, rows_for(features.ids, ids)]
            return probe_scores(matrix, meta["label"], meta["domain"], meta["fold"], layer_ids=layer_ids, **options)

        start = time.perf_counter()
        naive_rows = []
        for layer in range(states):
            features = extract_features(backbone, dataset, layers=[layer], frames_per_clip=0, cache=False,
                                        progress=False, name="bench")
            naive_rows += probe(features, [layer])
        naive = time.perf_counter() - start

        # The naive loop wrote every clip's record: the cached variant starts from an empty cache.
        os.environ["HUB_EMO_CACHE"] = tempfile.mkdtemp(prefix="bench_probe_cache_")
        start = time.perf_counter()
        features = extract_features(backbone, dataset, frames_per_clip=0, progress=False, name="bench")
        cached_rows = probe(features, features.layers)
        cached = time.perf_counter() - start

        start = time.perf_counter()
        again = extract_features(backbone, dataset, frames_per_clip=0, progress=False, name="bench")
        probe(again, again.layers)
        warm = time.perf_counter() - start
    assert not features.from_cache and again.from_cache and len(naive_rows) == len(cached_rows)
    goal = 0.8 * states
    speedup = naive / cached
    print(f"{args.clips} clips × {args.seconds:g} s, wav2vec2 hidden {args.hidden}, {states} hidden states, "
          f"{args.probe} probe, {args.epochs} epochs, {args.threads} thread(s); load average {os.getloadavg()[0]:.2f}")
    print(f"naive (re-extract per layer): {naive:7.2f} s")
    print(f"one cached extraction:        {cached:7.2f} s   speed-up {speedup:5.2f}× "
          f"(goal ≥ 0.8 × {states} = {goal:.1f}×)   {'PASS' if speedup >= goal else 'MISS'}")
    print(f"second run (cache hit):       {warm:7.2f} s   speed-up {naive / warm:5.2f}×")
    return 0 if speedup >= goal else 1


if __name__ == "__main__":
    raise SystemExit(main())
