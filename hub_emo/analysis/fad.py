"""The Fréchet distance between two Gaussians, fast and exact for PSD covariances.

    FD = ||mu_a - mu_b||² + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^½)

fadtk and frechet-audio-distance take ``scipy.linalg.sqrtm(S_a @ S_b)``: a general
(non-symmetric) Schur decomposition, about 1.4 s at 1024 dims, that can turn complex or
fail on singular covariances. Here the trace term uses that S_a S_b is similar to the
symmetric PSD matrix L^T S_b L (S_a = L L^T), so

    Tr((S_a S_b)^½) = Σ sqrt(eigvalsh(L^T S_b L))

— one Cholesky factorisation, one symmetric congruence (LAPACK sygst) and the
eigenvalues of a symmetric matrix (tridiagonalisation, then the root-free QR iteration).

Near-singular covariances (fewer frames than dims) are handled exactly, without an
``eps·I`` offset: when S_a has no Cholesky factor, S_b is factored instead (the two
products share eigenvalues); when neither has one, L = V Λ^½ from ``eigh`` of S_a with
its eigenvalues clipped at 0, and negative round-off eigenvalues of the product are
clipped at 0 too. The number is then well defined, but the estimate from so
few frames is biased and noisy, so `frechet_distance` warns (`FrechetWarning`).

The per-emotion study (the paper's third): for each model, layer and emotion, the
distance between the Gaussians of speech frames and of music frames of that emotion
(frame-level embeddings stacked over clips, as fadtk), with FAD∞ and a clip-level
bootstrap interval; the emotion-bias ranking per model, Kendall τ / Spearman ρ between
models' rankings, heatmaps (emotion × layer), and within-domain distances between emotions.

Entry points::

    frechet_distance(emb_a, emb_b) -> float                       # (frames × dims) arrays
    frechet_distance_from_stats(mu_a, cov_a, mu_b, cov_b) -> float
    fad_infinity(emb_a, emb_b, *, steps=8, min_fraction=0.25, seed=0) -> (FAD∞, r²)
    bootstrap_ci(emb_a, clips_a, emb_b, clips_b, *, n_boot=100, confidence=0.95) -> (low, high)
    run_fad(backbones: dict[str, path | model | (model, extractor)], dataset,
            label_set="ravdess6", layers=None, out_dir="fad_report", *,
            frames_per_clip=32, n_boot=100, confidence=0.95, inf_steps=8,
            inf_min_fraction=0.25, min_clips=2, report_layer=None, within_domain=True,
            bootstrap_all_layers=False, seed=0, trust_remote_code=False,
            progress=True) -> FADResult
        FADResult.rows            list of dicts: model, layer, emotion, fad, ci_low, ci_high,
                                  fad_inf, fad_inf_r2, speech/music clips and frames
        FADResult.bias            per model: emotion -> rank (1 = speech and music most alike)
        FADResult.rank_agreement  per model pair and layer: kendall_tau, spearman_rho
        FADResult.within          per model, layer, domain: distance between two emotions
        FADResult.report / .csv / .json / .warnings / .summary()
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

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


# --------------------------------------------------------------------------------------
# The per-emotion study: speech vs music of the same emotion, per model and layer.
# --------------------------------------------------------------------------------------


def fad_infinity(emb_a: np.ndarray, emb_b: np.ndarray, *, steps: int = 8, min_fraction: float = 0.25,
                 seed: int = 0) -> tuple[float, float]:
    """FAD∞ (fadtk): FAD on random subsets of growing size, a line fit in 1/N, its intercept.

    Both sets are subsampled (frames, without replacement) to the same fraction f of their
    size, so N ∝ f; the intercept at 1/f → 0 is the same as at 1/N → 0. Returns
    (FAD∞, r² of the fit).
    """
    rng = np.random.default_rng(seed)
    fractions = np.linspace(min_fraction, 1.0, steps)
    scores = []
    for fraction in fractions:
        picked = []
        for emb in (emb_a, emb_b):
            n = max(2, int(round(fraction * emb.shape[0])))
            picked.append(emb[rng.choice(emb.shape[0], size=n, replace=False)])
        scores.append(frechet_distance_from_stats(*gaussian_stats(picked[0]), *gaussian_stats(picked[1])))
    x, y = 1.0 / fractions, np.asarray(scores)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - (residual**2).sum() / total if total > 0 else 1.0
    return float(intercept), float(r2)


def bootstrap_ci(emb_a: np.ndarray, clips_a: np.ndarray, emb_b: np.ndarray, clips_b: np.ndarray, *,
                 n_boot: int = 100, confidence: float = 0.95, seed: int = 0,
                 full: float | None = None) -> tuple[float, float]:
    """Clip-level bootstrap interval of the Fréchet distance.

    Clips (not frames: frames of one clip are correlated) are resampled with replacement in
    each set, as integer frame weights. A resample repeats clips, so its distance is biased
    upwards; the interval is the bootstrap percentile interval shifted by that bias
    (resample median − full-sample value), which keeps its width and centres it on the
    full-sample estimate.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    emb_a, emb_b = np.asarray(emb_a, dtype=np.float64), np.asarray(emb_b, dtype=np.float64)
    groups = []
    for clips in (clips_a, clips_b):
        unique, inverse = np.unique(clips, return_inverse=True)
        groups.append((len(unique), inverse))
    if full is None:
        full = frechet_distance_from_stats(*gaussian_stats(emb_a), *gaussian_stats(emb_b))
    samples = []
    for _ in range(n_boot):
        stats = []
        for emb, (count, inverse) in zip((emb_a, emb_b), groups):
            weights = rng.multinomial(count, np.full(count, 1.0 / count))[inverse]
            stats += gaussian_stats(emb, weights)
        samples.append(frechet_distance_from_stats(*stats))
    low, median, high = np.quantile(samples, [(1 - confidence) / 2, 0.5, (1 + confidence) / 2])
    shift = median - full
    return float(max(low - shift, 0.0)), float(high - shift)


