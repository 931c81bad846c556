"""The whole per-emotion FAD study ÷ a fadtk-style bare loop, on the same cached features.

A random base-size wav2vec2 (768 dims, 13 hidden states) over generated clips in the six
ravdess6 emotions, speech and music, performers shared by both domains. The features
are extracted once into a fresh cache; then, side by side in one process:

- hub_emo: `run_fad` on the cached features — per layer and emotion FAD and KAD (the
  ranked value); at the report layer the 100-resample performer bootstrap (KAD's interval
  and τ's; FAD's interval where the dims allow one), clip-level FAD∞ (8 subsets) and the
  within-domain distances between emotions; heatmaps, bars and the report;
- the peer: what fadtk computes, the bare distances only: for every layer and emotion,
  ``np.mean``/``np.cov`` of each domain's frames and the Fréchet distance through
  ``scipy.linalg.sqrtm(S_a @ S_b)`` (fadtk's ``calc_frechet_distance``, written here).

Both read the features from the cache. Goal: hub_emo ÷ peer ≤ 1.0.

``--ravdess-scale``: RAVDESS's cell sizes instead (synthetic 768-dim frames with clip
effects; 192/184 clips per emotion and domain, neutral 96/92, 32 frames each, 24
performers shared by both domains), where the cells have more frames than dims and every
distance is d × d work. Timed side by side on one layer: the bare loop, `score_layer` at
a plain layer and at the report layer (``--bootstrap`` resamples). The whole study over
13 hidden states is 12 plain layers + 1 report layer, against 13 bare layers; CPU time of
this process is reported beside wall time (the machine is shared), and the CPU ratio is
the goal's figure.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful")


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
    for i in range(args.clips):
        domain, emotion = i % 2, EMOTIONS[(i // 2) % len(EMOTIONS)]
        pitch = 150.0 * (1.2 ** EMOTIONS.index(emotion)) * (1 + 0.05 * rng.normal())
        wave = 0.3 * np.sin(2 * np.pi * pitch * t) + 0.05 * rng.normal(size=t.size)
        if not domain:
            wave *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)  # a syllable rhythm for "speech"
        path = folder / f"clip{i}.wav"
        sf.write(path, wave.astype(np.float32), rate)
        row = {"id": f"clip{i}", "audio": str(path), "label": schema.EMOTIONS.index(emotion), "domain": domain,
               "corpus": "bench", "speaker": f"actor{i % args.performers}", "native_label": emotion,
               "valence": 0.0, "arousal": 0.0, "fold": str(i % 4)}
        for key, value in row.items():
            columns[key].append(value)
    dataset = datasets.Dataset.from_dict(columns, features=schema.dataset_features())
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=args.hidden, num_hidden_layers=args.layers, layerdrop=0.0)
    return dataset, (Wav2Vec2Model(config).eval(), Wav2Vec2FeatureExtractor(sampling_rate=rate, do_normalize=True))


def fadtk_distance(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float:
    """fadtk's ``calc_frechet_distance``: scipy ``sqrtm`` of the product, an eps offset if it fails."""
    import numpy as np
    from scipy import linalg

    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # scipy 1.16 deprecates disp=, which fadtk passes
        covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def peer_loop(backbone, dataset) -> int:
    import numpy as np

    from hub_emo.features import extract_features
    from hub_emo.analysis.probing import clip_metadata, rows_for

    features = extract_features(backbone, dataset, name="bench", progress=False)
    ids, meta, classes = clip_metadata(dataset, "ravdess6")
    meta_row = np.full(len(features.ids), -1)
    meta_row[rows_for(features.ids, ids)] = np.arange(len(ids))
    frame_row = meta_row[features.frame_clip]
    count = 0
    for layer in features.layers:
        frames = features.layer_frames(layer).astype(np.float64)
        for e, _ in enumerate(classes):
            stats = []
            for domain in ("speech", "music"):
                ok = (meta["label"] == e) & (meta["domain"] == domain)
                x = frames[(frame_row >= 0) & ok[frame_row]]
                stats += [x.mean(axis=0), np.cov(x, rowvar=False)]
            fadtk_distance(*stats)
            count += 1
    return count


