"""One backbone's features on disk, one record per clip and window.

Layout under ``hub_emo.paths.cache_dir("features", "v<VERSION>-<identity>")``::

    <clip[:2]>/<clip>.<window>.safetensors              mean: (hidden states + 1, dims) float32
    <clip[:2]>/<clip>.<window>.frames-all.safetensors   frames: (hidden states, T, dims) float16
    <clip[:2]>/<clip>.<window>.frames-cap<N>.safetensors frames: (hidden states, N, dims) float16

``clip`` is the clip's fingerprint (`hub_emo.data.clip_fingerprints`: id + audio), ``window``
the audio actually fed (`Window.name`: ``full``, or e.g. ``center-48000`` when a crop cut the
clip). Row k < hidden states is hidden state k; the last row is the backbone's final output
(after a pre-norm model's final LayerNorm). Frame files keep at most N frames evenly spaced
in time; a clip with no more frames than the cap keeps them all (``frames-all``), which serves
any cap. The pooled file is written last and marks a record complete; every file is
written to a temporary name (host and process: unique across the hosts sharing a cache) and
renamed. `pack` / `unpack` carry a record between ranks as the bytes of one safetensors file.
An older pooled file also holds each hidden state's maximum (``max``), which nothing read; its
mean is the one written now, so the file serves as it is.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hub_emo import paths
from hub_emo.distributed import host

from .window import WHOLE, Window

#: Bump when a stored record could be read wrongly: a tensor that is read changes its meaning
#: or goes missing (1: analysis/features.py and training/feature_cache.py, two caches). A
#: tensor no longer read needs none (an older version-2 pooled file also holds ``max``).
VERSION = 2


@dataclass
class Record:
    """One clip's features through one window."""

    mean: np.ndarray
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
    tmp = path.with_name(f"{path.name}.tmp-{host()}-{os.getpid()}")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp), metadata=metadata)
    os.replace(tmp, path)


class Store:
    """The records of one backbone identity."""

    def __init__(self, identity: str):
        self.directory = paths.cache_dir("features", f"v{VERSION}-{identity[:32]}")

    def _file(self, clip: str, window: str, part: str = "") -> Path:
        return self.directory / clip[:2] / f"{clip}.{window}{part}.safetensors"

    @staticmethod
    def _pooled_meta(path: Path, window: Window) -> dict | None:
        """The pooled file's metadata if it exists and ``window`` feeds the clip as it was fed."""
        from safetensors import safe_open

        if not path.is_file():
            return None
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata()
        if path.name.endswith(f".{WHOLE}.safetensors") and not window.covers(int(meta["samples"])):
            return None
        return meta

    def _locate(self, clip: str, window: Window, frames_cap: int) -> tuple[str, dict, Path | None] | None:
        """(window name, pooled metadata, frame file or None) of the clip's stored record, if
        complete: the whole clip's when the window covers it, else the crop's."""
        name = WHOLE
        meta = self._pooled_meta(self._file(clip, WHOLE), window)
        if meta is None and window.max_samples is not None:
            name = window.cut_name
            meta = self._pooled_meta(self._file(clip, name), window)
        if meta is None:
            return None
        if not frames_cap:
            return name, meta, None
        for part in (".frames-all", f".frames-cap{frames_cap}"):
            if self._file(clip, name, part).is_file():
                return name, meta, self._file(clip, name, part)
        return None

    def has(self, clip: str, window: Window, frames_cap: int = 0) -> bool:
        """Whether `find` would return a record (reads file headers only)."""
        return self._locate(clip, window, frames_cap) is not None

    def entry(self, clip: str, window: Window, frames_cap: int = 0) -> tuple[str, Record] | None:
        """(window name it is stored under, record) of the clip through ``window`` with frames at
        ``frames_cap`` (0: none), if stored."""
        from safetensors.numpy import load_file

        found = self._locate(clip, window, frames_cap)
        if found is None:
            return None
        name, meta, frame_file = found
        pooled = load_file(str(self._file(clip, name)))
        record = Record(pooled["mean"], int(meta["samples"]), int(meta["frames"]))
        if frame_file is not None:
            frames = load_file(str(frame_file))["frames"]
            record.frames = frames[:, frame_indices(frames.shape[1], frames_cap)]
        return name, record

    def find(self, clip: str, window: Window, frames_cap: int = 0) -> Record | None:
        """The clip's record through ``window`` with frames at ``frames_cap`` (0: none), if stored."""
        found = self.entry(clip, window, frames_cap)
        return None if found is None else found[1]

    def write(self, clip: str, window: str, record: Record, frames_cap: int = 0) -> None:
        if record.frames is not None:
            kind = "all" if record.frame_count <= frames_cap else f"cap{frames_cap}"
            _save(self._file(clip, window, f".frames-{kind}"), {"frames": record.frames})
        _save(self._file(clip, window), {"mean": record.mean},
              {"samples": str(record.samples), "frames": str(record.frame_count)})


def pack(window: str, record: Record) -> bytes:
    """One record and the window name it is stored under, as the bytes of a safetensors file."""
    from safetensors.numpy import save

    tensors = {"mean": record.mean}
    if record.frames is not None:
        tensors["frames"] = np.ascontiguousarray(record.frames)
    return save(tensors, {"window": window, "samples": str(record.samples), "frames": str(record.frame_count)})


def unpack(data: bytes) -> tuple[str, Record]:
    """(window name, record) from `pack`'s bytes."""
    from safetensors.numpy import load

    size = struct.unpack("<Q", data[:8])[0]
    meta = json.loads(data[8:8 + size])["__metadata__"]
    tensors = load(data)
    return meta["window"], Record(tensors["mean"], int(meta["samples"]), int(meta["frames"]), tensors.get("frames"))
