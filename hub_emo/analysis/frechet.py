"""The Fréchet distance between two Gaussians and its estimators from clustered frames.

    FD = ||mu_a - mu_b||² + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^½)

fadtk and frechet-audio-distance take ``scipy.linalg.sqrtm(S_a @ S_b)``: a general
(non-symmetric) Schur decomposition, about 1.4 s at 1024 dims, that can turn complex or
fail on singular covariances. Here the trace term uses that S_a S_b is similar to the
symmetric PSD matrix L^T S_b L (S_a = L L^T), so

    Tr((S_a S_b)^½) = Σ sqrt(eigvalsh(L^T S_b L))

— one Cholesky factorisation, one symmetric congruence (LAPACK sygst) and the
eigenvalues of a symmetric matrix. When a set has no more frames than dims, its
covariance is R R^T with R the (dims × frames) centred frames, and the same identity
gives Tr((S_a S_b)^½) = ||R_a^T R_b||_* (the sum of singular values of a frames × frames
matrix): exact, and far cheaper than any d × d work, which is what makes the many
subsample and bootstrap distances of the study affordable.

Near-singular covariances are handled exactly, without an ``eps·I`` offset (clipped PSD
square roots); the number is then well defined, but the estimate from so few frames is
biased and noisy, so `frechet_distance` warns (`FrechetWarning`).

Estimators. Frames of one clip (and clips of one performer) are correlated, so the
sampling unit is the clip or the performer, never the frame:

    fad_infinity(emb_a, emb_b, *, clips_a=None, clips_b=None, steps=8, min_fraction=0.5, seed=0)
        -> (FAD∞, r²)       bias removed by extrapolating clip subsets to 1/N → 0

The plain estimate's bias grows with the dims and with each set's spread, and shrinks
with its clip count, so sets of different spread are not ranked fairly by it (the study
ranks on `kad`); intervals, and where they are refused, are in `bootstrap`. The study
calls the ``*_of_sets`` forms on `FrameSet`s built once per cell and layer, so that every
subset and resample reuses the cell's Gram matrices (see `FrameSet`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

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


def _fortran_view(cov: np.ndarray) -> np.ndarray:
    """A Fortran-ordered view of a symmetric matrix without copying (its transpose, if C-ordered).

    LAPACK wrappers copy C-ordered input into Fortran order; for a symmetric matrix the
    transpose is the same matrix and already in Fortran order.
    """
    return cov if cov.flags.f_contiguous else cov.T if cov.T.flags.f_contiguous else np.asfortranarray(cov)


def _congruent_product(cov_a: np.ndarray, cov_b: np.ndarray) -> np.ndarray:
    """A symmetric matrix (lower triangle) whose eigenvalues are those of S_a S_b (plus zeros).

    S_a = L L^T (Cholesky) gives L^T S_b L via LAPACK sygst, one factorisation and one
    symmetric congruence (about n³ flops, against 2n³ for forming L_b^T L_a and its Gram
    matrix). Either factor may be the Cholesky one (S_a S_b and S_b S_a share eigenvalues);
    when neither is positive definite, S_a = F F^T with F = V Λ₊^½ from ``eigh``, eigenvalues
    clipped at 0 and only the positive ones' columns kept.
    """
    from scipy.linalg import lapack

    a, b = _fortran_view(cov_a), _fortran_view(cov_b)
    for first, second in ((a, b), (b, a)):
        factor, info = lapack.dpotrf(first, lower=1, clean=0)
        if info == 0:
            product, info = lapack.dsygst(second, factor, itype=3, lower=1)  # L^T S L
            if info != 0:
                raise np.linalg.LinAlgError(f"LAPACK dsygst failed (info={info})")
            return product
    values, vectors = np.linalg.eigh(cov_a)
    keep = values > 0
    factor = vectors[:, keep] * np.sqrt(values[keep])
    return np.asfortranarray(factor.T @ (cov_b @ factor))


def trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """Tr((S_a S_b)^½) for symmetric PSD S_a, S_b.

    S_a S_b is similar to the symmetric PSD matrix G = L^T S_b L (S_a = L L^T), so the trace
    is the sum of the square roots of G's eigenvalues: Householder tridiagonalisation
    (sytrd) and the root-free QR eigenvalue iteration (sterf), the two steps of LAPACK's
    eigenvalues-only symmetric solver without its extra copies.
    """
    from scipy.linalg import lapack

    from hub_emo.analysis import linalg

    on_device = linalg.trace_sqrt_product(cov_a, cov_b)
    if on_device is not None:
        return on_device
    gram = _congruent_product(cov_a, cov_b)
    if gram.shape[0] <= 1:  # 1-D, or S_a = 0 (no positive eigenvalue): sytrd/sterf need n ≥ 2
        return float(np.sqrt(max(gram[0, 0], 0.0))) if gram.size else 0.0
    lwork, info = lapack.dsytrd_lwork(gram.shape[0], lower=1)
    _, diagonal, offdiagonal, _, info = lapack.dsytrd(gram, lower=1, lwork=int(lwork), overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"LAPACK dsytrd failed (info={info})")
    eigenvalues, info = lapack.dsterf(diagonal, offdiagonal, overwrite_d=1, overwrite_e=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"symmetric eigenvalues did not converge (LAPACK dsterf info={info})")
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


def _clean(emb) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float64)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be a (frames, dims) array, got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or infinite values")
    return emb


def gaussian_stats(emb: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (frames × dims) embeddings, optionally frame-weighted.

    Integer ``weights`` (counts, as in a bootstrap resample) give the statistics of the
    set with each frame repeated that many times.
    """
    emb = _clean(emb)
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


