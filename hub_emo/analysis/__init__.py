"""Analysis stage: layerwise probing and per-emotion Fréchet and Kernel Audio Distances.

Both read one cached extraction of every hidden state (`hub_emo.features.extract_features`).

    run_probing(backbones, dataset, label_set="ravdess6", out_dir="probe_report", ...) -> ProbingResult
    run_fad(backbones, dataset, label_set="ravdess6", layers=None, out_dir="fad_report", ...) -> FADResult
    frechet_distance(emb_a, emb_b) -> float            # (frames × dims) arrays
    frechet_distance_from_stats(mu_a, cov_a, mu_b, cov_b) -> float
    kad(emb_a, emb_b, *, clips_a=None, clips_b=None, bandwidth=None, scale=None) -> float
    fad_infinity(emb_a, emb_b, *, clips_a=None, clips_b=None, ...) -> (FAD∞, r²)
    bootstrap_ci(emb_a, clips_a, emb_b, clips_b, *, distance="kad", n_boot, confidence, seed,
                 paired=False) -> (low, high)

``backbones`` maps a display name to a local folder, a Hub id, a model object or a
(model, feature extractor) pair; results carry ``.rows`` (list of dicts), ``.report``
(the Markdown file) and ``.summary()``. See each module's docstring for the options.
"""

from __future__ import annotations

from hub_emo.analysis.bootstrap import bootstrap_ci
from hub_emo.analysis.fad import FADResult, run_fad
from hub_emo.analysis.frechet import FrechetWarning, fad_infinity, frechet_distance, frechet_distance_from_stats
from hub_emo.analysis.kad import kad
from hub_emo.analysis.probing import ProbingResult, run_probing

__all__ = [
    "FADResult",
    "FrechetWarning",
    "ProbingResult",
    "bootstrap_ci",
    "fad_infinity",
    "frechet_distance",
    "frechet_distance_from_stats",
    "kad",
    "run_fad",
    "run_probing",
]
