"""Fréchet distance numerics and the per-emotion FAD study."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from hub_emo.analysis import FrechetWarning, fad_infinity, frechet_distance, frechet_distance_from_stats
from hub_emo.analysis.fad import Cell, LayerPlan, score_layer
from hub_emo.analysis.ranking import kendall_tau_test
from hub_emo.analysis.frechet import (
    FrameSet,
    fit_gaussian,
    frechet_distance_reference,
    gaussian_distance,
    gaussian_stats,
)
from hub_emo.demo.report import fad_section
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


def test_frame_space_distance_matches_the_dense_one():
    """Sets with fewer frames than dims (and bootstrap weights) take the frames × frames route."""
    rng = np.random.default_rng(7)
    small, other_small = rng.normal(size=(10, 32)), rng.normal(size=(14, 32)) * 1.3
    large = rng.normal(size=(90, 32)) + 0.2
    weights = rng.integers(0, 3, size=10)
    for a, w, b in ((small, None, other_small), (small, weights, large), (large, None, small), (large, None, 2 * large)):
        fitted = gaussian_distance(fit_gaussian(a, w), fit_gaussian(b))
        assert fitted == pytest.approx(frechet_distance_reference(*gaussian_stats(a, w), *gaussian_stats(b)), rel=1e-6)


def test_subsets_and_resamples_from_sufficient_statistics_equal_direct_fits():
    """Clip subsets (from the full Gram minus the dropped frames) and cluster resamples (a
    weighted sum of per-cluster Grams) give the Gaussians and distances of refitting their frames."""
    rng = np.random.default_rng(10)
    emb = np.repeat(rng.normal(size=(30, 6)), 8, axis=0) + rng.normal(size=(240, 6)) + 50.0  # far-off mean
    clip, other = np.repeat(np.arange(30), 8), fit_gaussian(rng.normal(size=(100, 6)))
    frames = FrameSet(emb, clip)
    for picked in (rng.choice(30, 25, replace=False), rng.choice(30, 10, replace=False), np.arange(30)):
        direct = fit_gaussian(emb[np.isin(clip, picked)])
        subset = frames.clip_subset(picked)
        np.testing.assert_allclose(subset.mean, direct.mean, rtol=1e-12)
        np.testing.assert_allclose(subset.cov, direct.cov, rtol=1e-10, atol=1e-12)
        assert gaussian_distance(subset, other) == pytest.approx(gaussian_distance(direct, other), rel=1e-10)
    performer = clip % 5 + 3
    counts = rng.multinomial(9, np.full(9, 1 / 9), size=20)
    counts[0, 3:8] = 0  # no frame left: no Gaussian
    for w, fit in zip(counts, frames.resamples(performer, counts), strict=True):
        if w[performer].sum() < 2:
            assert fit is None
            continue
        direct = fit_gaussian(emb, w[performer])
        np.testing.assert_allclose(fit.mean, direct.mean, rtol=1e-12)
        assert gaussian_distance(fit, other) == pytest.approx(gaussian_distance(direct, other), rel=1e-10)


# ---- estimators against simulations of known truth ----------------------------------------
#
# Frames x = clip effect u + frame noise e, u ~ N(0, clip_sd² I), e ~ N(0, I): frames of a clip
# are correlated, as in real audio. Music is shifted by ``shift`` along one axis, so the true
# distance between the domains' frame distributions is shift².


def simulate(rng, clips, shift, *, dim=8, frames=10, clip_sd=1.0):
    x = np.repeat(rng.normal(size=(clips, dim)) * clip_sd, frames, axis=0) + rng.normal(size=(clips * frames, dim))
    x[:, 0] += shift
    return x, np.repeat(np.arange(clips), frames)


def test_clip_level_fad_infinity_is_closer_to_the_truth_than_plain_and_frame_level_fad():
    truth, plain, frame_level, clip_level = 1.5**2, [], [], []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        (a, clips_a), (b, clips_b) = simulate(rng, 24, 0.0, frames=20), simulate(rng, 24, 1.5, frames=20)
        plain.append(frechet_distance(a, b))
        frame_level.append(fad_infinity(a, b, seed=seed)[0])
        clip_level.append(fad_infinity(a, b, clips_a=clips_a, clips_b=clips_b, seed=seed)[0])
    error = {k: abs(np.mean(v) - truth) for k, v in (("plain", plain), ("frames", frame_level), ("clips", clip_level))}
    assert error["plain"] > 1.0 and error["frames"] > 0.6 * error["plain"]  # subsampling frames barely helps
    assert error["clips"] < error["plain"] / 4
    two = clips_a < 2  # two clips a side: every subset is both clips, nothing to extrapolate
    assert np.isnan(fad_infinity(a[two], b[two], clips_a=clips_a[two], clips_b=clips_b[two])).all()


def _study(rng, counts: dict, shifts: dict, performers=5, spread=None, dim=8):
    """Stacked frames and emotion × domain cells; performers shared by speech and music
    (None: every clip its own unit). ``spread``: per emotion, a factor on every frame's
    deviation from its domain's mean."""
    parts, cells, offset = [], {}, 0
    total = sum(2 * c * 10 for c in counts.values())
    for emotion, count in counts.items():
        for domain, shift in (("speech", 0.0), ("music", shifts[emotion])):
            x, clip = simulate(rng, count, 0.0, dim=dim)
            x = x * (spread or {}).get(emotion, 1.0)
            x[:, 0] += shift
            mask = np.zeros(total, dtype=bool)
            mask[offset:offset + len(x)] = True
            cells[(emotion, domain)] = Cell(mask, clip + offset, clip % performers if performers else clip + offset)
            parts.append(x)
            offset += len(x)
    return np.concatenate(parts), cells


