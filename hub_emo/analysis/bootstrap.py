"""Cluster-bootstrap intervals for FAD and KAD: what is resampled, and where an interval is refused.

    bootstrap_ci(emb_a, clips_a, emb_b, clips_b, *, distance="kad", n_boot=100, confidence=0.95, seed=0,
                 paired=False, bandwidth=None) -> (low, high)

Frames of one clip or performer are correlated, so the clusters (``clips_*``: each frame's
clip or performer id) are resampled, never frames. Ids are per set: each set's clusters
are resampled on their own. ``paired=True`` says that an id found in both sets is one
unit (a performer heard in speech and in music, as in RAVDESS): one draw of the shared
ids serves both sets, which keeps their pairing. `run_fad` draws its resamples with the
same function (`cluster_resamples`) and scores them with the same one (`replicates`).

KAD is unbiased (`kad`), so its resamples scatter around the estimate as the estimate
scatters around the truth, and their percentile interval covers (simulations in the tests
and in ``benchmarks/bench_fad_coverage.py``). FAD is not: its bias grows with the dims and is
several times the distance itself once the dims exceed the number of independent units;
reflecting the resamples (the basic interval) removes a bias only as large as the
resamples' own: with 24 performers 0.905 of such intervals covered at 32 dims, 0.11 at 64,
none at 128, while below the number of performers they cover (0.955 at 23 dims with 24,
0.98 at 12 with 16). `fad_interval_refusal` says when a FAD interval is refused and why.
"""

from __future__ import annotations

import numpy as np

MAX_REDRAWS = 100


def fad_interval_refusal(dims: int, units_a: int, units_b: int) -> str | None:
    """Why no FAD interval is given at this size (None: it is given): the basic interval
    covers only while the dims stay below the independent units (clips or performers) of
    each set; above, the estimate's bias exceeds what the resamples can estimate."""
    units = min(units_a, units_b)
    if dims < units:
        return None
    return (f"no interval for FAD: {dims} dims against {units} independent units (clips or performers) in "
            "the smaller set; the plain estimate's bias is then a multiple of the distance itself and no "
            "bootstrap reflection removes it (in simulations the basic interval covered 0.11 of the time at "
            "64 dims with 24 performers); the KAD interval beside it covers")


def cluster_resamples(strata: list[np.ndarray], units: int, n_boot: int, seed, *,
                      keep: list[np.ndarray] = ()) -> np.ndarray:
    """(n_boot × units) counts: each stratum (an array of unit indices) resampled with
    replacement to its own size. A row that leaves any ``keep`` group (unit indices, e.g. one
    cell's performers) with fewer than 2 distinct units is drawn again."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n_boot, units), dtype=np.int64)
    for row in range(n_boot):
        for _ in range(MAX_REDRAWS):
            counts = np.zeros(units, dtype=np.int64)
            for stratum in strata:
                counts[stratum] = rng.multinomial(len(stratum), np.full(len(stratum), 1.0 / len(stratum)))
            if all(np.count_nonzero(counts[group]) >= 2 for group in keep):
                break
        else:
            raise ValueError("bootstrap resamples keep leaving a set with fewer than 2 clusters: too few clusters")
        out[row] = counts
    return out


def pair_resamples(ids_a: np.ndarray, ids_b: np.ndarray, n_boot: int, seed, *, paired: bool
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Counts per id of each set (rows: resamples): apart, or shared ids drawn once when ``paired``."""
    if paired:
        union = np.union1d(ids_a, ids_b)
        pos_a, pos_b = np.searchsorted(union, ids_a), np.searchsorted(union, ids_b)
        counts = cluster_resamples([np.arange(union.size)], union.size, n_boot, seed, keep=[pos_a, pos_b])
        return counts[:, pos_a], counts[:, pos_b]
    a, b = np.arange(ids_a.size), ids_a.size + np.arange(ids_b.size)
    counts = cluster_resamples([a, b], ids_a.size + ids_b.size, n_boot, seed, keep=[a, b])
    return counts[:, a], counts[:, b]


