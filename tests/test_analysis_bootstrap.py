"""Cluster-bootstrap intervals against simulations of known truth (small dims: the 768-dim
versions are in benchmarks/bench_fad_coverage.py), and the study running these same functions."""

from __future__ import annotations

import numpy as np
import pytest

from hub_emo.analysis import bootstrap_ci
from hub_emo.analysis.bootstrap import bootstrap_distances, cluster_resamples, pair_resamples
from hub_emo.analysis.fad import Cell, LayerPlan, score_layer
from hub_emo.analysis.kad import rbf_mmd2_gaussians


def simulate(rng, performers, shift, *, dim=8, clips=2, frames=5, perf=None):
    """Frames = performer effect (shared by both domains when ``perf`` is given) + clip
    effect + noise, each N(0, 0.7² I), N(0, 0.7² I), N(0, I); music shifted along one axis."""
    perf = rng.normal(size=(performers, dim)) * 0.7 if perf is None else perf
    who = np.repeat(np.arange(performers), clips * frames)
    x = perf[who] + np.repeat(rng.normal(size=(performers * clips, dim)) * 0.7, frames, axis=0)
    x = x + rng.normal(size=x.shape)
    x[:, 0] += shift
    return x, who


def _pair(rng, performers, shift, dim=8):
    perf = rng.normal(size=(performers, dim)) * 0.7
    (a, who), (b, _) = simulate(rng, performers, 0.0, dim=dim, perf=perf), simulate(rng, performers, shift, dim=dim,
                                                                                     perf=perf)
    return a, b, who


def test_ids_are_per_set_unless_pairing_is_asked_for():
    """0-based clip ids in both sets name different clips: resampled apart by default; one
    draw for both only with ``paired=True`` (performers heard in both sets)."""
    ids = np.arange(12)
    w_a, w_b = pair_resamples(ids, ids, 50, 0, paired=False)
    assert not np.array_equal(w_a, w_b) and (w_a.sum(1) == 12).all() and (w_b.sum(1) == 12).all()
    w_a, w_b = pair_resamples(ids, ids, 50, 0, paired=True)
    assert np.array_equal(w_a, w_b)
    w_a, w_b = pair_resamples(np.arange(6), np.arange(3, 9), 50, 0, paired=True)  # 3 shared of 9
    assert np.array_equal(w_a[:, 3:], w_b[:, :3]) and (w_a.sum(1) + w_b[:, 3:].sum(1) == 9).all()
    rng = np.random.default_rng(8)
    a, b, who = _pair(rng, 6, 1.0, dim=3)
    assert bootstrap_ci(a, who, b, who, n_boot=30) != bootstrap_ci(a, who, b, who, n_boot=30, paired=True)


def test_resamples_keep_two_clusters_per_set():
    counts = cluster_resamples([np.arange(3)], 3, 200, 0, keep=[np.arange(3)])
    assert (np.count_nonzero(counts, axis=1) >= 2).all()
    with pytest.raises(ValueError, match="too few clusters"):
        cluster_resamples([np.arange(2)], 2, 50, 0, keep=[np.array([0])])


def test_kad_percentile_interval_covers_at_its_nominal_rate():
    """95 % intervals over 60 simulated studies (8 dims, 24 performers shared by speech and
    music, 100 resamples); the truth is the analytic RBF MMD² at the bandwidth used."""
    dim, h, covered = 8, 4.0, 0
    cov = (0.49 + 0.49 + 1.0) * np.eye(dim)
    truth = rbf_mmd2_gaussians(np.zeros(dim), cov, np.eye(dim)[0] * 1.0, cov, h)
    for seed in range(60):
        a, b, who = _pair(np.random.default_rng(2000 + seed), 24, 1.0)
        low, high = bootstrap_ci(a, who, b, who, n_boot=100, seed=seed, paired=True, bandwidth=h)
        covered += low <= truth <= high
    assert covered >= 54  # ≥ 90 %: 57 expected


