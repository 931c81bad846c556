"""What a run leaves behind: each stage's results and plots, the summary across folds, and the
fold whose model is published."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hub_emo.metric import SUMMARY_METRICS

from .planning import Plan, StagePlan


def write_stage(run_plan: Plan, stage: StagePlan, result: dict, best: Path) -> None:
    """The main process's files: the best model's results (the model saved its preprocessor
    beside itself), the plots, and the stage's ``results.json`` (written last: it marks the
    stage done for ``resume``)."""
    args = run_plan.args
    results = {
        **_portable(result, Path(args.output_dir)),
        "dataset": run_plan.dataset_name,
        "label_set": stage.label_set,
    }
    (best / "results.json").write_text(json.dumps(results, indent=2))
    _plots(result, stage.output_dir)
    (stage.output_dir / "results.json").write_text(json.dumps(result, indent=2))


def _portable(result: dict, root: Path) -> dict:
    """A stage result as it travels with its model (and to the Hub): folders relative to the run's
    output_dir, the feature cache by its key under the cache root; no path of this machine."""
    from hub_emo.paths import cache_dir

    def relative(path, base: Path) -> str | None:
        if path is None:
            return None
        path = Path(path).resolve()
        return str(path.relative_to(base.resolve())) if path.is_relative_to(base.resolve()) else path.name

    out = dict(result, model=relative(result["model"], root), best_checkpoint=relative(result["best_checkpoint"], root))
    if "feature_cache" in result:
        out["feature_cache"] = dict(result["feature_cache"],
                                    directory=relative(result["feature_cache"]["directory"], cache_dir()))
    return out


def _plots(result: dict, folder: Path) -> None:
    """The stage's confusion matrix and (weighted sum) layer weights, drawn by `hub_emo.plots`."""
    from hub_emo import plots

    if "confusion_matrix" in result:
        title = f"{result['strategy']}: UA {result['balanced_accuracy']:.3f}"
        plots.save(plots.confusion_matrix(result["confusion_matrix"], result["labels"], title),
                   folder / "confusion_matrix.png", dpi=120)
    if "layer_weights" in result:
        plots.save(plots.layer_weights(result["layer_weights"]), folder / "layer_weights.png", dpi=120)


def fold_summary(per_fold: dict[str, dict]) -> dict:
    """Mean and standard deviation (ddof=1; 0 for one fold) of each metric across folds."""
    mean, std, text = {}, {}, {}
    for key in SUMMARY_METRICS:
        values = np.array([r[key] for r in per_fold.values() if key in r], dtype=float)
        if values.size == 0:
            continue
        mean[key] = float(values.mean())
        std[key] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        text[key] = f"{mean[key]:.4f} ± {std[key]:.4f}"
    return {**mean, "std": std, "summary": text}


def mean_validation(per_fold: dict[str, dict]) -> float | None:
    """Mean over folds of the best checkpoints' validation scores: what a choice between runs may use."""
    scores = [r.get("best_validation") for r in per_fold.values()]
    return None if not scores or any(v is None for v in scores) else float(np.mean(scores))


def choose_fold(per_fold: dict[str, dict], metric: str) -> tuple[str, str]:
    """(fold whose model to publish, how it was chosen): the best *validation* score of its best
    checkpoint, never a test score; the first fold when a fold has no validation split."""
    scores = {f: r.get("best_validation") for f, r in per_fold.items()}
    if any(v is None for v in scores.values()):
        first = next(iter(per_fold))
        return first, f"fold {first}, the first fold: without a validation split no fold is chosen by a score"
    best = max(scores, key=lambda f: scores[f])  # first maximum in fold order
    return best, (f"fold {best}: the best validation {metric} ({scores[best]:.4f}) of the {len(scores)} folds' "
                  "best checkpoints (speaker-disjoint validation split; test folds unseen)")
