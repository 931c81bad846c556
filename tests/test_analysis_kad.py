"""The Kernel Audio Distance: kadtk's number, unbiased with clustered frames, and the device path."""

from __future__ import annotations

import numpy as np
import pytest

from hub_emo.analysis import kad
from hub_emo.analysis.kad import KernelSums, median_pairwise_distance, rbf_mmd2_gaussians, thin_frames

# kadtk 1.1.0 (`kadtk.kad.calc_kernel_audio_distance`, its own kad.py, run in a scratch venv)
# on a = N(0, I) (n × d), b = 1.2 N(0, I) + 0.1 (m × d) from np.random.default_rng(seed):
# (seed, n, m, d, its bandwidth (median pairwise distance of b, float32), KAD in float64, KAD in float32)
KADTK = [
    (11, 300, 250, 16, 6.802959442138672, 0.7552514028524859, 0.7552504539489746),
    (12, 120, 100, 64, 13.48214340209961, 0.8667702452317183, 0.8667707443237305),
]


@pytest.mark.parametrize("case", KADTK)
def test_equals_kadtk_without_ids(case):
    seed, n, m, d, bandwidth, value64, value32 = case
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.2 + 0.1
    assert median_pairwise_distance(b) == pytest.approx(bandwidth, rel=1e-6)  # kadtk's is a float32 median
    assert kad(a, b, bandwidth=bandwidth) == pytest.approx(value64, rel=1e-12)
    assert kad(a, b) == pytest.approx(value64, rel=1e-5)
    assert kad(a, b) == pytest.approx(value32, rel=1e-4)  # kadtk's default precision is float32
    assert kad(a, b, bandwidth=bandwidth, scale=1.0) == pytest.approx(value64 / 100, rel=1e-12)


