"""hub_emo.plots: every figure the project draws, checked through what each figure shows."""

from __future__ import annotations

import numpy as np
import pytest

from hub_emo import plots


def test_layer_weights_shows_one_bar_per_hidden_state_and_says_what_state_0_is():
    weights = [0.1, 0.2, 0.3, 0.4]
    fig = plots.layer_weights(weights)
    ax = fig.axes[0]
    assert [bar.get_height() for bar in ax.patches] == pytest.approx(weights)
    assert "0 = first transformer layer's input" in ax.get_xlabel()


def test_timeline_plots_each_label_at_the_chunk_centres():
    chunks = [{"start": 0, "end": 10, "scores": {"happy": 0.7, "sad": 0.3}},
              {"start": 10, "end": 20, "scores": {"happy": 0.2, "sad": 0.8}}]
    ax = plots.timeline(chunks).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"happy", "sad"}
    assert list(lines["sad"].get_xdata()) == [5, 15] and list(lines["sad"].get_ydata()) == [0.3, 0.8]


def test_confusion_matrix_writes_every_count_and_saves_a_png(tmp_path):
    matrix = np.array([[3, 1], [0, 4]])
    fig = plots.confusion_matrix(matrix, ["calm", "sad"], title="UA 0.875")
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == ["0", "1", "3", "4"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["calm", "sad"] and ax.get_title() == "UA 0.875"
    path = plots.save(fig, tmp_path / "confusion.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
