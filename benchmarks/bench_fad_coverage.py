"""Coverage of the study's intervals at its real size: 768 dims, 24 performers, RAVDESS cells.

Simulated truth: frames = performer effect + clip effect + frame noise (each Gaussian,
variances 0.5, 0.5, 1 times a decaying spectrum over the dims, as SSL embeddings have);
the same 24 performers, with the same performer effects, sing and speak; music's mean is
shifted. Every frame's marginal is then Gaussian, so the population KAD at any bandwidth
is known in closed form (`rbf_mmd2_gaussians`) and the population FAD is the squared shift.

Per replication and cell size (RAVDESS: 192 speech / 184 song clips per emotion, neutral
96 / 92; clips spread over the performers in turn): the study's KAD (``--kad-frames`` of
the ``--frames`` frames per clip, performers paired, kadtk's bandwidth rule on the music
cell) and its interval, `bootstrap_ci(..., distance="kad", paired=True)` with
``--n-boot`` performer resamples; the truth at the bandwidth used. Prints coverage with
its 95 % Clopper–Pearson interval (the nominal level must lie inside), the misses below
and above, and the estimate's mean error against its standard error (unbiasedness). The
FAD interval at this size is asked for too and must be refused, naming why.

    python benchmarks/bench_fad_coverage.py                      # 768 dims, 200 replications
    python benchmarks/bench_fad_coverage.py --dims 16 --reps 100 # a quick small-dims run
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

CELLS = {"full": (192, 184), "neutral": (96, 92)}


def spectrum(dims: int) -> np.ndarray:
    """Per-dim standard deviations, decaying as SSL embeddings' do."""
    return 1.0 / np.sqrt(1.0 + np.arange(dims) / 16.0)


def simulate(rng, clips: tuple[int, int], args, scales: np.ndarray, shift: np.ndarray):
    """(speech frames, speech performers, music frames, music performers): ``args.kad_frames``
    frames per clip (frames of a clip are exchangeable, so drawing only those the study keeps
    is the same as drawing ``args.frames`` and thinning)."""
    perf = rng.normal(size=(args.performers, scales.size)) * np.sqrt(0.5)
    out = []
    for count, offset in zip(clips, (np.zeros_like(shift), shift)):
        who = np.repeat(np.arange(count) % args.performers, args.kad_frames)
        clip = np.repeat(rng.normal(size=(count, scales.size)) * np.sqrt(0.5), args.kad_frames, axis=0)
        x = (perf[who] + clip + rng.normal(size=clip.shape)) * scales + offset
        out += [x, who]
    return out


def run_cell(name: str, clips: tuple[int, int], args) -> dict:
    from scipy import stats

    from hub_emo.analysis import bootstrap
    from hub_emo.analysis.kad import median_pairwise_distance, rbf_mmd2_gaussians

    scales = spectrum(args.dims)
    variances = 2.0 * scales**2  # performer 0.5 + clip 0.5 + frame 1, times the spectrum
    shift = scales * np.where(np.arange(args.dims) % 2, -1.0, 1.0)
    shift *= np.sqrt(args.shift * variances.sum() / (shift @ shift))  # FD = shift × Tr(Σ)
    covered = below = above = 0
    errors = []
    start = time.perf_counter()
    for rep in range(args.reps):
        rng = np.random.default_rng([args.seed, rep, clips[0]])
        a, who_a, b, who_b = simulate(rng, clips, args, scales, shift)
        h = median_pairwise_distance(b, seed=rep)
        truth = rbf_mmd2_gaussians(np.zeros(args.dims), variances, shift, variances, h)
        # bootstrap_ci's two steps, keeping the estimate for the bias check
        value, values = bootstrap.bootstrap_distances(a, who_a, b, who_b, n_boot=args.n_boot, seed=rep, paired=True,
                                                      bandwidth=h)
        low, high = bootstrap.interval("kad", value, values, 0.95)
        covered += low <= truth <= high
        below += high < truth
        above += low > truth
        errors.append((value - truth) / truth)
        if args.progress and (rep + 1) % args.progress == 0 and rep + 1 < args.reps:
            print(f"  {name}: {covered}/{rep + 1} covered so far", flush=True)
    test = stats.binomtest(covered, args.reps, 0.95)
    ci = test.proportion_ci(confidence_level=0.95, method="exact")
    errors = np.asarray(errors)
    print(f"{name:8} cells {clips[0]}/{clips[1]} clips: KAD interval coverage {covered}/{args.reps} = "
          f"{covered / args.reps:.3f} (95 % CI [{ci.low:.3f}, {ci.high:.3f}], nominal 0.95 "
          f"{'inside' if ci.low <= 0.95 <= ci.high else 'OUTSIDE'}); misses: truth below {above}, above {below}; "
          f"estimate − truth: mean {errors.mean():+.3f} ± {errors.std(ddof=1) / np.sqrt(errors.size):.3f} "
          f"(× truth); last truth {truth:.3g}; {time.perf_counter() - start:.0f} s", flush=True)
    return {"covered": covered, "inside": ci.low <= 0.95 <= ci.high}


def fad_refusal(args) -> str:
    from hub_emo.analysis import bootstrap_ci

    a, who_a, b, who_b = simulate(np.random.default_rng(0), CELLS["neutral"], args, spectrum(args.dims),
                                  np.zeros(args.dims))
    try:
        bootstrap_ci(a, who_a, b, who_b, distance="fad", n_boot=2, paired=True)
    except ValueError as error:
        return f"refused: {error}"
    return "given (this size is below the refusal threshold)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--performers", type=int, default=24)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--n-boot", type=int, default=100)
    parser.add_argument("--frames", type=int, default=32, help="the study's frames per clip (documentation)")
    parser.add_argument("--kad-frames", type=int, default=8, help="frames per clip in the kernel (the study's)")
    parser.add_argument("--shift", type=float, default=0.1,
                        help="music's mean shift: the population FAD as a fraction of the frames' total variance")
    parser.add_argument("--cells", nargs="*", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--progress", type=int, default=0, help="print the running coverage every N replications")
    args = parser.parse_args()
    print(f"{args.dims} dims, {args.performers} performers shared by speech and music, {args.reps} replications, "
          f"{args.n_boot} performer resamples, KAD on {args.kad_frames} of {args.frames} frames per clip; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    print(f"FAD interval at this size: {fad_refusal(args)}", flush=True)
    results = [run_cell(name, CELLS[name], args) for name in args.cells]
    return 0 if all(r["inside"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
