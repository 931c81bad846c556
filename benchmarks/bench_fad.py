"""This project's Fréchet distance against the scipy ``sqrtm`` formula fadtk uses.

Both take the same Gaussian statistics (mean, covariance of random frame embeddings with
a realistic, correlated spectrum); timings are interleaved and the median of several
repeats is reported, with the relative difference of the two values.

Goals: ≥ 7× faster at 768 dims, ≥ 10× at 1024 dims; relative difference ≤ 1e-6.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import numpy as np

from hub_emo.analysis.frechet import frechet_distance_from_stats, frechet_distance_reference, gaussian_stats

GOALS = {768: 7.0, 1024: 10.0}


def statistics_pair(dim: int, frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    a = rng.normal(size=(frames, dim)) @ mixing
    b = (rng.normal(size=(frames, dim)) * np.linspace(0.5, 1.5, dim)) @ mixing + 0.1
    return (*gaussian_stats(a), *gaussian_stats(b))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames-per-dim", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads for both (default: the library's own choice)")
    args = parser.parse_args()
    limit = contextlib.nullcontext()
    if args.threads:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(args.threads)
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; BLAS threads: "
          f"{args.threads or 'default'}")
    ok = True
    with limit:
        ok = measure(args)
    return 0 if ok else 1


def measure(args) -> bool:
    ok = True
    for dim, goal in GOALS.items():
        stats = statistics_pair(dim, args.frames_per_dim * dim)
        ours_t, ref_t = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            ours = frechet_distance_from_stats(*stats)
            ours_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            reference = frechet_distance_reference(*stats)
            ref_t.append(time.perf_counter() - start)
        ours_s, ref_s = statistics.median(ours_t), statistics.median(ref_t)
        speedup = ref_s / ours_s
        rel = abs(ours - reference) / abs(reference)
        passed = speedup >= goal and rel <= 1e-6
        ok &= passed
        print(f"dim {dim:5d}: ours {ours_s * 1e3:7.1f} ms   scipy sqrtm {ref_s * 1e3:7.1f} ms   "
              f"speed-up {speedup:5.1f}× (goal ≥ {goal:g}×)   rel. diff {rel:.1e} (goal ≤ 1e-6)   "
              f"{'PASS' if passed else 'MISS'}")
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