def replicates(distance: str, pair, w_a: np.ndarray, w_b: np.ndarray, *, units=None) -> np.ndarray:
    """The distance of each resample (rows of cluster weights). ``pair``: a `KernelSums` for
    "kad", weights per its ids; (FrameSet, FrameSet) for "fad", weights per set id, or per
    the units that ``units`` (each frame's unit, per set) index. NaN where a set is emptied."""
    if distance == "kad":
        from hub_emo.analysis.kad import SCALE

        return pair.values(w_a, w_b) * SCALE
    from hub_emo.analysis.frechet import gaussian_distance

    set_a, set_b = pair
    unit_a, unit_b = (set_a.inverse, set_b.inverse) if units is None else units
    fits = zip(set_a.resamples(unit_a, w_a), set_b.resamples(unit_b, w_b))
    return np.array([np.nan if a is None or b is None else gaussian_distance(a, b) for a, b in fits])


def basic_interval(full: float, values: np.ndarray, confidence: float) -> tuple[float, float]:
    """[2θ̂ − q_hi, 2θ̂ − q_lo], the ends floored at 0 (a distance): FAD's interval.

    The resamples' excess over θ̂ estimates θ̂'s own excess over the truth, so reflecting
    the quantiles about θ̂ removes a bias of the resamples' size (and no larger)."""
    q_lo, q_hi = _quantiles(values, confidence)
    return float(max(2 * full - q_hi, 0.0)), float(max(2 * full - q_lo, 0.0))


def percentile_interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """[q_lo, q_hi] of the resamples: KAD's interval. KAD is unbiased, so there is no bias to
    reflect away, and its right-skewed resamples would put a reflected interval too low
    (simulated at 8 dims, 24 performers: basic 0.917, percentile 0.947 of 300)."""
    q_lo, q_hi = _quantiles(values, confidence)
    return float(q_lo), float(q_hi)


def interval(distance: str, full: float, values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The interval the study reports for ``distance`` from its resamples."""
    return percentile_interval(values, confidence) if distance == "kad" else basic_interval(full, values, confidence)


def _quantiles(values: np.ndarray, confidence: float) -> np.ndarray:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 2:
        raise ValueError(f"an interval needs at least 2 finite resamples, got {values.size}")
    return np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])


def bootstrap_distances(emb_a, clips_a, emb_b, clips_b, *, distance: str = "kad", n_boot: int = 100, seed=0,
                        paired: bool = False, bandwidth: float | None = None) -> tuple[float, np.ndarray]:
    """(full-sample distance, ``n_boot`` cluster-bootstrap replicates); see the module docstring."""
    from hub_emo.analysis.frechet import FrameSet, gaussian_distance
    from hub_emo.analysis.kad import SCALE, KernelSums

    if distance == "kad":
        pair = KernelSums(emb_a, emb_b, clips_a=clips_a, clips_b=clips_b, bandwidth=bandwidth, paired=paired)
        full, ids_a, ids_b = float(pair.values()[0]) * SCALE, pair.ids_a, pair.ids_b
    elif distance == "fad":
        pair = FrameSet(emb_a, clips_a), FrameSet(emb_b, clips_b)
        full, ids_a, ids_b = gaussian_distance(pair[0].full, pair[1].full), pair[0].ids, pair[1].ids
    else:
        raise ValueError(f"distance must be 'kad' or 'fad', got {distance!r}")
    w_a, w_b = pair_resamples(ids_a, ids_b, n_boot, seed, paired=paired)
    return full, replicates(distance, pair, w_a, w_b)


def bootstrap_ci(emb_a, clips_a, emb_b, clips_b, *, distance: str = "kad", n_boot: int = 100,
                 confidence: float = 0.95, seed=0, paired: bool = False, bandwidth: float | None = None
                 ) -> tuple[float, float]:
    """Cluster-bootstrap interval for the population KAD (``distance="kad"``: percentile) or
    FAD (basic, reflected). A FAD interval is refused (ValueError, saying why) where
    simulations show it cannot cover (`fad_interval_refusal`)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if distance == "fad":
        from hub_emo.analysis.frechet import _clean, _groups

        dims = _clean(emb_a).shape[1]
        units = [_groups(c, len(e))[0].size for c, e in ((clips_a, emb_a), (clips_b, emb_b))]
        if paired:  # shared ids are one unit: the independent units are the union's
            units = [np.union1d(*(_groups(c, len(e))[0] for c, e in ((clips_a, emb_a), (clips_b, emb_b)))).size] * 2
        reason = fad_interval_refusal(dims, *units)
        if reason:
            raise ValueError(reason)
    full, values = bootstrap_distances(emb_a, clips_a, emb_b, clips_b, distance=distance, n_boot=n_boot, seed=seed,
                                       paired=paired, bandwidth=bandwidth)
    return interval(distance, full, values, confidence)
