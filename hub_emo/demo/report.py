"""The demo's `report.md`: the paper's results section, written from the numbers.

Tables and plots come from the analysis and training steps; the sentences under each
study are generated from the same numbers, so they stay true when the data change.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from hub_emo.analysis.html import write_html_report
from hub_emo.analysis.report import markdown_table
from hub_emo.demo.pretrain import STAND_IN_NOTE
from hub_emo.schema import get_label_set

SYNTHETIC_NOTE = (
    "**The corpus is synthetic** (espeak-ng speech, FluidSynth music): the numbers show that "
    "the workflow runs end to end. Run `hub-emo demo --root RAVDESS --backbone NAME=ID ...` "
    "for real results."
)


def _fmt(value, digits=3):
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "n/a"
    return value


def _images(folder: Path, base: Path) -> list[str]:
    return [f"![{p.stem}]({os.path.relpath(p, base)})" for p in sorted(folder.glob("*.png"))]


def probing_section(probing, out: Path, num_classes: int) -> list[str]:
    best = probing.best
    lines = ["## 1. Layerwise probing", ""]
    lines.append(
        "A small MLP probe (the paper group's 768→128→16→C head, scaled to the backbone) on each "
        "layer's mean-pooled features, actor-independent folds. Best layer per backbone and "
        "train→test domain (UA = balanced accuracy, chance = 1/classes)."
    )
    if best:
        lines[-1] += f" The layer is chosen {best[0]['chosen_by']}."
    lines += ["", markdown_table([{k: _fmt(v) for k, v in row.items() if k != "chosen_by"} for row in best]), ""]
    within = [b for b in best if b["train_domain"] == b["domain"]]
    cross = [b for b in best if b["train_domain"] != b["domain"]]
    if within:
        top = max(within, key=lambda b: b["UA"])
        sentences = [
            f"Within a domain, the best probe is {top['model']} on {top['domain']} at layer "
            f"{top['layer']} (UA {top['UA']:.3f})."
        ]
        if cross:
            chance = 1.0 / num_classes
            cross_ua = sum(b["UA"] for b in cross) / len(cross)
            gap = sum(b["UA"] for b in within) / len(within) - cross_ua
            if cross_ua < chance + 0.05:
                sentences.append(
                    f"Probes trained on one domain and tested on the other score UA {cross_ua:.3f}, near "
                    f"chance ({chance:.3f}): in these backbones little of the emotion information a probe "
                    "uses carries over between speech and music."
                )
            else:
                sentences.append(
                    f"Probes trained on one domain and tested on the other score UA {cross_ua:.3f} (chance "
                    f"{chance:.3f}), {gap:.3f} below within-domain probes: part, not all, of the emotion "
                    "information is shared between speech and music."
                )
        lines += [" ".join(sentences), ""]
    lines += _images(Path(probing.report).parent, out) + [""]
    if probing.warnings:
        lines += ["Warnings:", *[f"- {w}" for w in probing.warnings], ""]
    return lines


def transfer_section(rows: list[dict]) -> list[str]:
    lines = ["## 2. Two-stage cross-domain fine-tuning", ""]
    lines.append(
        "Each strategy trained on the target domain alone (one stage) and after a first stage on "
        "the other domain (music→speech for SER, speech→music for MER); test fold held out by actor."
    )
    shown = [
        {k: _fmt(row[k]) for k in ("task", "backbone", "strategy", "stages", "accuracy", "balanced_accuracy", "macro_f1")}
        for row in rows
    ]
    lines += ["", markdown_table(shown), ""]
    sentences = []
    for task in sorted({r["task"] for r in rows}):
        one = {r["strategy"]: r["balanced_accuracy"] for r in rows if r["task"] == task and not r["two_stage"]}
        two = {r["strategy"]: r["balanced_accuracy"] for r in rows if r["task"] == task and r["two_stage"]}
        gains = {s: two[s] - one[s] for s in one if s in two}
        if gains:
            best = max(gains, key=gains.get)
            best_overall = max((r for r in rows if r["task"] == task), key=lambda r: r["balanced_accuracy"])
            sentences.append(
                f"For {task}, the first stage on the other domain changes UA by "
                + ", ".join(f"{g:+.3f} ({s})" for s, g in gains.items())
                + f"; the best {task} model is {best_overall['strategy']} ({best_overall['stages']}, "
                f"UA {best_overall['balanced_accuracy']:.3f}), and {best} gains most from transfer."
            )
    lines += [" ".join(sentences), ""]
    return lines


def fad_section(fad, out: Path) -> list[str]:
    lines = ["## 3. Per-emotion Fréchet Audio Distance and Kernel Audio Distance between speech and music", ""]
    lines.append(
        "For each emotion, how far apart the frames of speech and of music of that emotion lie (lower = more "
        "alike), per backbone. Emotions are ranked on the Kernel Audio Distance (KAD): it is unbiased, so "
        "neither an emotion's clip count nor its spread moves it in the ranking "
        f"({fad.method.get('ranked on', 'KAD')}). The Fréchet distance (FAD) stands beside it, the familiar "
        "number, biased upwards by an amount that grows with the dims and each cell's spread; the clip counts "
        f"stand beside each emotion. Intervals: {fad.method.get('interval', 'none')}."
        + (f" FAD interval: {fad.method['FAD interval']}." if fad.method.get("FAD interval") else "")
    )
    rows, sentences = [], []
    for entry in fad.bias:  # entry: model, layer and each emotion's rank (1 = most alike)
        ranking = [r for r in fad.ranking if r["model"] == entry["model"]]
        rows.append({
            "model": entry["model"],
            "layer": entry["layer"],
            "most alike → least (KAD [interval]; FAD [interval]; clips speech/music)": " < ".join(
                f"{r['emotion']} {r['kad']:.2f}{_bracket(r, 'kad')} ({r['fad']:.2f}{_bracket(r, 'fad')}"
                f"; {r['speech_clips']}/{r['music_clips']})"
                for r in ranking
            ),
        })
        if ranking:
            sentences.append(
                f"{entry['model']} finds {ranking[0]['emotion']} most alike across domains and "
                f"{ranking[-1]['emotion']} least alike (by KAD)"
            )
    lines += ["", markdown_table(rows), ""]
    agreement = [a for a in fad.rank_agreement if a.get("layer") == "report"]
    if agreement:
        a = agreement[0]
        interval = ("" if a.get("tau_low") is None else
                    f", bootstrap interval [{a['tau_low']:.2f}, {a['tau_high']:.2f}]")
        verdict = ("the orders agree beyond chance" if a["kendall_p"] < 0.05 else
                   "no evidence that the orders agree beyond chance")
        sentences.append(
            f"the two backbones order the emotions with Kendall τ = {a['kendall_tau']:.2f} (exact permutation "
            f"p = {a['kendall_p']:.3f}{interval}; 1 = the same order, -1 = reversed): {verdict}"
        )
    if sentences:
        lines += ["; ".join(sentences) + ".", ""]
    lines += _images(Path(fad.report).parent, out) + [""]
    if fad.warnings:
        lines += ["Warnings:", *[f"- {w}" for w in fad.warnings], ""]
    return lines


def _bracket(row: dict, name: str) -> str:
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    return f" [{low:.2f}, {high:.2f}]" if isinstance(low, float) else ""


def hub_section(hub: dict | None) -> list[str]:
    if not hub:
        return []
    where = "a Hub server on localhost started by the demo" if hub["local"] else hub["endpoint"]
    lines = ["## 4. On the Hub", "", f"Published to {where}, then reloaded by repo id in a fresh process:", ""]
    lines.append(f"- dataset `{hub['dataset_repo']}` ({hub['dataset_rows']} rows, with its card)")
    for task, item in hub["models"].items():
        lines.append(f"- {task} model `{item['repo']}` (with its model card and evaluation results)")
    lines += ["", "`pipeline(\"audio-classification\")` on a few clips of each target domain:", ""]
    preds = [
        {"task": task, "clip": p["id"], "true": p["true"], "predicted": p["predicted"]["label"],
         "score": _fmt(p["predicted"]["score"])}
        for task, items in hub["predictions"].items()
        for p in items
    ]
    lines += [markdown_table(preds), ""]
    return lines


def pretraining_lines(backbones: dict[str, str]) -> list[str]:
    """How far each stand-in's self-supervised loss got below chance (from its pretraining.json)."""
    lines = []
    for name, path in backbones.items():
        log = Path(path) / "pretraining.json"
        if not log.is_file():
            continue
        curve = json.loads(log.read_text())["curve"]
        tail = max(1, len(curve["contrastive_loss"]) // 10)
        loss = sum(curve["contrastive_loss"][-tail:]) / tail
        chance = sum(curve["contrastive_chance"][-tail:]) / tail
        verdict = (
            f"{chance - loss:.2f} nats below chance: it learned structure from its domain"
            if chance - loss > 0.05
            else "not below chance: too few steps to learn, so it is close to a random encoder"
        )
        lines.append(
            f"- `{name}` pretraining: {len(curve['contrastive_loss'])} steps, final contrastive loss "
            f"{loss:.2f} vs {chance:.2f} for an encoder that learned nothing ({verdict})"
        )
    return lines


def write_report(out: Path, *, settings, corpus, prepared, backbones, probing, transfer, fad, hub, timings) -> Path:
    """``report.md`` and, beside it, the same as one self-contained ``report.html``."""
    lines = ["# hub_emo demo: emotional speech and music through SSL representations", ""]
    lines.append(
        "Reproduces the three studies of Sun, Zhao, Richmond & Li, *Exploring Acoustic Similarity "
        "in Emotional Speech and Music via Self-Supervised Representations* (ICASSP 2025)."
    )
    lines += [""]
    if not settings["backbones"]:
        lines += [f"**Stand-in backbones** (one speech, one music). {STAND_IN_NOTE}", ""]
    if corpus.get("generated"):
        lines += [SYNTHETIC_NOTE, ""]
    lines += ["## Setup", ""]
    lines.append(f"- data: {prepared.summary()}")
    if corpus.get("generated"):
        lines.append(
            f"- generated corpus: {corpus['clips']} clips ({corpus['seconds_of_audio']} s of audio), "
            f"actors {corpus['actors']}, emotions {', '.join(corpus['emotions'])}"
        )
    lines.append(f"- label set: `{settings['label_set']}`; backbones: " + ", ".join(f"`{k}` ({v})" for k, v in backbones.items()))
    lines += pretraining_lines(backbones)
    lines += [""]
    lines += probing_section(probing, out, len(get_label_set(settings["label_set"]).classes))
    lines += transfer_section(transfer)
    lines += fad_section(fad, out)
    lines += hub_section(hub)
    lines += ["## Time per step", "", markdown_table([{"step": k, "seconds": f"{v:.1f}"} for k, v in timings.items()]), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    write_html_report(path)
    return path
