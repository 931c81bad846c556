"""One backbone's features on disk, one record per clip and window.

Layout under ``hub_emo.paths.cache_dir("features", "v<VERSION>-<identity>")``::

    <clip[:2]>/<clip>.<window>.safetensors              mean, max: (hidden states + 1, dims) float32
    <clip[:2]>/<clip>.<window>.frames-all.safetensors   frames: (hidden states, T, dims) float16
    <clip[:2]>/<clip>.<window>.frames-cap<N>.safetensors frames: (hidden states, N, dims) float16

``clip`` is the clip's fingerprint (`hub_emo.data.clip_fingerprints`: id + audio), ``window``
the audio actually fed (`Window.name`: ``full``, or e.g. ``center-48000`` when a crop cut the
clip). Row k < hidden states is hidden state k; the last row is the backbone's final output
(after a pre-norm model's final LayerNorm). Frame files keep at most N frames evenly spaced
in time; a clip with no more frames than the cap keeps them all (``frames-all``), which serves
any cap. The pooled file is written last and marks a record complete; every file is
written to a temporary name and renamed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub_emo import paths

from .window import WHOLE, Window

#: Bump when the layout or the meaning of a record changes (1: analysis/features.py and
#: training/feature_cache.py, two caches).
VERSION = 2


@dataclass
class Record:
    """One clip's features through one window."""

    mean: np.ndarray
    max: np.ndarray
    samples: int
    frame_count: int
    frames: np.ndarray | None = None

    @property
    def num_hidden_states(self) -> int:
        return int(self.mean.shape[0]) - 1


def frame_indices(length: int, cap: int) -> np.ndarray:
    """At most ``cap`` of ``length`` frames, evenly spaced in time."""
    if length <= cap:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, cap).round().astype(np.int64))


def _save(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


class Store:
    """The records of one backbone identity."""

    def __init__(self, identity: str):
        self.directory = paths.cache_dir("features", f"v{VERSION}-{identity[:32]}")

    def _file(self, clip: str, window: str, part: str = "") -> Path:
        return self.directory / clip[:2] / f"{clip}.{window}{part}.safetensors"

    @staticmethod
    def _read_pooled(path: Path, window: Window) -> Record | None:
        """The pooled record at ``path`` if it exists and ``window`` feeds the clip as it was fed."""
        from safetensors import safe_open

        if not path.is_file():
            return None
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata()
            if path.name.endswith(f".{WHOLE}.safetensors") and not window.covers(int(meta["samples"])):
                return None
            return Record(handle.get_tensor("mean"), handle.get_tensor("max"), int(meta["samples"]),
                          int(meta["frames"]))

    def find(self, clip: str, window: Window, frames_cap: int = 0) -> Record | None:
        """The clip's record through ``window`` with frames at ``frames_cap`` (0: none), if stored:
        the whole clip's when the window covers it, else the crop's."""
        from safetensors.numpy import load_file

        name = WHOLE
        record = self._read_pooled(self._file(clip, WHOLE), window)
        if record is None and window.max_samples is not None:
            name = window.cut_name
            record = self._read_pooled(self._file(clip, name), window)
        if record is None or not frames_cap:
            return record
        every, capped = self._file(clip, name, ".frames-all"), self._file(clip, name, f".frames-cap{frames_cap}")
        if every.is_file():
            frames = load_file(str(every))["frames"]
            record.frames = frames[:, frame_indices(frames.shape[1], frames_cap)]
        elif capped.is_file():
            record.frames = load_file(str(capped))["frames"]
        else:
            return None
        return record

    def write(self, clip: str, window: str, record: Record, frames_cap: int = 0) -> None:
        if record.frames is not None:
            kind = "all" if record.frame_count <= frames_cap else f"cap{frames_cap}"
            _save(self._file(clip, window, f".frames-{kind}"), {"frames": record.frames})
        _save(self._file(clip, window), {"mean": record.mean, "max": record.max},
              {"samples": str(record.samples), "frames": str(record.frame_count)})
