"""Self-contained Markdown reports: tables, warnings and PNGs in one output folder."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

from hub_emo import plots


def _cell(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "_(no rows)_\n"
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_rows(rows: Sequence[dict], stem: Path) -> tuple[Path, Path]:
    """The tidy table as CSV and JSON (``stem``.csv / .json)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = stem.with_suffix(".csv"), stem.with_suffix(".json")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    json_path.write_text(json.dumps(list(rows), indent=1))
    return csv_path, json_path


def _document(title: str, settings: dict, warnings: Sequence[str], sections: Sequence[tuple[str, str]]) -> str:
    parts = [f"# {title}\n"]
    parts.append("\n".join(f"- **{k}**: {v}" for k, v in settings.items()) + "\n")
    if warnings:
        parts.append("## Warnings\n\n" + "\n".join(f"- ⚠ {w}" for w in warnings) + "\n")
    for heading, body in sections:
        parts.append(f"## {heading}\n\n{body}")
    return "\n".join(parts)


def write_probing_report(out: Path, rows, means, best, warnings, settings) -> tuple[Path, Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = write_rows(rows, out / "probing")
    within = [m for m in means if m["train_domain"] == m["domain"]]
    across = [m for m in means if m["train_domain"] != m["domain"]]
    chosen = f"Layer chosen {best[0]['chosen_by']}.\n\n" if best else ""
    sections = [("Best layer per model and domain (chosen on validation folds)",
                 chosen + "`layer` is the layer chosen most often across outer folds, `layers` each fold's choice; "
                 "UA, WA and macro-F1 are the mean over outer folds of each fold's chosen layer's test score, so "
                 "they may average different layers (as `layers` shows), not `layer`'s own score.\n\n"
                 + markdown_table(best, ["model", "train_domain", "domain", "layer", "layers", "UA", "UA_std",
                                                "WA", "WA_std", "macro_F1", "macro_F1_std", "folds"]))]
    if within:
        plots.layer_curves(within, out / "probing_layers.png", title="Within-domain probing: UA per layer")
        sections.append(("Score against layer", "![UA per layer](probing_layers.png)\n"))
    if across:
        plots.layer_curves(across, out / "probing_cross_domain.png", title="Cross-domain probing: UA per layer")
        sections.append(("Cross-domain (fit on one domain, score on the other)",
                         "![cross-domain UA per layer](probing_cross_domain.png)\n"))
    sections.append(("Test scores per layer, mean over folds (descriptive: no layer is chosen on them)",
                     markdown_table(sorted(means, key=lambda m: (m["model"], m["train_domain"], m["domain"], m["layer"])),
                                    ["model", "train_domain", "domain", "layer", "UA", "UA_std", "UA_min", "UA_max",
                                     "WA", "macro_F1"])))
    sections.append(("Files", f"- per-fold tidy table: [{csv_path.name}]({csv_path.name}), "
                              f"[{json_path.name}]({json_path.name})\n"))
    path = out / "report.md"
    path.write_text(_document("Layerwise probing", settings, warnings, sections))
    return path, csv_path, json_path


def write_fad_report(out: Path, rows, ranking, rank_agreement, within, warnings, settings,
                     figures: Sequence[tuple[str, str]]) -> tuple[Path, Path, Path]:
    """``ranking``: one row per model and emotion at the report layer, in rank order;
    ``figures``: (caption, file name) pairs already written into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = write_rows(rows, out / "fad")
    sections = [
        ("Emotion bias: emotions ranked by speech–music KAD (1 = most alike)",
         "`kad` is ranked: the Kernel Audio Distance is unbiased (pairs of frames of one performer or clip are "
         "left out), so its expectation is the population distance whatever a cell's clip count or spread, at "
         "one kernel bandwidth per model and layer; `kad_low`–`kad_high` its interval. `fad` is the plain "
         "Fréchet estimate, biased upwards by an amount that grows with the dims and each cell's spread, so "
         "emotions are not ranked on it; `fad_low`–`fad_high` its interval where one can cover (see the "
         "settings), `fad_inf` the clip-level FAD∞; the clip counts are beside.\n\n"
         + markdown_table(ranking)),
        ("How the rankings differ between models",
         "Kendall τ-b of the KAD values, its exact permutation p-value (`kendall_p`) and bootstrap "
         "interval (`tau_low`–`tau_high`, report layers only); with 6 emotions |τ| must reach 0.867 for "
         "p < 0.05.\n\n" + markdown_table(rank_agreement)
         if rank_agreement else "_(needs two models and at least two shared emotions)_\n"),
        ("Speech–music KAD and FAD per model, layer and emotion", markdown_table(
            rows, ["model", "layer", "emotion", "kad", "kad_low", "kad_high", "fad", "fad_low", "fad_high", "fad_inf",
                   "fad_inf_r2", "speech_clips", "music_clips", "speech_frames", "music_frames"])),
        ("Within-domain distances between emotions (report layer; plain estimates, clip counts beside)",
         markdown_table(within) if within else "_(none)_\n"),
        ("Figures", "\n".join(f"**{caption}**\n\n![{caption}]({name})\n" for caption, name in figures)),
        ("Files", f"- tidy table: [{csv_path.name}]({csv_path.name}), [{json_path.name}]({json_path.name})\n"),
    ]
    path = out / "report.md"
    path.write_text(_document("Per-emotion Kernel and Fréchet Audio Distances", settings, warnings, sections))
    return path, csv_path, json_path
