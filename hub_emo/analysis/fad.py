"""The Fréchet distance between two Gaussians, fast and exact for PSD covariances.

    FD = ||mu_a - mu_b||² + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^½)

fadtk and frechet-audio-distance take ``scipy.linalg.sqrtm(S_a @ S_b)``: a general
(non-symmetric) Schur decomposition, about 1.4 s at 1024 dims, that can turn complex or
fail on singular covariances. Here the trace term uses that S_a S_b is similar to the
symmetric PSD matrix L^T S_b L (S_a = L L^T), so

    Tr((S_a S_b)^½) = Σ sqrt(eigvalsh(L^T S_b L))

— one Cholesky factorisation and one symmetric eigenvalue problem (eigenvalues only).

Near-singular covariances (fewer frames than dims) are handled exactly, without an
``eps·I`` offset: when Cholesky fails, L is the symmetric PSD square root of S_a from
``eigh`` with its eigenvalues clipped at 0, and negative round-off eigenvalues of the
product are clipped at 0 too. The number is then well defined, but the estimate from so
few frames is biased and noisy, so `frechet_distance` warns (`FrechetWarning`).
"""

from __future__ import annotations

import warnings

import numpy as np


class FrechetWarning(UserWarning):
    """A Fréchet distance was computed from a rank-deficient covariance."""


def _as_stats_matrix(cov: np.ndarray, name: str, dim: int) -> np.ndarray:
    cov = np.asarray(cov, dtype=np.float64)
    if cov.shape != (dim, dim):
        raise ValueError(f"{name} must be a ({dim}, {dim}) covariance, got shape {cov.shape}")
    if not np.isfinite(cov).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return cov


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A factor F with F F^T = cov: Cholesky when possible, else the clipped eigh square root."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(cov)
        return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """Tr((S_a S_b)^½) for symmetric PSD S_a, S_b."""
    factor = _psd_sqrt(cov_a)
    inner = factor.T @ cov_b @ factor
    inner = 0.5 * (inner + inner.T)
    eigenvalues = np.linalg.eigvalsh(inner)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance_from_stats(
    mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray, cov_b: np.ndarray
) -> float:
    """Fréchet distance between N(mu_a, cov_a) and N(mu_b, cov_b).

    Raises ValueError on mismatched shapes or non-finite input: never a silent NaN.
    Round-off below zero (identical sets) is returned as 0.
    """
    mu_a = np.asarray(mu_a, dtype=np.float64).reshape(-1)
    mu_b = np.asarray(mu_b, dtype=np.float64).reshape(-1)
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"means have different dims: {mu_a.shape[0]} vs {mu_b.shape[0]}")
    if not (np.isfinite(mu_a).all() and np.isfinite(mu_b).all()):
        raise ValueError("a mean contains NaN or infinite values")
    dim = mu_a.shape[0]
    cov_a = _as_stats_matrix(cov_a, "cov_a", dim)
    cov_b = _as_stats_matrix(cov_b, "cov_b", dim)
    diff = mu_a - mu_b
    value = float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * trace_sqrt_product(cov_a, cov_b))
    return max(value, 0.0)


def gaussian_stats(emb: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (frames × dims) embeddings, optionally frame-weighted.

    Integer ``weights`` (counts, as in a bootstrap resample) give the statistics of the
    set with each frame repeated that many times.
    """
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be a (frames, dims) array, got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or infinite values")
    if weights is None:
        n = emb.shape[0]
        if n < 2:
            raise ValueError(f"a covariance needs at least 2 frames, got {n}")
        mu = emb.mean(axis=0)
        centred = emb - mu
        return mu, centred.T @ centred / (n - 1)
    weights = np.asarray(weights, dtype=np.float64)
    n = weights.sum()
    if n < 2:
        raise ValueError(f"a covariance needs at least 2 frames, got {n:g}")
    mu = weights @ emb / n
    centred = emb - mu
    return mu, (centred * weights[:, None]).T @ centred / (n - 1)


def frechet_distance(emb_a: np.ndarray, emb_b: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two (frames × dims) embedding sets.

    Warns (`FrechetWarning`) when a set has no more frames than dims: its covariance is
    singular; the distance is still computed exactly for it (see the module docstring),
    but it is a biased, high-variance estimate.
    """
    emb_a = np.asarray(emb_a)
    emb_b = np.asarray(emb_b)
    if emb_a.ndim != 2 or emb_b.ndim != 2:
        raise ValueError(f"embeddings must be (frames, dims) arrays, got {emb_a.shape} and {emb_b.shape}")
    if emb_a.shape[1] != emb_b.shape[1]:
        raise ValueError(f"embeddings have different dims: {emb_a.shape[1]} vs {emb_b.shape[1]}")
    dim = emb_a.shape[1]
    for name, emb in (("emb_a", emb_a), ("emb_b", emb_b)):
        if emb.shape[0] <= dim:
            warnings.warn(
                f"{name} has {emb.shape[0]} frames for {dim} dims: its covariance is singular "
                f"(needs at least {dim + 1} frames for full rank); using clipped PSD square roots",
                FrechetWarning,
                stacklevel=2,
            )
    return frechet_distance_from_stats(*gaussian_stats(emb_a), *gaussian_stats(emb_b))


def frechet_distance_reference(mu_a, cov_a, mu_b, cov_b) -> float:
    """The formula as fadtk computes it, with ``scipy.linalg.sqrtm`` (slow; for tests and benchmarks)."""
    from scipy import linalg

    diff = np.asarray(mu_a, dtype=np.float64) - np.asarray(mu_b, dtype=np.float64)
    covmean = linalg.sqrtm(np.asarray(cov_a, dtype=np.float64) @ np.asarray(cov_b, dtype=np.float64))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))
