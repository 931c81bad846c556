"""PNG figures for the analysis reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def layer_curves(means: list[dict], path: Path, *, metric: str = "UA", title: str = "") -> Path:
    """Score against layer, one line per model and domain pair, fold min–max shaded."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    groups: dict[tuple, list[dict]] = {}
    for entry in means:
        groups.setdefault((entry["model"], entry["train_domain"], entry["domain"]), []).append(entry)
    for (model, train_domain, domain), entries in sorted(groups.items()):
        entries.sort(key=lambda e: e["layer"])
        x = [e["layer"] for e in entries]
        label = f"{model} · {domain}" if train_domain == domain else f"{model} · {train_domain}→{domain}"
        line, = ax.plot(x, [e[metric] for e in entries], marker="o", ms=3, label=label)
        ax.fill_between(x, [e[f"{metric}_min"] for e in entries], [e[f"{metric}_max"] for e in entries],
                        color=line.get_color(), alpha=0.15, linewidth=0)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer (0 = first transformer layer's input)")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} per layer (shaded: fold min–max)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def heatmap(matrix: np.ndarray, rows: Sequence[str], columns: Sequence, path: Path, *,
            title: str = "", xlabel: str = "", ylabel: str = "", cmap: str = "viridis") -> Path:
    """A labelled heatmap with the values written in the cells (NaN cells left blank)."""
    plt = _pyplot()
    matrix = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(2.5 + 0.6 * max(len(columns), 4), 1.5 + 0.45 * max(len(rows), 4)))
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=cmap, aspect="auto")
    ax.set_xticks(range(len(columns)), [str(c) for c in columns], rotation=45 if len(columns) > 8 else 0)
    ax.set_yticks(range(len(rows)), list(rows))
    finite = matrix[np.isfinite(matrix)]
    if finite.size and len(rows) * len(columns) <= 200:
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                red, green, blue, _ = image.cmap(image.norm(value))
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                ax.text(j, i, f"{value:.3g}", ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def emotion_bars(values: dict[str, dict[str, tuple[float, float, float]]], path: Path, *,
                 title: str = "", ylabel: str = "FAD") -> Path:
    """Grouped bars: emotions on x, one bar per model, with (low, high) CI whiskers.

    ``values[model][emotion] = (value, low, high)``.
    """
    plt = _pyplot()
    models = list(values)
    emotions = sorted({e for v in values.values() for e in v})
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(1.5 + 1.1 * len(emotions), 4))
    for m, model in enumerate(models):
        x = np.arange(len(emotions)) + (m - (len(models) - 1) / 2) * width
        v = np.array([values[model].get(e, (np.nan,) * 3) for e in emotions], dtype=float)
        ax.bar(x, v[:, 0], width, label=model,
               yerr=np.abs(np.stack([v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]])), capsize=2)
    ax.set_xticks(range(len(emotions)), emotions)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