# --------------------------------------------------------------------------------------
# Gaussians fitted to (weighted) frames, in whichever space is smaller.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gaussian:
    """A fitted Gaussian: the mean and either a (dims × m) root R with S = R R^T (m ≤ dims
    frames) or the dense (dims × dims) covariance."""

    mean: np.ndarray
    trace: float
    root: np.ndarray | None = None
    cov: np.ndarray | None = None


def fit_gaussian(emb: np.ndarray, weights: np.ndarray | None = None) -> Gaussian:
    """The Gaussian of (frames × dims) embeddings (float64, finite: the caller checks),
    each frame counted ``weights`` times (bootstrap counts; zero drops it)."""
    if weights is not None:
        kept = weights > 0
        emb, weights = emb[kept], np.asarray(weights[kept], dtype=np.float64)
        n = weights.sum()
    else:
        n = emb.shape[0]
    if n < 2:
        raise ValueError(f"a covariance needs at least 2 frames, got {n:g}")
    mean = emb.mean(axis=0) if weights is None else weights @ emb / n
    centred = emb - mean
    if emb.shape[0] <= emb.shape[1]:
        scale = np.full(emb.shape[0], 1.0) if weights is None else np.sqrt(weights)
        root = (centred * (scale / np.sqrt(n - 1))[:, None]).T
        return Gaussian(mean, float(np.einsum("ij,ij->", root, root)), root=root)
    if weights is not None:
        centred *= np.sqrt(weights)[:, None]
    from hub_emo.analysis import linalg

    return _from_gram(mean, linalg.gram(centred), n)


def _from_gram(mean: np.ndarray, gram: np.ndarray, n: float) -> Gaussian:
    cov = gram / (n - 1)
    return Gaussian(mean, float(np.trace(cov)), cov=cov)


MAX_CLUSTER_GRAMS = 256  # d × d matrices kept per set for resampling (256 × 4.7 MB at 768 dims)