def ravdess_scale_study(n_boot: int) -> float:
    import numpy as np

    from hub_emo.analysis.bootstrap import cluster_resamples
    from hub_emo.analysis.fad import Cell, LayerPlan, score_layer

    dim, frames_per_clip, rng = 768, 32, np.random.default_rng(0)
    counts = {e: (96, 92) if e == "neutral" else (192, 184) for e in EMOTIONS}
    total = sum(a + b for a, b in counts.values()) * frames_per_clip
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    parts, cells, offset, first_clip = [], {}, 0, 0
    for emotion, sizes in counts.items():
        for domain, clips in zip(("speech", "music"), sizes):
            x = (np.repeat(rng.normal(size=(clips, dim)), frames_per_clip, 0)
                 + rng.normal(size=(clips * frames_per_clip, dim))) @ mixing
            mask = np.zeros(total, dtype=bool)
            mask[offset:offset + len(x)] = True
            clip = np.repeat(np.arange(clips), frames_per_clip)
            cells[(emotion, domain)] = Cell(mask, clip + first_clip, clip % 24)  # performers shared
            parts.append(x)
            offset, first_clip = offset + len(x), first_clip + clips
    frames = np.concatenate(parts)
    start, start_cpu = time.perf_counter(), time.process_time()
    for emotion in EMOTIONS:
        stats = []
        for domain in ("speech", "music"):
            x = frames[cells[(emotion, domain)].frames]
            stats += [x.mean(axis=0), np.cov(x, rowvar=False)]
        fadtk_distance(*stats)
    peer, peer_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    plan = dict(classes=EMOTIONS, inf_steps=8, inf_min_fraction=0.5, confidence=0.95, seed=0)
    start, start_cpu = time.perf_counter(), time.process_time()
    score_layer(frames, cells, LayerPlan(**plan, report=False))
    plain, plain_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    print(f"one layer at RAVDESS scale: fadtk-style {peer:.1f} s (CPU {peer_cpu:.1f} s), hub_emo plain layer "
          f"(FAD + KAD) {plain:.1f} s (CPU {plain_cpu:.1f} s), ratio {plain / peer:.2f} "
          f"(CPU {plain_cpu / peer_cpu:.2f}); load average {os.getloadavg()[0]:.2f}", flush=True)
    resamples = cluster_resamples([np.arange(24)], 24, n_boot, 0, keep=[np.arange(24)]) if n_boot else None
    start, start_cpu = time.perf_counter(), time.process_time()
    score_layer(frames, cells, LayerPlan(**plan, counts=resamples, report=True))
    report, report_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    whole, whole_cpu = (12 * plain + report) / (13 * peer), (12 * plain_cpu + report_cpu) / (13 * peer_cpu)
    print(f"report layer ({n_boot} performer resamples: KAD interval, FAD interval refused at 768 dims; FAD∞; "
          f"30 within-domain pairs): {report:.1f} s (CPU {report_cpu:.1f} s); whole study (12 plain + 1 report "
          f"layer ÷ 13 bare layers): {whole:.2f} (CPU {whole_cpu:.2f}); load average {os.getloadavg()[0]:.2f}")
    return whole_cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--performers", type=int, default=4)
    parser.add_argument("--layers", type=int, default=12, help="transformer layers (hidden states = layers + 1)")
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--bootstrap", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1, help="interleaved repeats; the median is reported")
    parser.add_argument("--ravdess-scale", action="store_true", help="one layer at RAVDESS cell sizes (see above)")
    args = parser.parse_args()
    if args.ravdess_scale:
        return 0 if ravdess_scale_study(args.bootstrap) <= 1.0 else 1
    os.environ["HUB_EMO_CACHE"] = tempfile.mkdtemp(prefix="bench_fad_cache_")
    import statistics

    from hub_emo.analysis import run_fad
    from hub_emo.features import extract_features

    with tempfile.TemporaryDirectory() as tmp:
        dataset, backbone = build(args, Path(tmp))
        extract_features(backbone, dataset, name="bench", progress=False)  # fills the cache
        ours, peer = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = run_fad({"bench": backbone}, dataset, "ravdess6", out_dir=Path(tmp) / "report",
                             n_boot=args.bootstrap, progress=False)
            ours.append(time.perf_counter() - start)
            start = time.perf_counter()
            distances = peer_loop(backbone, dataset)
            peer.append(time.perf_counter() - start)
    ours_s, peer_s = statistics.median(ours), statistics.median(peer)
    ratio = ours_s / peer_s
    print(f"{args.clips} clips × {args.seconds:g} s, {args.performers} performers, wav2vec2 hidden {args.hidden}, "
          f"{args.layers + 1} hidden states, {distances} speech–music distances; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"fadtk-style bare loop (scipy sqrtm):  {peer_s:7.2f} s")
    print(f"hub_emo FAD study ({len(result.rows)} rows, {len(result.within)} within-domain, "
          f"{args.bootstrap} resamples): {ours_s:7.2f} s")
    print(f"ratio hub_emo ÷ peer: {ratio:.3f} (goal ≤ 1.0)   {'PASS' if ratio <= 1.0 else 'MISS'}")
    return 0 if ratio <= 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
