"""The Kernel Audio Distance (KAD): an unbiased MMD² with a Gaussian (RBF) kernel, clustered frames allowed.

    kad(emb_a, emb_b, *, clips_a=None, clips_b=None, bandwidth=None, scale=None, paired=False) -> float

KAD (Chung et al. 2025, "KAD: No More FAD!"; the kadtk toolkit) is

    MMD² = mean k(a, a') + mean k(b, b') - 2 mean k(a, b),   k(x, y) = exp(-|x - y|² / (2 h²))

with the first two means over pairs of *different* frames (a U-statistic: no diagonal),
so its expectation is the population MMD² whatever the sample sizes; kadtk multiplies by
100 and takes h as the median pairwise distance of the second set. Without ids this is
kadtk's number (`kadtk.kad.calc_kernel_audio_distance`, in float64).

Frames of one clip (or one performer) are correlated, so the pairs inside a clip are not
two independent draws and bias the mean of k(a, a') upwards. With ids, every pair that
shares an id is left out (a generalised U-statistic over clusters): each remaining pair
is two independent draws and the estimate stays unbiased. ``paired=True`` (the study's
shared performers) compares ids across the two sets too and leaves out the cross pairs of
one performer. Everything reduces to per-cluster block sums of the kernel, so a cluster
resample's KAD is a weighted sum of them: the bootstrap costs nothing once they exist.
"""

from __future__ import annotations

import numpy as np

SCALE = 100.0  # kadtk's SCALE_FACTOR
EPS = 1e-8  # kadtk: gamma = 1 / (2 h² + eps)
MEDIAN_FRAMES = 8192  # above, the median pairwise distance comes from a random subset of this many frames
ROW_CHUNK = 2048  # kernel rows formed at once: ROW_CHUNK × frames float64 in memory