class FrameSet:
    """One set's frames, with the statistics that any clip subset's or cluster resample's
    Gaussian is built from without refitting every frame.

    A subset's Gram matrix about the set's mean is the full one minus the excluded frames'
    (whichever side has fewer frames is multiplied out); a resample's is a weighted sum of
    per-cluster Grams, one matrix product for many resamples. Both then take the rank-one
    correction to the subset's own mean: the same Gaussian as `fit_gaussian` on the frames
    (to round-off), at O(excluded frames · d²) or O(clusters · d²) instead of O(frames · d²).
    Sets with no more frames than dims keep the frame-space root (`fit_gaussian`).
    """

    def __init__(self, emb: np.ndarray, clips=None):
        self.emb = _clean(emb)
        self.ids, self.inverse = _groups(clips, self.emb.shape[0])
        self.full = fit_gaussian(self.emb)
        self.dense = self.full.cov is not None
        if self.dense:
            self.centred = self.emb - self.full.mean
            self.total = self.centred.sum(axis=0)
            self.gram = self.full.cov * (self.emb.shape[0] - 1)

    @property
    def clips(self) -> int:
        return len(self.ids)

    def _corrected(self, offset: np.ndarray, gram: np.ndarray, n: float) -> Gaussian:
        shift = offset / n
        return _from_gram(self.full.mean + shift, gram - np.outer(offset, shift), n)

    def clip_subset(self, picked: np.ndarray) -> Gaussian:
        """The Gaussian of the frames of clips ``picked`` (indices into ``ids``)."""
        if len(picked) == self.clips:
            return self.full
        keep = _frames_of(self.inverse, picked, self.clips)
        k = int(keep.sum())
        if not self.dense or k <= self.emb.shape[1] or 2 * k <= keep.size:
            return fit_gaussian(self.emb[keep])
        if k < 2:
            raise ValueError(f"a covariance needs at least 2 frames, got {k}")
        dropped = self.centred[~keep]
        return self._corrected(self.total - dropped.sum(axis=0), self.gram - dropped.T @ dropped, k)

    def resamples(self, cluster: np.ndarray, weights: np.ndarray, chunk: int = 16):
        """The Gaussian of each row of ``weights`` (weights[r, c]: how often cluster c's frames
        count in resample r; ``cluster``: each frame's cluster); None where fewer than 2 frames."""
        units, of_frame = np.unique(cluster, return_inverse=True)
        frames = np.bincount(of_frame, minlength=units.size).astype(np.float64)
        weights = np.asarray(weights, dtype=np.float64)[:, units]
        if not self.dense or units.size > min(MAX_CLUSTER_GRAMS, self.emb.shape[0] // 4):
            for w in weights:
                yield fit_gaussian(self.emb, w[of_frame]) if w @ frames >= 2 else None
            return
        dim = self.emb.shape[1]
        sums = np.zeros((units.size, dim))
        np.add.at(sums, of_frame, self.centred)
        grams = np.stack([c.T @ c for c in (self.centred[of_frame == u] for u in range(units.size))])
        grams = grams.reshape(units.size, dim * dim)
        for start in range(0, len(weights), chunk):
            block = weights[start:start + chunk]
            summed = (block @ grams).reshape(len(block), dim, dim)
            for w, gram, offset in zip(block, summed, block @ sums):
                n = w @ frames
                yield self._corrected(offset, gram, n) if n >= 2 else None


def gaussian_distance(a: Gaussian, b: Gaussian) -> float:
    """The Fréchet distance between two fitted Gaussians (see the module docstring)."""
    from hub_emo.analysis import linalg

    diff = a.mean - b.mean
    if a.root is not None and b.root is not None:
        cross = linalg.nuclear_norm(a.root.T @ b.root)
    elif a.root is not None:
        cross = linalg.sqrt_eigen_sum(a.root.T @ (b.cov @ a.root))
    elif b.root is not None:
        cross = linalg.sqrt_eigen_sum(b.root.T @ (a.cov @ b.root))
    else:
        cross = trace_sqrt_product(a.cov, b.cov)
    return max(float(diff @ diff + a.trace + b.trace - 2.0 * cross), 0.0)


# --------------------------------------------------------------------------------------
# Estimators from clustered frames.
# --------------------------------------------------------------------------------------


def _groups(clips, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """(unique ids, each frame's index into them); no ids: every frame is its own clip."""
    if clips is None:
        return np.arange(frames), np.arange(frames)
    clips = np.asarray(clips)
    if clips.shape != (frames,):
        raise ValueError(f"clip ids must give one id per frame ({frames}), got shape {clips.shape}")
    return np.unique(clips, return_inverse=True)


def _frames_of(inverse: np.ndarray, picked: np.ndarray, count: int) -> np.ndarray:
    chosen = np.zeros(count, dtype=bool)
    chosen[picked] = True
    return chosen[inverse]


def fad_infinity(emb_a: np.ndarray, emb_b: np.ndarray, *, clips_a=None, clips_b=None, steps: int = 8,
                 min_fraction: float = 0.5, seed: int = 0) -> tuple[float, float]:
    """FAD∞: the distance on random clip subsets of growing size, a line in 1/N, its intercept.

    A variant of fadtk's FAD∞, which resamples only the evaluation set (frames, with
    replacement) at 25 sizes against fixed reference statistics. Here both sets are finite
    samples, so both are subsampled, to the same fraction f of their clips; without
    replacement, because repeated clips shrink the effective size unevenly; and by clip
    (``clips_*``: each frame's clip or performer id), because frames of one clip are
    correlated: the bias falls with the number of clips, which subsampling frames inside
    every clip would not change. N ∝ f, so the intercept at 1/f → 0 is the one at 1/N → 0.
    Without ids every frame is its own clip. Returns (FAD∞, r² of the fit); (NaN, NaN) when
    the sets have too few clips for the subset size to vary.
    """
    if steps < 2 or not 0 < min_fraction < 1:
        raise ValueError(f"FAD∞ needs steps ≥ 2 and 0 < min_fraction < 1, got {steps} and {min_fraction}")
    return fad_infinity_of_sets(FrameSet(emb_a, clips_a), FrameSet(emb_b, clips_b), steps=steps,
                                min_fraction=min_fraction, seed=seed)


def fad_infinity_of_sets(set_a: FrameSet, set_b: FrameSet, *, steps: int, min_fraction: float, seed,
                         full_distance: float | None = None) -> tuple[float, float]:
    """`fad_infinity` on prepared sets; ``full_distance``: the whole sets' distance, if known."""
    rng = np.random.default_rng(seed)
    x, y = [], []
    for fraction in np.linspace(min_fraction, 1.0, steps):
        fits, inverse_size = [], 0.0
        for fs in (set_a, set_b):
            k = min(fs.clips, max(2, int(round(fraction * fs.clips))))
            fits.append(fs.clip_subset(rng.choice(fs.clips, size=k, replace=False)))
            inverse_size += fs.clips / k / 2
        x.append(inverse_size)
        whole = fits[0] is set_a.full and fits[1] is set_b.full
        y.append(full_distance if whole and full_distance is not None else gaussian_distance(*fits))
    x, y = np.asarray(x), np.asarray(y)
    if np.ptp(x) == 0:  # too few clips for the subset size to vary: nothing to extrapolate
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(x, y, 1)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - ((y - slope * x - intercept) ** 2).sum() / total if total > 0 else 1.0
    return float(intercept), float(r2)
