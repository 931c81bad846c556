"""The per-emotion FAD/KAD study: how alike speech and music of each emotion are, per model and layer.

For each model, layer and emotion, between the frames of speech and of music of that
emotion (frame-level embeddings stacked over clips, as fadtk and kadtk):

- ``kad``: the Kernel Audio Distance (`kad`), unbiased with clustered frames (pairs of
  frames of one performer, or of one clip with ``cluster="clip"``, are left out), at one
  kernel bandwidth per model and layer; **the ranked quantity**: its expectation is the
  population distance whatever each cell's clip count and spread, so the emotion-bias
  ranking, the heatmap and the rank agreement use it;
- ``kad_low``/``kad_high``: its basic cluster-bootstrap interval, resampling performers
  (shared by speech and music in RAVDESS: one draw for both) by default, or clips;
- ``fad``: the plain Fréchet distance (`frechet`), the familiar number, biased upwards by
  an amount that grows with the dims and each cell's spread; ``fad_low``/``fad_high``: its
  interval, only at sizes where it covers (`bootstrap.fad_interval_refusal`);
- ``fad_inf``: clip-level FAD∞ (the bias extrapolated away, at the report layer).

Between models: Kendall τ (and Spearman ρ) of the KAD values with an exact permutation
p-value and a bootstrap interval (the same performer resamples for every emotion and
model, each replicate computed like the estimate). Within a domain: FAD between emotions
at the report layer.

    run_fad(backbones, dataset, label_set="ravdess6", layers=None, out_dir="fad_report", *,
            frames_per_clip=32, kad_frames=8, n_boot=100, confidence=0.95, inf_steps=8, inf_min_fraction=0.5,
            cluster="performer", min_clips=2, report_layer=None, within_domain=True,
            bootstrap_all_layers=False, seed=0, trust_remote_code=False, progress=True) -> FADResult
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hub_emo.analysis import bootstrap
from hub_emo.analysis.frechet import FrameSet, fad_infinity_of_sets, fit_gaussian, gaussian_distance
from hub_emo.analysis.kad import SCALE, KernelSums, median_pairwise_distance, thin_frames
from hub_emo.analysis.ranking import rank_agreement
from hub_emo.schema import DOMAINS

BANDWIDTH_FRAMES = 1024  # music frames whose 523 776 pairs give a layer's kernel bandwidth (a median)


# --------------------------------------------------------------------------------------
# The cells of the study: emotion × domain, their frames, clips and performers.
# --------------------------------------------------------------------------------------


@dataclass
class Cell:
    """One emotion × domain: which frames, each frame's clip and cluster (bootstrap unit)."""

    frames: np.ndarray  # boolean mask over the extraction's frames
    clip: np.ndarray  # each selected frame's clip (row in the metadata)
    cluster: np.ndarray  # each selected frame's resampling unit (index into the study's clusters)

    @property
    def clips(self) -> int:
        return int(np.unique(self.clip).size)