def median_pairwise_distance(emb: np.ndarray, *, max_frames: int = MEDIAN_FRAMES, seed=0) -> float:
    """kadtk's bandwidth rule: the median Euclidean distance over pairs of frames (the lower
    median of an even count, as ``torch.median``); above ``max_frames`` frames, over the
    pairs of a random subset of that many frames (kadtk's ``subsample`` does the same with pairs)."""
    from scipy.spatial.distance import pdist

    emb = np.asarray(emb, dtype=np.float64)
    if emb.shape[0] < 2:
        raise ValueError(f"a median pairwise distance needs at least 2 frames, got {emb.shape[0]}")
    if emb.shape[0] > max_frames:
        emb = emb[np.sort(np.random.default_rng(seed).choice(emb.shape[0], max_frames, replace=False))]
    distances = pdist(emb)
    return float(np.partition(distances, (distances.size - 1) // 2)[(distances.size - 1) // 2])


def _unit_sums(x: np.ndarray, units_x: np.ndarray, nx: int, y: np.ndarray, units_y: np.ndarray, ny: int,
               gamma: float) -> np.ndarray:
    """B[p, q] = Σ k(x_i, y_j) over frames i of unit p and j of unit q, in row chunks."""
    from hub_emo.analysis import linalg

    sq_y = np.einsum("ij,ij->i", y, y)
    out = np.zeros((nx, ny))
    for start in range(0, x.shape[0], ROW_CHUNK):
        rows = slice(start, start + ROW_CHUNK)
        block = linalg.rbf_unit_sums(x[rows], y, sq_y, units_y, ny, gamma)
        np.add.at(out, units_x[rows], block)
    return out


class KernelSums:
    """The per-cluster block sums of one pair of sets, from which the KAD of the sets and of
    any cluster resample (weights per cluster) follows without touching a frame again."""

    def __init__(self, emb_a, emb_b, *, clips_a=None, clips_b=None, bandwidth=None, paired: bool = False):
        from hub_emo.analysis.frechet import _clean, _groups

        a, b = _clean(emb_a), _clean(emb_b)
        if a.shape[1] != b.shape[1]:
            raise ValueError(f"embeddings have different dims: {a.shape[1]} vs {b.shape[1]}")
        for name, x in (("emb_a", a), ("emb_b", b)):
            if x.shape[0] < 2:
                raise ValueError(f"{name} has {x.shape[0]} frame(s); KAD needs at least 2 per set")
        self.ids_a, inv_a = _groups(clips_a, a.shape[0])
        self.ids_b, inv_b = _groups(clips_b, b.shape[0])
        for name, ids in (("clips_a", self.ids_a), ("clips_b", self.ids_b)):
            if ids.size < 2:
                raise ValueError(f"{name}: every frame has one id; KAD needs at least 2 distinct ids per set")
        self.bandwidth = float(median_pairwise_distance(b) if bandwidth is None else bandwidth)
        if not self.bandwidth > 0:
            raise ValueError(f"the kernel bandwidth must be positive, got {self.bandwidth}")
        gamma = 1.0 / (2.0 * self.bandwidth**2 + EPS)
        self.n_a = np.bincount(inv_a, minlength=self.ids_a.size).astype(np.float64)
        self.n_b = np.bincount(inv_b, minlength=self.ids_b.size).astype(np.float64)
        self.aa = _unit_sums(a, inv_a, self.ids_a.size, a, inv_a, self.ids_a.size, gamma)
        self.bb = _unit_sums(b, inv_b, self.ids_b.size, b, inv_b, self.ids_b.size, gamma)
        self.ab = _unit_sums(a, inv_a, self.ids_a.size, b, inv_b, self.ids_b.size, gamma)
        np.fill_diagonal(self.aa, 0.0)  # pairs inside one id (the diagonal, without ids) left out
        np.fill_diagonal(self.bb, 0.0)
        self.same = (self.ids_a[:, None] == self.ids_b[None, :]) if paired else None
        if self.same is not None:
            self.ab[self.same] = 0.0

    def values(self, w_a: np.ndarray | None = None, w_b: np.ndarray | None = None) -> np.ndarray:
        """KAD (× 1, unscaled) for each row of cluster weights (how often each id counts); no
        weights: the sets themselves. A row that leaves a set without a pair gives NaN."""
        w_a = np.ones((1, self.ids_a.size)) if w_a is None else np.atleast_2d(np.asarray(w_a, dtype=np.float64))
        w_b = np.ones((1, self.ids_b.size)) if w_b is None else np.atleast_2d(np.asarray(w_b, dtype=np.float64))
        within = []
        for w, block, n in ((w_a, self.aa, self.n_a), (w_b, self.bb, self.n_b)):
            pairs = (w @ n) ** 2 - (w**2) @ (n**2)
            with np.errstate(invalid="ignore", divide="ignore"):
                within.append(np.einsum("rp,pq,rq->r", w, block, w) / np.where(pairs > 0, pairs, np.nan))
        cross_pairs = (w_a @ self.n_a) * (w_b @ self.n_b)
        if self.same is not None:
            cross_pairs = cross_pairs - np.einsum("rp,pq,rq->r", w_a * self.n_a, self.same, w_b * self.n_b)
        with np.errstate(invalid="ignore", divide="ignore"):
            cross = np.einsum("rp,pq,rq->r", w_a, self.ab, w_b) / np.where(cross_pairs > 0, cross_pairs, np.nan)
        return within[0] + within[1] - 2.0 * cross


def kad(emb_a, emb_b, *, clips_a=None, clips_b=None, bandwidth: float | None = None, scale: float | None = None,
        paired: bool = False) -> float:
    """KAD between two (frames × dims) sets: unbiased RBF MMD² × ``scale`` (default kadtk's 100).

    ``bandwidth``: the kernel's h (default kadtk's rule: median pairwise distance of
    ``emb_b``). ``clips_a``/``clips_b``: each frame's clip or performer id; pairs sharing an
    id inside a set are left out, and across the sets too when ``paired`` (ids that name the
    same performer in both). May be negative (an unbiased estimate of a distance near 0).
    """
    sums = KernelSums(emb_a, emb_b, clips_a=clips_a, clips_b=clips_b, bandwidth=bandwidth, paired=paired)
    return float(sums.values()[0]) * (SCALE if scale is None else scale)


def thin_frames(clips: np.ndarray, per_clip: int) -> np.ndarray:
    """A mask keeping up to ``per_clip`` evenly spaced frames of each clip (frames of a clip in
    order; 0 keeps all). The kernel costs frames² · dims, and a clip's frames are correlated,
    so a few per clip carry most of what all of them do; the estimate stays unbiased."""
    clips = np.asarray(clips)
    if per_clip <= 0:
        return np.ones(clips.size, dtype=bool)
    _, inverse, counts = np.unique(clips, return_inverse=True, return_counts=True)
    order = np.argsort(inverse, kind="stable")
    position = np.empty(clips.size, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position[order] = np.arange(clips.size) - np.repeat(starts, counts)
    n = counts[inverse]
    bins = position * per_clip // n
    return (position == 0) | (bins != (position - 1) * per_clip // n)


def rbf_mmd2_gaussians(mu_a, cov_a, mu_b, cov_b, bandwidth: float, scale: float | None = None) -> float:
    """The population value for two Gaussians (the truth in simulations), × ``scale``:

    E exp(-γ|X - Y|²) = det(I + 2γΣ)^(-½) exp(-γ Δᵀ (I + 2γΣ)⁻¹ Δ),  X - Y ~ N(Δ, Σ),
    with Σ = Σ_x + Σ_y (Σ_x + Σ_x' for two draws of one Gaussian) and γ as in `kad`.
    1-D ``cov_a``/``cov_b``: diagonal covariances, given by their variances.
    """
    gamma = 1.0 / (2.0 * bandwidth**2 + EPS)
    mu_a, mu_b = np.asarray(mu_a, dtype=np.float64), np.asarray(mu_b, dtype=np.float64)
    cov_a, cov_b = np.asarray(cov_a, dtype=np.float64), np.asarray(cov_b, dtype=np.float64)

    def mean_kernel(delta, cov):
        if cov.ndim == 1:  # diagonal: the variances
            m = 1.0 + 2.0 * gamma * cov
            return np.exp(-0.5 * np.log(m).sum() - gamma * (delta**2 / m).sum())
        m = np.eye(len(delta)) + 2.0 * gamma * cov
        _, logdet = np.linalg.slogdet(m)
        return np.exp(-0.5 * logdet - gamma * delta @ np.linalg.solve(m, delta))

    zero = np.zeros_like(mu_a)
    value = mean_kernel(zero, 2 * cov_a) + mean_kernel(zero, 2 * cov_b) - 2 * mean_kernel(mu_a - mu_b, cov_a + cov_b)
    return float(value) * (SCALE if scale is None else scale)
