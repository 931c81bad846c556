"""Whether two models rank the emotions alike: Kendall τ-b with an exact permutation p-value,
a bootstrap interval from the study's resamples, and Spearman ρ (the FAD study's rank agreement)."""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

EXACT_PERMUTATIONS_UP_TO = 8  # 8! = 40 320 orderings; beyond, 20 000 random ones


def _pair_signs(values: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(values.shape[-1], 1)
    return np.sign(values[..., i] - values[..., j])


def kendall_tau_test(a: Sequence[float], b: Sequence[float], *, seed: int = 0) -> tuple[float, float]:
    """Kendall τ-b and its two-sided permutation p-value.

    Exact (every ordering of ``b`` against ``a``) up to 8 items: with 6 emotions the
    normal approximation is poor and |τ| must reach 0.867 for p < 0.05. Beyond, 20 000
    random orderings, p = (1 + hits) / (1 + draws).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size < 2:
        raise ValueError(f"Kendall τ needs two rankings of the same ≥ 2 items, got {a.size} and {b.size}")
    sa, sb = _pair_signs(a), _pair_signs(b)
    denominator = math.sqrt(np.count_nonzero(sa) * np.count_nonzero(sb))
    if denominator == 0:
        return float("nan"), float("nan")
    tau = float(sa @ sb) / denominator
    n = a.size
    if n <= EXACT_PERMUTATIONS_UP_TO:
        orders = np.array(list(itertools.permutations(range(n))))
        exact = True
    else:
        rng = np.random.default_rng(seed)
        orders = np.array([rng.permutation(n) for _ in range(20_000)])
        exact = False
    taus = _pair_signs(b[orders]) @ sa / denominator
    hits = int(np.count_nonzero(np.abs(taus) >= abs(tau) - 1e-12))
    p = hits / len(orders) if exact else (1 + hits) / (1 + len(orders))
    return tau, float(p)


def _kendall(a: np.ndarray, b: np.ndarray) -> float:
    sa, sb = _pair_signs(a), _pair_signs(b)
    denominator = math.sqrt(np.count_nonzero(sa) * np.count_nonzero(sb))
    return float(sa @ sb) / denominator if denominator else float("nan")


def rank_agreement(by_model, replicates, report_at, confidence: float, seed: int = 0) -> list[dict]:
    """Kendall τ (exact p, bootstrap interval at the report layers) and Spearman ρ per model pair."""
    from scipy import stats as scistats

    out = []
    models = list(by_model)
    for first, second in itertools.combinations(models, 2):
        pairs = [("report", report_at[first], report_at[second])]
        pairs += [(k, k, k) for k in sorted(set(by_model[first]) & set(by_model[second]))]
        for label, layer_a, layer_b in pairs:
            shared = [e for e in by_model[first][layer_a] if e in by_model[second][layer_b]]
            if len(shared) < 2:
                continue
            a = np.array([by_model[first][layer_a][e]["kad"] for e in shared])
            b = np.array([by_model[second][layer_b][e]["kad"] for e in shared])
            tau, p = kendall_tau_test(a, b, seed=seed)
            low = high = None
            if label == "report" and all(e in replicates.get(m, {}) for m in (first, second) for e in shared):
                ra = np.array([replicates[first][e] for e in shared]).T
                rb = np.array([replicates[second][e] for e in shared]).T
                taus = np.array([_kendall(x, y) for x, y in zip(ra, rb)])
                taus = taus[np.isfinite(taus)]  # a resample that lost a cell or tied every value
                if taus.size >= 2:
                    low, high = (float(q) for q in np.quantile(taus, [(1 - confidence) / 2, (1 + confidence) / 2]))
            rho = scistats.spearmanr(a, b).statistic if len(shared) > 2 else np.nan
            out.append({"model_a": first, "model_b": second, "layer": label, "emotions": len(shared),
                        "kendall_tau": tau, "kendall_p": p, "tau_low": low, "tau_high": high,
                        "spearman_rho": float(rho)})
    return out
