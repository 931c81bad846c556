"""Fréchet distance numerics and the per-emotion FAD study."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hub_emo.analysis import FrechetWarning, frechet_distance, frechet_distance_from_stats
from hub_emo.analysis.fad import (
    bootstrap_ci,
    fad_infinity,
    frechet_distance_reference,
    gaussian_stats,
)
from test_analysis_data import make_backbone_folder, make_dataset


def _random_spd(rng, dim, scale=1.0):
    a = rng.normal(size=(dim, dim))
    return scale * (a @ a.T / dim + 0.5 * np.eye(dim))


def test_identical_sets_are_zero_and_distance_is_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 24)), rng.normal(loc=0.3, size=(300, 24)) * 1.5
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-10)
    assert frechet_distance(a, b) > 1.0


@pytest.mark.parametrize("dim", [8, 64, 256])
def test_matches_scipy_sqrtm_reference(dim):
    rng = np.random.default_rng(dim)
    mu_a, mu_b = rng.normal(size=dim), rng.normal(size=dim)
    cov_a, cov_b = _random_spd(rng, dim), _random_spd(rng, dim, 2.0)
    ours = frechet_distance_from_stats(mu_a, cov_a, mu_b, cov_b)
    reference = frechet_distance_reference(mu_a, cov_a, mu_b, cov_b)
    assert abs(ours - reference) / reference <= 1e-6


def test_closed_forms_for_gaussians():
    # 1-D: (m1 - m2)² + (s1 - s2)²
    assert frechet_distance_from_stats([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9.0 + 1.0)
    # diagonal: the sum of the 1-D distances
    var_a, var_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()
    assert frechet_distance_from_stats(mu_a, np.diag(var_a), mu_b, np.diag(var_b)) == pytest.approx(expected)
    # scaled copies: Tr((S c²S)^½) = c Tr(S), so FD = (1 - c)² Tr(S)
    rng = np.random.default_rng(1)
    cov = _random_spd(rng, 16)
    assert frechet_distance_from_stats(np.zeros(16), cov, np.zeros(16), 9.0 * cov) == pytest.approx(4.0 * np.trace(cov))


def test_sample_estimate_approaches_the_true_distance():
    rng = np.random.default_rng(2)
    a = rng.normal(loc=1.0, scale=2.0, size=(20000, 3))
    b = rng.normal(loc=0.0, scale=1.0, size=(20000, 3))
    assert frechet_distance(a, b) == pytest.approx(3 * (1.0 + 1.0), rel=0.03)


def test_singular_covariances_warn_and_stay_exact():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(10, 32)), rng.normal(size=(12, 32)) + 0.5
    with pytest.warns(FrechetWarning, match="needs at least 33 frames"):
        value = frechet_distance(a, b)
    assert np.isfinite(value) and value > 0
    reference = frechet_distance_reference(*gaussian_stats(a), *gaussian_stats(b))
    assert value == pytest.approx(reference, rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough frames: no warning
        frechet_distance(rng.normal(size=(100, 8)), rng.normal(size=(100, 8)))


def test_one_or_both_covariances_singular_match_reference_and_inputs_stay_untouched():
    rng = np.random.default_rng(6)
    singular = gaussian_stats(rng.normal(size=(10, 32)))  # rank 9: no Cholesky factor
    other_singular = gaussian_stats(rng.normal(size=(12, 32)) + 0.5)
    full = gaussian_stats(rng.normal(size=(200, 32)))
    for stats in (singular + full, full + singular, singular + other_singular):
        copies = [np.array(s, copy=True) for s in stats]
        reference = frechet_distance_reference(*stats)
        assert frechet_distance_from_stats(*stats) == pytest.approx(reference, rel=1e-6)
        assert all(np.array_equal(s, c) for s, c in zip(stats, copies))
    # Fortran-ordered and strided covariances give the same value as C-ordered ones
    mu_a, cov_a, mu_b, cov_b = full + other_singular
    value = frechet_distance_from_stats(mu_a, cov_a, mu_b, cov_b)
    wide = np.zeros((32, 64))
    wide[:, ::2] = cov_b
    assert frechet_distance_from_stats(mu_a, np.asfortranarray(cov_a), mu_b, wide[:, ::2]) == pytest.approx(value, rel=1e-12)


def test_bad_inputs_raise_clear_errors():
    rng = np.random.default_rng(4)
    with pytest.raises(ValueError, match="different dims"):
        frechet_distance(rng.normal(size=(50, 4)), rng.normal(size=(50, 5)))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.full((50, 4), np.nan), rng.normal(size=(50, 4)))
    with pytest.raises(ValueError, match="at least 2 frames"), pytest.warns(FrechetWarning):
        frechet_distance(rng.normal(size=(1, 4)), rng.normal(size=(50, 4)))
    with pytest.raises(ValueError, match=r"\(3, 3\) covariance"):
        frechet_distance_from_stats(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))


def test_bootstrap_interval_contains_full_value_and_shrinks_with_data():
    rng = np.random.default_rng(5)

    def sets(clips):
        a = rng.normal(size=(clips * 20, 4))
        b = rng.normal(loc=0.5, size=(clips * 20, 4))
        ids = np.repeat(np.arange(clips), 20)
        return a, ids, b, ids

    small = sets(10)
    full = frechet_distance(small[0], small[2])
    low, high = bootstrap_ci(*small, n_boot=60, seed=0)
    assert low <= full <= high and high > low
    large = sets(80)
    low_l, high_l = bootstrap_ci(*large, n_boot=60, seed=0)
    assert high_l - low_l < high - low


def test_fad_infinity_removes_small_sample_bias():
    """Two Gaussians one unit apart in one dim (true FD = 1), 300 frames × 16 dims each."""
    plain, extrapolated = [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        a = rng.normal(size=(300, 16))
        b = rng.normal(size=(300, 16)) + np.eye(16)[0]
        plain.append(frechet_distance(a, b) - 1.0)
        infinity, r2 = fad_infinity(a, b, steps=8, min_fraction=0.3, seed=seed)
        extrapolated.append(infinity - 1.0)
        assert r2 > 0.5
    assert min(plain) > 0  # the plain estimate is biased upwards
    assert np.mean(np.abs(extrapolated)) < np.mean(np.abs(plain)) / 2


# ---- the study on a tiny model and generated audio ---------------------------------------


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("fad")
    return make_dataset(root / "wavs", per_cell=2), make_backbone_folder(root / "model")


def test_run_fad_writes_report_tables_and_plots(study, tmp_path):
    from hub_emo.analysis import run_fad

    dataset, model = study
    result = run_fad({"tiny": str(model)}, dataset, ["happy", "sad", "angry"], [0, -1], tmp_path,
                     n_boot=10, frames_per_clip=16, progress=False)
    assert {(r["layer"], r["emotion"]) for r in result.rows} == {
        (k, e) for k in (0, 2) for e in ("happy", "sad", "angry")}
    for row in result.rows:
        assert np.isfinite(row["fad"]) and row["speech_clips"] == row["music_clips"] == 4
        if row["layer"] == 2:  # the report layer: bootstrapped
            assert row["ci_low"] <= row["fad"] <= row["ci_high"]
        else:
            assert row["ci_low"] is None and row["ci_high"] is None
    assert sorted(v for k, v in result.bias[0].items() if k not in ("model", "layer")) == [1, 2, 3]
    assert {w["domain"] for w in result.within} == {"speech", "music"}
    text = result.report.read_text()
    assert "Emotion bias" in text and "fad_heatmap_tiny.png" in text
    for name in ("fad_heatmap_tiny.png", "fad_by_emotion.png", "fad.csv", "fad_within_tiny_music.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "best" not in result.summary() and "tiny" in result.summary()
    assert "at the report layer only" in text


def test_run_fad_bad_inputs(study, tmp_path):
    from hub_emo.analysis import run_fad

    dataset, model = study
    speech_only = dataset.filter(lambda d: d == 0, input_columns="domain")
    with pytest.raises(ValueError, match="no music clips"):
        run_fad({"tiny": str(model)}, speech_only, ["happy", "sad"], None, tmp_path, n_boot=0, progress=False)
    with pytest.raises(ValueError, match="layer 7 does not exist"):
        run_fad({"tiny": str(model)}, dataset, ["happy", "sad"], [7], tmp_path, n_boot=0, progress=False)
    # 'sad' keeps one music clip: too few, named in a warning with the number needed
    drop = dataset.filter(lambda i: not (i.startswith("music-sad") and not i.endswith("1-0")), input_columns="id")
    result = run_fad({"tiny": str(model)}, drop, ["happy", "sad"], [-1], tmp_path, n_boot=0,
                     frames_per_clip=4, progress=False)
    assert {r["emotion"] for r in result.rows} == {"happy"}
    assert any("sad/music has 1 clip(s); needs at least 2" in w for w in result.warnings)
    assert any("singular covariance" in w and "needs ≥ 9 clips" in w for w in result.warnings)
    assert "sad/music has 1 clip" in result.report.read_text()


def test_run_fad_report_layer_and_bootstrap_everywhere(study, tmp_path):
    from hub_emo.analysis import run_fad

    dataset, model = study
    result = run_fad({"tiny": str(model)}, dataset, ["happy", "sad"], [1, 2], tmp_path, report_layer=1,
                     bootstrap_all_layers=True, n_boot=5, frames_per_clip=16, within_domain=False,
                     progress=False)
    assert result.bias[0]["layer"] == 1 and not result.within
    assert all(r["ci_low"] <= r["fad"] <= r["ci_high"] for r in result.rows)
    moved = run_fad({"tiny": str(model)}, dataset, ["happy", "sad"], [2], tmp_path, report_layer=0,
                    n_boot=0, frames_per_clip=16, progress=False)
    assert moved.bias[0]["layer"] == 2
    assert any("report layer 0 is not among the scored layers [2]" in w for w in moved.warnings)