def test_pairs_sharing_an_id_are_left_out():
    """Against the definition, pair by pair."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(9, 3)), rng.normal(size=(7, 3)) + 0.5
    ids_a, ids_b = np.array([0, 0, 1, 1, 1, 2, 3, 3, 4]), np.array([1, 1, 2, 5, 5, 6, 6])
    h = 1.7

    def mean_kernel(x, y, ix, iy):
        values = [np.exp(-np.sum((p - q) ** 2) / (2 * h**2 + 1e-8))
                  for p, i in zip(x, ix) for q, j in zip(y, iy) if i != j]
        return np.mean(values)

    for paired in (False, True):
        cross_ids = (ids_a, ids_b) if paired else (ids_a, ids_b + 100)
        expected = mean_kernel(a, a, ids_a, ids_a) + mean_kernel(b, b, ids_b, ids_b) - 2 * mean_kernel(a, b, *cross_ids)
        ours = kad(a, b, clips_a=ids_a, clips_b=ids_b, bandwidth=h, paired=paired, scale=1.0)
        assert ours == pytest.approx(expected, rel=1e-12)


def _clustered(rng, performers, shift, *, dim=6, clips=2, frames=5, shared=None):
    """Frames = performer effect + clip effect + noise; ``shared``: the performer effects
    (the same performers in both domains)."""
    perf = rng.normal(size=(performers, dim)) * 0.8 if shared is None else shared
    who = np.repeat(np.arange(performers), clips * frames)
    x = perf[who] + np.repeat(rng.normal(size=(performers * clips, dim)) * 0.8, frames, axis=0)
    x = x + rng.normal(size=x.shape)
    x[:, 0] += shift
    return x, who


def test_unbiased_with_clustered_frames_and_shared_performers():
    """Two samples of one population average 0 within their standard error once pairs of
    one performer are left out (kadtk's frame-level U-statistic is biased upwards); two
    Gaussians apart average the analytic RBF MMD²."""
    dim, h = 6, 4.0
    cov = (0.64 + 0.64 + 1.0) * np.eye(dim)
    truth = rbf_mmd2_gaussians(np.zeros(dim), cov, np.eye(dim)[0] * 1.0, cov, h)
    same, same_naive, apart = [], [], []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        perf = rng.normal(size=(12, dim)) * 0.8
        (a, who), (b, _) = _clustered(rng, 12, 0.0, shared=perf), _clustered(rng, 12, 0.0, shared=perf)
        same.append(kad(a, b, clips_a=who, clips_b=who, bandwidth=h, paired=True))
        same_naive.append(kad(a, b, bandwidth=h))
        (c, _), _ = _clustered(rng, 12, 1.0, shared=perf), None
        apart.append(kad(a, c, clips_a=who, clips_b=who, bandwidth=h, paired=True))

    def standard_error(values):
        return np.std(values, ddof=1) / np.sqrt(len(values))

    assert abs(np.mean(same)) < 2.5 * standard_error(same)
    assert np.mean(same_naive) > 5 * standard_error(same_naive)
    assert abs(np.mean(apart) - truth) < 2.5 * standard_error(apart)


def test_analytic_value_of_gaussians_matches_samples():
    cov_b = np.diag([1.0, 2.0, 0.5])
    truth = rbf_mmd2_gaussians(np.zeros(3), np.eye(3), [0.7, 0, 0], cov_b, 2.0)
    values = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        a, b = rng.normal(size=(1500, 3)), rng.normal(size=(1500, 3)) @ np.sqrt(cov_b) + np.array([0.7, 0.0, 0.0])
        values.append(kad(a, b, bandwidth=2.0))
    assert abs(np.mean(values) - truth) < 3 * np.std(values, ddof=1) / np.sqrt(len(values))
    assert abs(np.mean(values) - truth) < 0.05 * truth


def test_resampled_values_equal_the_estimate_on_the_resampled_frames():
    """A cluster resample's KAD from the block sums is the KAD of the frames it repeats,
    copies of one id keeping that id (so pairs between copies are left out too)."""
    rng = np.random.default_rng(5)
    (a, who), (b, _) = _clustered(rng, 5, 0.0), _clustered(rng, 5, 0.5)
    sums = KernelSums(a, b, clips_a=who, clips_b=who, bandwidth=3.0, paired=True)
    weights = np.array([2, 0, 1, 1, 1])
    repeat = np.repeat(np.arange(len(who)), weights[who])
    direct = kad(a[repeat], b[repeat], clips_a=who[repeat], clips_b=who[repeat], bandwidth=3.0, paired=True)
    assert sums.values(weights, weights)[0] * 100 == pytest.approx(direct, rel=1e-12)


def test_thin_frames_keeps_evenly_spaced_frames_per_clip():
    clips = np.repeat([3, 1, 2], [10, 3, 8])
    keep = thin_frames(clips, 4)
    assert [list(np.flatnonzero(keep & (clips == c)) - np.flatnonzero(clips == c)[0]) for c in (3, 1, 2)] == [
        [0, 3, 5, 8], [0, 1, 2], [0, 2, 4, 6]]
    assert thin_frames(clips, 0).all()


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="different dims"):
        kad(rng.normal(size=(5, 3)), rng.normal(size=(5, 4)))
    with pytest.raises(ValueError, match="at least 2 distinct ids"):
        kad(rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), clips_a=np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        kad(np.full((5, 3), np.nan), rng.normal(size=(5, 3)))
    with pytest.raises(ValueError, match="bandwidth must be positive"):
        kad(rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), bandwidth=0.0)


def test_torch_path_equals_the_numpy_path():
    """What runs on a GPU (torch.linalg, float64), run here on the CPU: the same numbers."""
    from hub_emo.analysis import linalg
    from hub_emo.analysis.frechet import fit_gaussian, gaussian_distance

    rng = np.random.default_rng(2)
    (a, who), (b, _) = _clustered(rng, 6, 0.0, dim=12), _clustered(rng, 6, 0.8, dim=12)
    small = rng.normal(size=(8, 12))
    cases = {
        "kad": lambda: kad(a, b, clips_a=who, clips_b=who, paired=True),
        "kad frames": lambda: kad(a, b),
        "dense FD": lambda: gaussian_distance(fit_gaussian(a), fit_gaussian(b)),
        "frame-space FD": lambda: gaussian_distance(fit_gaussian(small), fit_gaussian(small[:6] + 1)),
        "mixed FD": lambda: gaussian_distance(fit_gaussian(small), fit_gaussian(b)),
    }
    with linalg.on_device(None):
        numpy_values = {k: f() for k, f in cases.items()}
    with linalg.on_device("cpu"):
        torch_values = {k: f() for k, f in cases.items()}
    for key, value in numpy_values.items():
        assert torch_values[key] == pytest.approx(value, rel=1e-10, abs=1e-12), key
