"""Every figure hub_emo draws, in one place: the reports' PNGs, training's and the app's plots.

matplotlib with the Agg backend (no display needed), imported when a figure is drawn. A
base module, so training, analysis and the app all draw with it. Functions given a
``path`` write a PNG there and return the path; the others return the figure (closed to
pyplot, so nothing accumulates), for the app to show or `save` to write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: What hidden state 0 of a wav2vec2-family backbone is (transformers' encoder records each
#: layer's input; state 0 is the projected CNN features plus the positional convolution), and
#: the last one (after the final LayerNorm of a pre-norm model, as the reference implementations give it).
HIDDEN_STATE_0 = "0 = first transformer layer's input; L = last layer, after any final LayerNorm"


def save(fig, path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG at ``path``."""
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return Path(path)


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
    ax.set_xlabel(f"layer ({HIDDEN_STATE_0})")
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} per layer (shaded: fold min–max)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return save(fig, path)


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
    return save(fig, path)


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
    return save(fig, path)


def confusion_matrix(matrix, labels: Sequence[str], title: str = ""):
    """Counts of reference (rows) against predicted (columns) classes, numbers in the cells."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * len(labels), 1 + 0.6 * len(labels)))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(title)
    fig.tight_layout()
    plt.close(fig)
    return fig


def layer_weights(weights: Sequence[float]):
    """The learned softmax weights of a weighted-sum model over its hidden states.

    The top band is left free: Gradio lays its plot label over it.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.bar(range(len(weights)), weights, color="#3b6fb6")
    ax.set_xlabel(f"hidden state ({HIDDEN_STATE_0})")
    ax.set_ylabel("softmax weight")
    ax.set_xticks(range(len(weights)))
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout(rect=(0, 0, 1, 0.88))
    plt.close(fig)
    return fig


def timeline(chunks: list[dict]):
    """Each emotion's probability per chunk, against time (chunk centres).

    ``chunks`` as `hub_emo.inference`'s timeline gives them: ``start``, ``end``, ``scores``.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    centres = [(c["start"] + c["end"]) / 2 for c in chunks]
    for label in chunks[0]["scores"]:
        ax.plot(centres, [c["scores"][label] for c in chunks], marker="o", ms=3, label=label)
    ax.set_xlabel("time (s, chunk centre)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.9))  # room for the label Gradio lays over the top
    plt.close(fig)
    return fig
