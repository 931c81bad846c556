"""The audio a backbone is fed: decoding at its rate, and the window cut from each clip.

One decoding path (native rate, downmix, soxr resampling as `hub_emo.audio` and inference
do) and one crop, so training on audio, cached features and the analyses see the same
samples of a clip. A window is part of a cached record's key: the whole clip, or a crop
of ``max_samples`` (``center``, ``start``, or a ``random`` offset per seed, epoch and clip).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from hub_emo import audio

CROPS = ("center", "start", "random")
WHOLE = "full"


def decodable(dataset, columns=("id", "audio")):
    """``columns`` of a dataset with its audio decoded at the clip's own rate (`waveform` resamples)."""
    import datasets

    return dataset.select_columns(list(columns)).cast_column("audio", datasets.Audio())


def waveform(row: dict, rate: int) -> np.ndarray:
    """One decoded row's audio as float32 mono at ``rate``; an empty or non-finite clip is an
    `audio.AudioError` naming it (silence is allowed: it is data, not damage)."""
    samples = row["audio"].get_all_samples()
    return audio.prepare(samples.data.numpy(), int(samples.sample_rate), rate, f"clip {row['id']!r}",
                         channels_last=False, allow_silent=True)


@dataclass(frozen=True)
class Window:
    """At most ``max_samples`` of a clip (None: the whole clip), cut as ``crop`` says."""

    max_samples: int | None = None
    crop: str = "center"

    def __post_init__(self):
        if self.crop not in CROPS:
            raise ValueError(f"unknown crop {self.crop!r}; choose from {CROPS}")

    @classmethod
    def of(cls, max_seconds: float | None, rate: int, crop: str = "center") -> Window:
        return cls(None if max_seconds is None else int(round(max_seconds * rate)), crop)

    def covers(self, samples: int) -> bool:
        """Whether a clip of ``samples`` is fed whole."""
        return self.max_samples is None or samples <= self.max_samples

    @property
    def cut_name(self) -> str:
        """The name of what a clip longer than the window is cut to, e.g. ``center-48000``."""
        if self.crop == "random":
            raise ValueError("a random crop changes every epoch and is never cached")
        return f"{self.crop}-{self.max_samples}"

    def name(self, samples: int) -> str:
        """The window actually fed for a clip of this length: ``full``, or `cut_name`."""
        return WHOLE if self.covers(samples) else self.cut_name

    def cut(self, wave: np.ndarray, clip_id: str = "", seed: int = 0, epoch: int = 0) -> np.ndarray:
        if self.covers(len(wave)):
            return wave
        spare = len(wave) - self.max_samples
        if self.crop == "start":
            start = 0
        elif self.crop == "center":
            start = spare // 2
        else:
            digest = hashlib.sha256(f"{seed}:{epoch}:{clip_id}".encode()).digest()
            start = int.from_bytes(digest[:8], "little") % (spare + 1)
        return wave[start : start + self.max_samples]