def _plan(classes, seed, counts=None, **extra):
    return LayerPlan(classes=tuple(classes), inf_steps=3, inf_min_fraction=0.5, confidence=0.95, seed=seed,
                     counts=counts, within_domain=False, kad_frames=0, **extra)


@pytest.mark.parametrize("counts", [{"happy": 8, "sad": 16, "angry": 32}, {"happy": 32, "sad": 16, "angry": 8}])
def test_the_ranking_does_not_move_with_sample_size(counts):
    """True distances 1 < 4 < 9 (FAD; KAD in the same order); with the closest emotion given
    the fewest clips the plain FAD misorders them, KAD keeps the true order whichever way counts go."""
    shifts, right_raw, right_kad = {"happy": 1.0, "sad": 2.0, "angry": 3.0}, 0, 0
    for seed in range(12):
        frames, cells = _study(np.random.default_rng(seed), counts, shifts)
        rows, _, _ = score_layer(frames, cells, _plan(shifts, seed))
        right_raw += sorted(rows, key=lambda e: rows[e]["fad"]) == list(shifts)
        right_kad += sorted(rows, key=lambda e: rows[e]["kad"]) == list(shifts)
    assert right_kad >= 10
    if counts["happy"] < counts["angry"]:
        assert right_raw <= 8


def test_the_ranking_does_not_move_with_spread():
    """Equal counts (64 clips), 16 dims; 'calm' lies closer (FD 2.0) but its frames spread 1.3× wider,
    'sad' lies farther (FD 2.8). FAD's bias grows with the spread and reverses the order;
    KAD at the layer's one bandwidth (the study's ranked value) keeps it (≥ 90 % of 60 studies)."""
    from hub_emo.analysis.kad import rbf_mmd2_gaussians

    shifts, spread = {"calm": 2.0**0.5, "sad": 2.8**0.5}, {"calm": 1.3}
    right_fad = right_kad = 0
    for seed in range(60):
        rng = np.random.default_rng(500 + seed)
        frames, cells = _study(rng, {"calm": 64, "sad": 64}, shifts, performers=None, spread=spread, dim=16)
        rows, _, _ = score_layer(frames, cells, _plan(shifts, seed))
        right_fad += rows["calm"]["fad"] < rows["sad"]["fad"]
        right_kad += rows["calm"]["kad"] < rows["sad"]["kad"]
    h = rows["calm"]["bandwidth"]  # the population order at that bandwidth is the FD order
    cov = 2.0 * np.eye(16)  # clip effect + frame noise
    truth = {e: rbf_mmd2_gaussians(np.zeros(16), cov * spread.get(e, 1.0) ** 2, np.eye(16)[0] * shifts[e],
                                   cov * spread.get(e, 1.0) ** 2, h) for e in shifts}
    assert truth["calm"] < truth["sad"]
    assert right_fad <= 30  # the confound: FAD's order is a coin toss or worse
    assert right_kad >= 54