def test_fad_basic_interval_covers_where_it_is_given_and_is_refused_above():
    """8 dims, 16 performers: the basic interval covers (a percentile one shifted to the
    estimate, from the same resamples, does not); at 32 dims against 16 performers it is refused."""
    truth, covered, covered_shifted = 1.5**2, 0, 0
    for seed in range(40):
        a, b, who = _pair(np.random.default_rng(1000 + seed), 16, 1.5)
        low, high = bootstrap_ci(a, who, b, who, distance="fad", n_boot=60, seed=seed, paired=True)
        covered += low <= truth <= high
        full, replicates = bootstrap_distances(a, who, b, who, distance="fad", n_boot=60, seed=seed, paired=True)
        q_lo, median, q_hi = np.quantile(replicates, [0.025, 0.5, 0.975])
        covered_shifted += q_lo - (median - full) <= truth <= q_hi - (median - full)
    assert covered >= 36  # ≥ 90 %
    assert covered_shifted < covered
    a, b, who = _pair(np.random.default_rng(0), 16, 1.5, dim=32)
    with pytest.raises(ValueError, match="no interval for FAD: 32 dims against 16 independent units"):
        bootstrap_ci(a, who, b, who, distance="fad", paired=True)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(a, who, b, who, confidence=95)
    with pytest.raises(ValueError, match="one id per frame"):
        bootstrap_ci(a, who[:-1], b, who, n_boot=10)
    with pytest.raises(ValueError, match="'kad' or 'fad'"):
        bootstrap_ci(a, who, b, who, distance="fid")


def test_the_study_runs_the_tested_interval():
    """`score_layer` with the study's shared resamples gives exactly `bootstrap_ci`'s intervals
    (same seed, performers paired), for KAD and for FAD."""
    rng = np.random.default_rng(4)
    a, b, who = _pair(rng, 20, 1.0, dim=6)
    frames = np.concatenate([a, b])
    speech, music = np.arange(len(frames)) < len(a), np.arange(len(frames)) >= len(a)
    clip = np.concatenate([np.arange(len(a)) // 5, 1000 + np.arange(len(b)) // 5])
    cells = {("happy", "speech"): Cell(speech, clip[speech], who), ("happy", "music"): Cell(music, clip[music], who)}
    counts = cluster_resamples([np.arange(20)], 20, 80, 7, keep=[np.unique(who)])
    plan = LayerPlan(classes=("happy",), inf_steps=3, inf_min_fraction=0.5, confidence=0.9, seed=0, counts=counts,
                     kad_frames=0, within_domain=False)
    rows, replicates, _ = score_layer(frames, cells, plan)
    row = rows["happy"]
    kad_ci = bootstrap_ci(a, who, b, who, n_boot=80, seed=7, paired=True, bandwidth=row["bandwidth"], confidence=0.9)
    fad_ci = bootstrap_ci(a, who, b, who, distance="fad", n_boot=80, seed=7, paired=True, confidence=0.9)
    assert (row["kad_low"], row["kad_high"]) == pytest.approx(kad_ci, rel=1e-10)
    assert (row["fad_low"], row["fad_high"]) == pytest.approx(fad_ci, rel=1e-10)
    assert replicates["happy"].shape == (80,)


def test_study_resamples_draw_performers_once_and_clips_per_cell():
    """Performers: one draw over all of them (as ``paired=True``); clips: each emotion ×
    domain's clips resampled to their own count (as per-set ids)."""
    from hub_emo.analysis.fad import study_resamples

    meta = {"label": np.array([0, 0, 0, 1, 1, 1, 0, 0]), "domain": np.array(["speech"] * 6 + ["music"] * 2)}
    clip_cells = {"m": {(e, d): Cell(np.zeros(1, bool), rows, rows) for e, d, rows in (
        ("a", "speech", np.array([0, 1, 2])), ("b", "speech", np.array([3, 4, 5])), ("a", "music", np.array([6, 7])))}}
    counts = study_resamples(meta, np.arange(8), clip_cells, "clip", 40, 0)
    assert (counts[:, :3].sum(1) == 3).all() and (counts[:, 3:6].sum(1) == 3).all()
    assert (counts[:, 6:].sum(1) == 2).all()
    performer = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    cells = {"m": {("a", "speech"): Cell(np.zeros(1, bool), np.arange(3), performer[:3])}}
    counts = study_resamples(meta, performer, cells, "performer", 40, 3)
    assert counts.shape == (40, 3) and (counts.sum(1) == 3).all()
    np.testing.assert_array_equal(counts, cluster_resamples([np.arange(3)], 3, 40, 3, keep=[np.arange(3)]))