def find_cells(meta: dict, classes, frame_row: np.ndarray, cluster_of_row: np.ndarray, *, name: str,
               dim: int, frames_per_clip: int, min_clips: int, problems: list[str]) -> dict[tuple[str, str], Cell]:
    """Emotion × domain cells with at least ``min_clips`` clips; what is skipped or weak goes to ``problems``."""
    cells = {}
    needed = -(-(dim + 1) // max(frames_per_clip, 1))
    known = frame_row >= 0
    for e, emotion in enumerate(classes):
        for domain in DOMAINS:
            clip_ok = (meta["label"] == e) & (meta["domain"] == domain)
            clips = int(clip_ok.sum())
            if clips == 0:
                continue
            if clips < min_clips:
                problems.append(f"{name}: {emotion}/{domain} has {clips} clip(s); needs at least {min_clips}: skipped")
                continue
            mask = np.zeros(len(frame_row), dtype=bool)
            mask[known] = clip_ok[frame_row[known]]
            if mask.sum() <= dim:
                problems.append(
                    f"{name}: {emotion}/{domain} has {int(mask.sum())} frames from {clips} clips for "
                    f"{dim} dims: singular covariance (full rank needs ≥ {needed} clips at "
                    f"{frames_per_clip} frames per clip); scored exactly in frame space, but biased")
            rows = frame_row[mask]
            cells[(emotion, domain)] = Cell(mask, rows, cluster_of_row[rows])
    for emotion in classes:
        have = [d for d in DOMAINS if (emotion, d) in cells]
        if len(have) == 1:
            problems.append(f"{name}: {emotion} is usable only in {have[0]}: no speech–music distance")
    return cells


# --------------------------------------------------------------------------------------
# One layer of one model.
# --------------------------------------------------------------------------------------


@dataclass
class LayerPlan:
    """What to compute at a layer (the settings of `run_fad`, resolved)."""

    classes: tuple
    inf_steps: int
    inf_min_fraction: float
    confidence: float
    seed: int
    counts: np.ndarray | None = None  # (n_boot × clusters) shared resamples; None: no bootstrap
    paired: bool = True  # clusters are performers shared by speech and music
    report: bool = True  # the report layer: FAD∞ and within-domain distances too
    kad_frames: int = 8  # frames per clip in the kernel (0: all)
    within_domain: bool = True


def layer_bandwidth(frames: np.ndarray, cells: dict[tuple[str, str], Cell], seed) -> float:
    """One kernel bandwidth for every emotion of a layer: kadtk's rule (the median pairwise
    distance of the second, music, set) over the music frames of all emotions (a random
    1 024 of them: the median of half a million pairs moves by about 0.1 %), so that the
    emotions' KAD values are on one scale and can be ranked."""
    music = np.zeros(len(frames), dtype=bool)
    for (_, domain), cell in cells.items():
        if domain == "music":
            music |= cell.frames
    return median_pairwise_distance(frames[music], max_frames=BANDWIDTH_FRAMES, seed=seed)


def score_pair(speech: tuple[np.ndarray, Cell], music: tuple[np.ndarray, Cell], plan: LayerPlan, bandwidth: float,
               seed) -> tuple[dict, np.ndarray | None, tuple]:
    """One emotion's row (KAD, FAD, their intervals where given, FAD∞ at the report layer),
    the KAD replicates of the shared resamples (None without a bootstrap) and the two fits."""
    (x, cell_a), (y, cell_b) = speech, music
    keep_a, keep_b = thin_frames(cell_a.clip, plan.kad_frames), thin_frames(cell_b.clip, plan.kad_frames)
    kernel = KernelSums(x[keep_a], y[keep_b], clips_a=cell_a.cluster[keep_a], clips_b=cell_b.cluster[keep_b],
                        bandwidth=bandwidth, paired=plan.paired)
    sets = FrameSet(x, cell_a.clip), FrameSet(y, cell_b.clip)
    row = {"kad": float(kernel.values()[0]) * SCALE, "kad_low": None, "kad_high": None,
           "fad": gaussian_distance(sets[0].full, sets[1].full), "fad_low": None, "fad_high": None,
           "fad_inf": None, "fad_inf_r2": None}
    values = None
    if plan.counts is not None:
        values = bootstrap.replicates("kad", kernel, plan.counts[:, kernel.ids_a], plan.counts[:, kernel.ids_b])
        row["kad_low"], row["kad_high"] = bootstrap.interval("kad", row["kad"], values, plan.confidence)
        if fad_refusal(x.shape[1], cell_a, cell_b, plan.paired) is None:
            fad_values = bootstrap.replicates("fad", sets, plan.counts, plan.counts,
                                              units=(cell_a.cluster, cell_b.cluster))
            row["fad_low"], row["fad_high"] = bootstrap.interval("fad", row["fad"], fad_values, plan.confidence)
    if plan.report:
        row["fad_inf"], row["fad_inf_r2"] = fad_infinity_of_sets(
            *sets, steps=plan.inf_steps, min_fraction=plan.inf_min_fraction, seed=seed, full_distance=row["fad"])
    return row, values, (sets[0].full, sets[1].full)


def fad_refusal(dims: int, cell_a: Cell, cell_b: Cell, paired: bool) -> str | None:
    """`bootstrap.fad_interval_refusal` for one emotion's cells (shared performers count once)."""
    if paired:
        units = np.union1d(cell_a.cluster, cell_b.cluster).size
        return bootstrap.fad_interval_refusal(dims, units, units)
    return bootstrap.fad_interval_refusal(dims, np.unique(cell_a.cluster).size, np.unique(cell_b.cluster).size)


def score_layer(frames: np.ndarray, cells: dict[tuple[str, str], Cell], plan: LayerPlan
                ) -> tuple[dict[str, dict], dict[str, np.ndarray], list[dict]]:
    """Per emotion: the row of numbers; the KAD replicates of the shared resamples (for τ's
    interval; empty without a bootstrap); within-domain FAD between emotions (report layer)."""
    bandwidth = layer_bandwidth(frames, cells, plan.seed)
    rows, replicates, fits = {}, {}, {}
    for e, emotion in enumerate(plan.classes):
        if (emotion, "speech") not in cells or (emotion, "music") not in cells:
            continue
        speech, music = cells[(emotion, "speech")], cells[(emotion, "music")]
        row, values, (fits[(emotion, "speech")], fits[(emotion, "music")]) = score_pair(
            (frames[speech.frames], speech), (frames[music.frames], music), plan, bandwidth, seed=[plan.seed, e])
        if values is not None:
            replicates[emotion] = values
        rows[emotion] = {"emotion": emotion, **row, "bandwidth": bandwidth,
                         "speech_clips": speech.clips, "music_clips": music.clips,
                         "speech_frames": int(speech.frames.sum()), "music_frames": int(music.frames.sum())}
    within = []
    if plan.within_domain and plan.report:
        fits.update({key: fit_gaussian(frames[cell.frames]) for key, cell in cells.items() if key not in fits})
        for domain in DOMAINS:
            usable = [e for e in plan.classes if (e, domain) in fits]
            for first, second in itertools.combinations(usable, 2):
                within.append({"domain": domain, "emotion_a": first, "emotion_b": second,
                               "fad": gaussian_distance(fits[(first, domain)], fits[(second, domain)]),
                               "clips_a": cells[(first, domain)].clips, "clips_b": cells[(second, domain)].clips})
    return rows, replicates, within


# --------------------------------------------------------------------------------------
# The study.
# --------------------------------------------------------------------------------------


@dataclass
class FADResult:
    rows: list[dict]
    bias: list[dict]
    rank_agreement: list[dict]
    within: list[dict]
    ranking: list[dict] = field(default_factory=list)
    report: Path | None = None
    csv: Path | None = None
    json: Path | None = None
    warnings: list[str] = field(default_factory=list)
    method: dict = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{len(self.rows)} speech–music distances; report: {self.report}"]
        for entry in self.bias:
            shown = [r for r in self.ranking if r["model"] == entry["model"]]
            lines.append(f"  {entry['model']:<16} layer {entry['layer']:>2}, ranked by KAD, most alike → least:")
            lines += [f"    {r['rank']}. {r['emotion']:<10} KAD {r['kad']:.3g}{_interval(r, 'kad')}, "
                      f"FAD {r['fad']:.3g}{_interval(r, 'fad')} (clips: speech {r['speech_clips']}, "
                      f"music {r['music_clips']})" for r in shown]
        for a in self.rank_agreement:
            if a["layer"] == "report":
                interval = ("" if a["tau_low"] is None else
                            f", {self.method.get('confidence', 0.95):.0%} bootstrap interval "
                            f"[{a['tau_low']:.2f}, {a['tau_high']:.2f}]")
                lines.append(f"  {a['model_a']} vs {a['model_b']}: Kendall τ {a['kendall_tau']:.2f} "
                             f"(exact permutation p = {a['kendall_p']:.3g}{interval}), "
                             f"Spearman ρ {a['spearman_rho']:.2f}")
        for key in ("interval", "FAD interval"):
            if self.method.get(key):
                lines.append(f"  {key}: {self.method[key]}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _interval(row: dict, name: str) -> str:
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    return "" if low is None else f" [{low:.3g}, {high:.3g}]"


def _performer_of(dataset, ids: list[str], cluster: str) -> np.ndarray:
    """Each clip's resampling unit: its performer (the ``speaker`` column) or itself."""
    if cluster == "clip":
        return np.arange(len(ids))
    if cluster != "performer":
        raise ValueError(f"cluster must be 'performer' or 'clip', got {cluster!r}")
    if "speaker" not in dataset.column_names:
        raise ValueError("the dataset has no 'speaker' column for a performer bootstrap; use cluster='clip'")
    columns = dataset.select_columns(["id", "speaker"]).to_dict()
    speaker = dict(zip(map(str, columns["id"]), map(str, columns["speaker"])))
    _, index = np.unique([speaker[i] for i in ids], return_inverse=True)
    return index


def run_fad(backbones: dict, dataset, label_set="ravdess6", layers: Sequence[int] | None = None,
            out_dir="fad_report", *, frames_per_clip: int = 32, kad_frames: int = 8, n_boot: int = 100,
            confidence: float = 0.95, inf_steps: int = 8, inf_min_fraction: float = 0.5,
            cluster: str = "performer", min_clips: int = 2, report_layer: int | None = None,
            within_domain: bool = True, bootstrap_all_layers: bool = False, seed: int = 0,
            trust_remote_code: bool = False, progress: bool = True) -> FADResult | None:
    """Per model, layer and emotion: KAD and FAD between speech and music frames; report and tables.

    Extraction covers every hidden state (the same cache entry as `run_probing`), then
    ``layers`` (default all; negative counts from the end) are scored. ``report_layer``
    (default the last of ``layers``) is the layer of the emotion-bias ranking, bars, τ,
    FAD∞ and within-domain distances, and the only layer bootstrapped unless
    ``bootstrap_all_layers``. ``cluster``: the resampling unit and the unit whose frame
    pairs KAD leaves out, ``"performer"`` (the dataset's ``speaker``; one draw for speech
    and music when they share performers) or ``"clip"``. ``kad_frames``: frames per clip in
    the kernel (0: all ``frames_per_clip``). Progress with an ETA goes to a terminal only.
    Under torchrun every rank extracts its share and rank 0 alone scores and writes the
    report (`hub_emo.analysis.rank_zero`); the other ranks return None.
    """
    from hub_emo.analysis.rank_zero import on_rank_zero

    _check_settings(backbones, min_clips, confidence)
    study = _study(dataset, label_set, cluster)  # a dataset FAD cannot use fails before any extraction
    settings = dict(layers=layers, out_dir=out_dir, frames_per_clip=frames_per_clip, kad_frames=kad_frames,
                    n_boot=n_boot, confidence=confidence, inf_steps=inf_steps, inf_min_fraction=inf_min_fraction,
                    cluster=cluster, min_clips=min_clips, report_layer=report_layer, within_domain=within_domain,
                    bootstrap_all_layers=bootstrap_all_layers, seed=seed, trust_remote_code=trust_remote_code,
                    progress=progress)
    return on_rank_zero(backbones, dataset, lambda ok, failed: _fad(ok, dataset, study, failed, **settings),
                        frames_per_clip=max(frames_per_clip, 1), trust_remote_code=trust_remote_code,
                        progress=progress)


def _study(dataset, label_set, cluster: str) -> tuple:
    """(label set name, ids, metadata, classes, each row's resampling unit), after refusing a
    dataset without both domains."""
    from hub_emo import schema
    from hub_emo.analysis.clips import clip_metadata

    ids, meta, classes = clip_metadata(dataset, label_set)
    missing = [d for d in DOMAINS if d not in set(meta["domain"])]
    name = schema.get_label_set(label_set).name
    if missing:
        raise ValueError(f"the dataset has no {' or '.join(missing)} clips in label set "
                         f"{name!r}; speech–music FAD needs both domains")
    return name, ids, meta, classes, _performer_of(dataset, ids, cluster)


def _fad(backbones: dict, dataset, study: tuple, failed_before: dict, *, layers, out_dir, frames_per_clip: int,
         kad_frames: int, n_boot: int, confidence: float, inf_steps: int, inf_min_fraction: float, cluster: str,
         min_clips: int, report_layer, within_domain: bool, bootstrap_all_layers: bool, seed: int,
         trust_remote_code: bool, progress: bool) -> FADResult:
    """`run_fad` on this process alone; ``failed_before`` holds the models that failed before
    (name -> message), named in the report and the result beside those that fail here."""
    from hub_emo.analysis.clips import unlabelled_note

    label_set, ids, meta, classes, cluster_of_row = study
    problems: list[str] = unlabelled_note(dataset)
    here: dict[str, str] = {}
    extracted, cells, chosen, report_at = _extract_cells(
        backbones, dataset, ids, meta, classes, cluster_of_row, here, problems, layers=layers,
        report_layer=report_layer, frames_per_clip=frames_per_clip, min_clips=min_clips,
        trust_remote_code=trust_remote_code, progress=progress)
    failed = {**failed_before, **here}
    if not extracted:
        raise ValueError("every model failed: " + "; ".join(f"{n}: {m}" for n, m in failed.items()))
    problems += [f"{name} FAILED: {message}" for name, message in failed.items()]
    if not any((e, "speech") in c and (e, "music") in c for c in cells.values() for e in classes):
        raise ValueError("no emotion has enough clips in both domains for a speech–music FAD; "
                         + "; ".join(dict.fromkeys(problems)))
    counts = study_resamples(meta, cluster_of_row, cells, cluster, n_boot, seed) if n_boot else None
    by_model, replicates, rows, within = _score_models(
        extracted, cells, chosen, report_at, classes, counts, progress=progress,
        bootstrap_all_layers=bootstrap_all_layers,
        plan=dict(inf_steps=inf_steps, inf_min_fraction=inf_min_fraction, confidence=confidence, seed=seed,
                  within_domain=within_domain, paired=cluster == "performer", kad_frames=kad_frames))
    shared = _shared_performers(meta, cluster_of_row) if cluster == "performer" else None
    method = _method(confidence, n_boot, shared, _fad_refused(extracted, cells, cluster) if n_boot else None)
    settings = _settings(label_set, [n for n in backbones if n not in failed], method,
                         report_at, frames_per_clip=frames_per_clip, kad_frames=kad_frames, n_boot=n_boot,
                         bootstrap_all_layers=bootstrap_all_layers, inf_steps=inf_steps,
                         inf_min_fraction=inf_min_fraction)
    result = _write_fad(Path(out_dir), rows, within, by_model, replicates, classes, report_at, problems, settings,
                        method)
    result.failed = failed
    return result


def _fad_refused(extracted, cells, cluster: str) -> str | None:
    """Why the FAD intervals were refused (the first emotion's reason), or None."""
    for name, by_cell in cells.items():
        for (emotion, domain), cell in by_cell.items():
            if domain == "speech" and (emotion, "music") in by_cell:
                reason = fad_refusal(extracted[name].dim, cell, by_cell[(emotion, "music")], cluster == "performer")
                if reason:
                    return reason
    return None


def study_resamples(meta: dict, cluster_of_row: np.ndarray, cells: dict, cluster: str, n_boot: int, seed
                    ) -> np.ndarray:
    """The study's (n_boot × clusters) resample counts, shared by every emotion, model and
    layer (τ's interval needs them aligned). Performers: one draw of all of them, as
    `bootstrap_ci` with ``paired=True``; clips: each emotion × domain's clips on their own,
    as `bootstrap_ci`'s per-set ids. Rows leaving a cell < 2 clusters are drawn again."""
    clusters = int(cluster_of_row.max()) + 1
    if cluster == "performer":
        strata = [np.arange(clusters)]
    else:
        keys = np.asarray(meta["label"]) * len(DOMAINS) + (np.asarray(meta["domain"]) == DOMAINS[1])
        strata = [cluster_of_row[keys == k] for k in np.unique(keys)]
    keep = {tuple(np.unique(cell.cluster)) for by_cell in cells.values() for cell in by_cell.values()}
    return bootstrap.cluster_resamples(strata, clusters, n_boot, seed, keep=[np.array(k) for k in keep])


def _check_settings(backbones: dict, min_clips: int, confidence: float) -> None:
    if not backbones:
        raise ValueError("give at least one backbone (name -> folder, Hub id or model)")
    if min_clips < 2:
        raise ValueError("min_clips must be at least 2 (a covariance needs two frames and a bootstrap two clips)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _extract_cells(backbones, dataset, ids, meta, classes, cluster_of_row, failed: dict, problems: list, *,
                   layers, report_layer, frames_per_clip: int, min_clips: int, trust_remote_code: bool,
                   progress: bool):
    """Each model's frames (every hidden state, the cache entry `run_probing` shares) and its
    (emotion, domain) cells; returns (features, cells, scored layers, report layer), each by model.
    A model that fails is named in ``failed``; what is too small to score goes to ``problems``."""
    from hub_emo import features as feats
    from hub_emo.analysis.clips import rows_for

    extracted, cells, chosen, report_at = {}, {}, {}, {}
    for name, fs in feats.extract_each(backbones, dataset, failed, frames_per_clip=max(frames_per_clip, 1),
                                       trust_remote_code=trust_remote_code, progress=progress):
        chosen[name] = feats.resolve_layers(layers, fs.num_hidden_states, name) or fs.layers
        report_at[name] = _report_layer(report_layer, chosen[name], fs.num_hidden_states, name, problems)
        meta_row = np.full(len(fs.ids), -1, dtype=np.int64)
        meta_row[rows_for(fs.ids, ids)] = np.arange(len(ids))
        cells[name] = find_cells(meta, classes, meta_row[fs.frame_clip], cluster_of_row, name=name, dim=fs.dim,
                                 frames_per_clip=frames_per_clip, min_clips=min_clips, problems=problems)
        extracted[name] = fs
    return extracted, cells, chosen, report_at


def _settings(label_set: str, models: list[str], method: dict, report_at: dict, *, frames_per_clip: int,
              kad_frames: int, n_boot: int, bootstrap_all_layers: bool, inf_steps: int,
              inf_min_fraction: float) -> dict:
    """The run's settings in words, for the reports."""
    return {
        "label set": label_set, "models": ", ".join(models),
        "frames per clip (cap, evenly spaced)": frames_per_clip,
        "KAD frames per clip (evenly spaced among those)": kad_frames or "all",
        "bootstrap": f"{n_boot} resamples, "
                     + ("at every layer" if bootstrap_all_layers else "at the report layer only"),
        **method,
        "FAD∞": f"clip subsets at {inf_steps} fractions from {inf_min_fraction} to 1, both domains, "
                "without replacement (report layer)",
        "Fréchet distance": "exact: frame-space singular values when a set has ≤ dims frames, else Cholesky + "
                            "symmetric eigenvalues",
        "report layer": ", ".join(f"{m}: {k}" for m, k in report_at.items()),
    }


def _method(confidence, n_boot, shared_performers: int | None, fad_refused: str | None) -> dict:
    """How the ranked value, the intervals and the agreement were computed, in words for the reports."""
    if shared_performers is None:
        unit, pairs = "clips", "clip"
    elif shared_performers:
        unit, pairs = f"performers ({shared_performers} shared by speech and music, drawn once for both)", "performer"
    else:
        unit, pairs = "performers (none shared by speech and music)", "performer"
    return {
        "confidence": confidence,
        "ranked on": f"KAD (unbiased RBF-kernel MMD² × {SCALE:g}; pairs of frames of one {pairs} left out), at one "
                     "bandwidth per model and layer (the median pairwise distance of its music frames): its "
                     "expectation is the population distance whatever a cell's clip count or spread",
        "interval": (f"{confidence:.0%} cluster-bootstrap intervals, {n_boot} resamples of {unit}: percentile for "
                     "KAD, basic (reflected) for FAD" if n_boot else "none (--bootstrap 0)"),
        "FAD interval": fad_refused or ("given beside KAD's" if n_boot else ""),
        "rank agreement": "Kendall τ-b of the KAD values with an exact permutation p-value (every ordering, up to 8 "
                          "emotions) and a percentile bootstrap interval from the same resamples",
    }


def _report_layer(report_layer, chosen: list[int], num_hidden_states, name, problems) -> int:
    from hub_emo import features as feats

    if report_layer is None:
        return chosen[-1]
    layer = feats.resolve_layers([report_layer], num_hidden_states, name)[0]
    if layer not in chosen:
        problems.append(f"{name}: report layer {layer} is not among the scored layers {chosen}; using {chosen[-1]}")
        return chosen[-1]
    return layer


def _shared_performers(meta, cluster_of_row) -> int:
    speech = set(cluster_of_row[meta["domain"] == "speech"])
    return len(speech & set(cluster_of_row[meta["domain"] == "music"]))


def _score_models(extracted, cells, chosen, report_at, classes, counts, *, progress, bootstrap_all_layers, plan):
    """Every model × layer through `score_layer`, with a progress bar (ETA) on a terminal."""
    from tqdm.auto import tqdm

    by_model, replicates, rows, within = {}, {}, [], []
    total = sum(len(v) for v in chosen.values())
    with tqdm(total=total, desc="FAD (model × layer)", unit=" layer", disable=None if progress else True) as bar:
        for name, fs in extracted.items():
            by_model[name] = {}
            for layer in chosen[name]:
                resampled = counts is not None and (bootstrap_all_layers or layer == report_at[name])
                layer_plan = LayerPlan(classes=classes, counts=counts if resampled else None,
                                       report=layer == report_at[name], **plan)
                scored, reps, pairs = score_layer(fs.layer_frames(layer).astype(np.float64), cells[name], layer_plan)
                by_model[name][layer] = scored
                if layer == report_at[name]:
                    replicates[name] = reps
                rows += [{"model": name, "layer": int(layer), **r} for r in scored.values()]
                within += [{"model": name, "layer": int(layer), **w} for w in pairs]
                bar.set_postfix_str(f"{name} layer {layer}")
                bar.update()
    return by_model, replicates, rows, within


def _ranks(values: dict[str, float]) -> dict[str, int]:
    return {k: i + 1 for i, (_, k) in enumerate(sorted((v, k) for k, v in values.items()))}


def _write_fad(out: Path, rows, within, by_model, replicates, classes, report_at, problems, settings,
               method) -> FADResult:
    from hub_emo import plots
    from hub_emo.analysis import report

    out.mkdir(parents=True, exist_ok=True)
    figures, bias, ranking = [], [], []
    for name, layers in by_model.items():
        order = sorted(layers)
        emotions = [e for e in classes if any(e in layers[k] for k in order)]
        matrix = np.array([[layers[k].get(e, {}).get("kad", np.nan) for k in order] for e in emotions])
        file = f"fad_heatmap_{_slug(name)}.png"
        plots.heatmap(matrix, emotions, order, out / file, title=f"{name}: speech–music KAD", xlabel="layer",
                      ylabel="emotion", cmap="magma_r")
        figures.append((f"{name}: speech–music KAD, emotion × layer", file))
        scored = layers[report_at[name]]
        ranks = _ranks({e: r["kad"] for e, r in scored.items()})
        bias.append({"model": name, "layer": report_at[name], **ranks})
        ranking += [{"model": name, "layer": report_at[name], "rank": ranks[e], "emotion": e,
                     **{k: scored[e][k] for k in ("kad", "kad_low", "kad_high", "fad", "fad_low", "fad_high",
                                                  "fad_inf", "speech_clips", "music_clips")}}
                    for e in sorted(scored, key=ranks.get)]
    bars = {name: {e: (r["kad"], min(r["kad_low"] if r["kad_low"] is not None else r["kad"], r["kad"]),
                       max(r["kad_high"] if r["kad_high"] is not None else r["kad"], r["kad"]))
                   for e, r in by_model[name][report_at[name]].items()} for name in by_model}
    plots.emotion_bars(bars, out / "fad_by_emotion.png", ylabel="KAD (× 100)",
                       title=f"Speech–music KAD at the report layer (whiskers: {method['confidence']:.0%} interval)")
    figures.insert(0, ("Speech–music KAD per emotion at the report layer", "fad_by_emotion.png"))
    agreement = rank_agreement(by_model, replicates, report_at, method["confidence"])
    shown_within = [w for w in within if w["layer"] == report_at[w["model"]]]
    for name in by_model:
        for domain in DOMAINS:
            entries = [w for w in shown_within if w["model"] == name and w["domain"] == domain]
            if entries:
                figures.append(_within_heatmap(entries, out, name, domain, report_at[name], plots))
    if within:
        report.write_rows(within, out / "fad_within")
    problems = list(dict.fromkeys(problems))
    result = FADResult(rows, bias, agreement, within, ranking=ranking, warnings=problems, method=method)
    result.report, result.csv, result.json = report.write_fad_report(
        out, rows, ranking, agreement, shown_within, problems, settings, figures)
    return result


def _within_heatmap(entries, out, name, domain, layer, plots) -> tuple[str, str]:
    emotions = list(dict.fromkeys([w["emotion_a"] for w in entries] + [w["emotion_b"] for w in entries]))
    matrix = np.zeros((len(emotions), len(emotions)))
    for w in entries:
        i, j = emotions.index(w["emotion_a"]), emotions.index(w["emotion_b"])
        matrix[i, j] = matrix[j, i] = w["fad"]
    file = f"fad_within_{_slug(name)}_{domain}.png"
    plots.heatmap(matrix, emotions, emotions, out / file, title=f"{name}, layer {layer}: {domain} emotions",
                  cmap="magma_r")
    return f"{name}: distances between {domain} emotions (layer {layer})", file


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