@dataclass
class FADResult:
    rows: list[dict]
    bias: list[dict]
    rank_agreement: list[dict]
    within: list[dict]
    report: Path | None = None
    csv: Path | None = None
    json: Path | None = None
    warnings: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{len(self.rows)} speech–music distances; report: {self.report}"]
        for entry in self.bias:
            order = sorted((v, k) for k, v in entry.items() if k not in ("model", "layer"))
            lines.append(f"  {entry['model']:<16} layer {entry['layer']:>2}: most alike → least: "
                         + " < ".join(k for _, k in order))
        for agreement in self.rank_agreement:
            if agreement["layer"] == "report":
                lines.append(f"  {agreement['model_a']} vs {agreement['model_b']}: Kendall τ "
                             f"{agreement['kendall_tau']:.2f}, Spearman ρ {agreement['spearman_rho']:.2f}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _ranks(values: dict[str, float]) -> dict[str, int]:
    return {k: i + 1 for i, (_, k) in enumerate(sorted((v, k) for k, v in values.items()))}


def run_fad(
    backbones: dict,
    dataset,
    label_set="ravdess6",
    layers: Sequence[int] | None = None,
    out_dir="fad_report",
    *,
    frames_per_clip: int = 32,
    n_boot: int = 100,
    confidence: float = 0.95,
    inf_steps: int = 8,
    inf_min_fraction: float = 0.25,
    min_clips: int = 2,
    report_layer: int | None = None,
    within_domain: bool = True,
    bootstrap_all_layers: bool = False,
    seed: int = 0,
    trust_remote_code: bool = False,
    progress: bool = True,
) -> FADResult:
    """Per model, layer and emotion: FAD between speech and music frames; report and tables.

    Extraction covers every hidden state (the same cache entry as `run_probing`), then
    ``layers`` (default all; negative counts from the end) are scored. ``report_layer``
    (default the last of ``layers``) is the layer of the emotion-bias ranking and bars, and
    the only layer bootstrapped unless ``bootstrap_all_layers`` (a bootstrap costs
    ``n_boot`` covariances and distances per emotion and layer).
    An emotion needs ``min_clips`` clips (>= 2) in each domain; one with no more frames
    than dims is scored with a warning (singular covariance).
    """
    from hub_emo import schema
    from hub_emo.analysis import features as feats
    from hub_emo.analysis import plots, report
    from hub_emo.analysis.probing import clip_metadata, rows_for

    if not backbones:
        raise ValueError("give at least one backbone (name -> folder, Hub id or model)")
    if min_clips < 2:
        raise ValueError("min_clips must be at least 2 (a covariance needs two frames and a bootstrap two clips)")
    ids, meta, classes = clip_metadata(dataset, label_set)
    present = set(meta["domain"])
    missing = [d for d in ("speech", "music") if d not in present]
    if missing:
        raise ValueError(f"the dataset has no {' or '.join(missing)} clips in label set "
                         f"{schema.get_label_set(label_set).name!r}; speech–music FAD needs both domains")
    problems: list[str] = []
    rows: list[dict] = []
    within: list[dict] = []
    by_model: dict[str, dict[int, dict[str, dict]]] = {}
    report_layers: dict[str, int] = {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    failed: dict[str, str] = {}
    for name, extracted in feats.extract_each(backbones, dataset, failed, frames_per_clip=max(frames_per_clip, 1),
                                              trust_remote_code=trust_remote_code, progress=progress):
        chosen = feats.resolve_layers(layers, extracted.num_hidden_states, name) or extracted.layers
        positions = rows_for(extracted.ids, ids)
        # each frame's row in `meta` (or -1 when its clip is outside the label set)
        meta_row = np.full(len(extracted.ids), -1, dtype=np.int64)
        meta_row[positions] = np.arange(len(ids))
        frame_row = meta_row[extracted.frame_clip]
        dim = extracted.dim
        needed = -(-(dim + 1) // max(frames_per_clip, 1))
        masks: dict[tuple[str, str], np.ndarray] = {}
        for e, emotion in enumerate(classes):
            for domain in ("speech", "music"):
                clip_ok = (meta["label"] == e) & (meta["domain"] == domain)
                clips = int(clip_ok.sum())
                if clips == 0:
                    continue
                if clips < min_clips:
                    problems.append(f"{name}: {emotion}/{domain} has {clips} clip(s); needs at least "
                                    f"{min_clips}: skipped")
                    continue
                mask = np.zeros(len(frame_row), dtype=bool)
                mask[frame_row >= 0] = clip_ok[frame_row[frame_row >= 0]]
                if mask.sum() <= dim:
                    problems.append(
                        f"{name}: {emotion}/{domain} has {int(mask.sum())} frames from {clips} clips for "
                        f"{dim} dims: singular covariance (full rank needs ≥ {needed} clips at "
                        f"{frames_per_clip} frames per clip); scored with clipped PSD square roots, biased")
                masks[(emotion, domain)] = mask
        for emotion in classes:
            have = [d for d in ("speech", "music") if (emotion, d) in masks]
            if len(have) == 1:
                problems.append(f"{name}: {emotion} is usable only in {have[0]}: no speech–music distance")
        report_at = chosen[-1] if report_layer is None else feats.resolve_layers(
            [report_layer], extracted.num_hidden_states, name)[0]
        if report_at not in chosen:
            problems.append(f"{name}: report layer {report_at} is not among the scored layers {chosen}; "
                            f"using {chosen[-1]}")
            report_at = chosen[-1]
        report_layers[name] = report_at
        by_model[name] = {}
        for layer in chosen:
            frames = extracted.layer_frames(layer).astype(np.float64)
            stats = {key: gaussian_stats(frames[mask]) for key, mask in masks.items()}
            by_model[name][layer] = {}
            for emotion in classes:
                if (emotion, "speech") not in masks or (emotion, "music") not in masks:
                    continue
                sm, mm = masks[(emotion, "speech")], masks[(emotion, "music")]
                value = frechet_distance_from_stats(*stats[(emotion, "speech")], *stats[(emotion, "music")])
                low = high = None  # not bootstrapped (stated in the report settings)
                if n_boot and (bootstrap_all_layers or layer == report_at):
                    low, high = bootstrap_ci(frames[sm], frame_row[sm], frames[mm], frame_row[mm], n_boot=n_boot,
                                             confidence=confidence, seed=seed, full=value)
                infinity, r2 = fad_infinity(frames[sm], frames[mm], steps=inf_steps,
                                            min_fraction=inf_min_fraction, seed=seed)
                row = {"model": name, "layer": int(layer), "emotion": emotion, "fad": value,
                       "ci_low": low, "ci_high": high, "fad_inf": infinity, "fad_inf_r2": r2,
                       "speech_clips": int(len(np.unique(frame_row[sm]))),
                       "music_clips": int(len(np.unique(frame_row[mm]))),
                       "speech_frames": int(sm.sum()), "music_frames": int(mm.sum())}
                rows.append(row)
                by_model[name][layer][emotion] = row
            if within_domain:
                for domain in ("speech", "music"):
                    usable = [e for e in classes if (e, domain) in stats]
                    for i, first in enumerate(usable):
                        for second in usable[i + 1:]:
                            within.append({"model": name, "layer": int(layer), "domain": domain,
                                           "emotion_a": first, "emotion_b": second,
                                           "fad": frechet_distance_from_stats(*stats[(first, domain)],
                                                                              *stats[(second, domain)])})
    if not rows:
        raise ValueError("no emotion has enough clips in both domains for a speech–music FAD; "
                         + "; ".join(dict.fromkeys(problems)))
    problems += [f"{name} FAILED: {message}" for name, message in failed.items()]
    result = _write_fad(out, rows, within, by_model, classes, report_layers, problems, report, plots, {
        "label set": schema.get_label_set(label_set).name, "models": ", ".join(n for n in backbones if n not in failed),
        "frames per clip (cap, evenly spaced)": frames_per_clip,
        "bootstrap resamples (clip level)": f"{n_boot}, " + ("at every layer" if bootstrap_all_layers
                                                             else "at the report layer only"),
        "confidence": confidence, "FAD∞ subsets": f"{inf_steps} fractions from {inf_min_fraction} to 1",
        "Fréchet distance": "Cholesky + symmetric eigenvalues (exact for PSD; clipped for singular covariances)",
    })
    result.failed = failed
    return result


def _write_fad(out, rows, within, by_model, classes, chosen_layer, problems, report, plots, settings) -> FADResult:
    from scipy import stats as scistats

    figures = []
    bias, agreement = [], []
    models = list(by_model)
    for name in models:
        layers = sorted(by_model[name])
        emotions = [e for e in classes if any(e in by_model[name][k] for k in layers)]
        matrix = np.array([[by_model[name][k].get(e, {}).get("fad", np.nan) for k in layers] for e in emotions])
        file = f"fad_heatmap_{_slug(name)}.png"
        plots.heatmap(matrix, emotions, layers, out / file, title=f"{name}: speech–music FAD",
                      xlabel="layer", ylabel="emotion", cmap="magma_r")
        figures.append((f"{name}: speech–music FAD, emotion × layer", file))
    for name in models:
        layer = chosen_layer[name]
        values = {e: r["fad"] for e, r in by_model[name][layer].items()}
        bias.append({"model": name, "layer": layer, **_ranks(values)})
    bars = {name: {e: (r["fad"], _or(r["ci_low"], r["fad"]), _or(r["ci_high"], r["fad"])) for e, r in by_model[name][chosen_layer[name]].items()}
            for name in models}
    plots.emotion_bars(bars, out / "fad_by_emotion.png", title="Speech–music FAD at the report layer (CI whiskers)")
    figures.insert(0, ("Speech–music FAD per emotion at the report layer", "fad_by_emotion.png"))
    for i, first in enumerate(models):
        for second in models[i + 1:]:
            pairs = [("report", chosen_layer[first], chosen_layer[second])]
            pairs += [(k, k, k) for k in sorted(set(by_model[first]) & set(by_model[second]))]
            for label, layer_a, layer_b in pairs:
                shared = sorted(set(by_model[first][layer_a]) & set(by_model[second][layer_b]))
                if len(shared) < 2:
                    continue
                a = [by_model[first][layer_a][e]["fad"] for e in shared]
                b = [by_model[second][layer_b][e]["fad"] for e in shared]
                tau = scistats.kendalltau(a, b).statistic if len(shared) > 1 else np.nan
                rho = scistats.spearmanr(a, b).statistic if len(shared) > 2 else np.nan
                agreement.append({"model_a": first, "model_b": second, "layer": label, "emotions": len(shared),
                                  "kendall_tau": float(tau), "spearman_rho": float(rho)})
    shown_within = []
    for name in models:
        layer = chosen_layer[name]
        for domain in ("speech", "music"):
            entries = [w for w in within if w["model"] == name and w["layer"] == layer and w["domain"] == domain]
            if not entries:
                continue
            shown_within += entries
            emotions = list(dict.fromkeys([w["emotion_a"] for w in entries] + [w["emotion_b"] for w in entries]))
            matrix = np.zeros((len(emotions), len(emotions)))
            for w in entries:
                i, j = emotions.index(w["emotion_a"]), emotions.index(w["emotion_b"])
                matrix[i, j] = matrix[j, i] = w["fad"]
            file = f"fad_within_{_slug(name)}_{domain}.png"
            plots.heatmap(matrix, emotions, emotions, out / file, title=f"{name}, layer {layer}: {domain} emotions",
                          cmap="magma_r")
            figures.append((f"{name}: distances between {domain} emotions (layer {layer})", file))
    if within:
        report.write_rows(within, out / "fad_within")
    settings = {**settings, "report layer": ", ".join(f"{m}: {k}" for m, k in chosen_layer.items())}
    problems = list(dict.fromkeys(problems))
    result = FADResult(rows, bias, agreement, within, warnings=problems)
    result.report, result.csv, result.json = report.write_fad_report(
        out, rows, bias, agreement, shown_within, problems, settings, figures)
    return result


def _or(value, default):
    return default if value is None else value


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