def test_kendall_tau_exact_permutation_p_value():
    from scipy import stats

    same = [0.5, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert kendall_tau_test(same, same) == pytest.approx((1.0, 2 / 720))  # identity and reversal of 720 orders
    one_swap = [0.5, 2.0, 1.0, 3.0, 4.0, 5.0]
    tau, p = kendall_tau_test(same, one_swap)
    assert tau == pytest.approx(13 / 15) and p == pytest.approx(12 / 720)  # 1 + 5 orders per side at |τ| ≥ 13/15
    rng = np.random.default_rng(9)
    for _ in range(5):
        a, b = rng.normal(size=6), rng.normal(size=6)
        expected = stats.kendalltau(a, b, method="exact")
        assert kendall_tau_test(a, b) == pytest.approx((expected.statistic, expected.pvalue))


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
    result = run_fad({"tiny": str(model), "twin": str(model)}, dataset, ["happy", "sad", "angry"], [0, -1],
                     tmp_path, n_boot=10, frames_per_clip=16, progress=False)
    assert {(r["model"], r["layer"], r["emotion"]) for r in result.rows} == {
        (m, k, e) for m in ("tiny", "twin") for k in (0, 2) for e in ("happy", "sad", "angry")}
    for row in result.rows:
        assert np.isfinite(row["fad"]) and np.isfinite(row["kad"])
        assert row["speech_clips"] == row["music_clips"] == 4
        if row["layer"] == 2:  # the report layer: bootstrapped; FAD's interval refused at 32 dims, 2 performers
            assert row["kad_low"] <= row["kad_high"] and row["fad_low"] is None and row["fad_inf"] is not None
        else:
            assert row["kad_low"] is None and row["fad_inf"] is None
    assert sorted(v for k, v in result.bias[0].items() if k not in ("model", "layer")) == [1, 2, 3]
    assert [r["rank"] for r in result.ranking if r["model"] == "tiny"] == [1, 2, 3]
    # the same model twice: the same order, τ = 1, exact p = 2 of 3! orderings, interval [1, 1]
    report_agreement = [a for a in result.rank_agreement if a["layer"] == "report"][0]
    assert report_agreement["kendall_tau"] == pytest.approx(1.0)
    assert report_agreement["kendall_p"] == pytest.approx(2 / 6)
    assert report_agreement["tau_low"] == report_agreement["tau_high"] == pytest.approx(1.0)
    assert {w["domain"] for w in result.within} == {"speech", "music"}
    text = result.report.read_text()
    for expected in ("Emotion bias", "fad_heatmap_tiny.png", "percentile for KAD", "kendall_p", "kad_low",
                     "speech_clips", "2 shared by speech and music", "at the report layer only", "no interval for FAD"):
        assert expected in text
    for name in ("fad_heatmap_tiny.png", "fad_by_emotion.png", "fad.csv", "fad_within_tiny_music.png"):
        assert (tmp_path / name).stat().st_size > 0
    section = "\n".join(fad_section(result, tmp_path))  # the demo report's FAD section
    for expected in ("happy", "by KAD", "exact permutation p = 0.333", "bootstrap interval [1.00, 1.00]",
                     "percentile for KAD", "; 4/4)", "no interval for FAD: 32 dims against 2"):
        assert expected in section
    summary = result.summary()
    assert "best" not in summary and "clips: speech 4, music 4" in summary and "exact permutation p = 0.333" in summary


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


def test_run_fad_report_layer_and_bootstrap_everywhere(study, tmp_path, capsys):
    from hub_emo.analysis import run_fad

    dataset, model = study
    result = run_fad({"tiny": str(model)}, dataset, ["happy", "sad"], [1, 2], tmp_path, report_layer=1,
                     bootstrap_all_layers=True, n_boot=5, frames_per_clip=16, within_domain=False,
                     progress=True)
    assert "FAD (model × layer)" not in capsys.readouterr().err  # the progress bar is for terminals only
    assert result.bias[0]["layer"] == 1 and not result.within
    assert all(r["kad_low"] <= r["kad_high"] for r in result.rows)
    moved = run_fad({"tiny": str(model)}, dataset, ["happy", "sad"], [2], tmp_path, report_layer=0,
                    n_boot=0, frames_per_clip=16, progress=False)
    assert moved.bias[0]["layer"] == 2
    assert any("report layer 0 is not among the scored layers [2]" in w for w in moved.warnings)
