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
    return audio.conform(samples.data.numpy(), int(samples.sample_rate), rate, f"clip {row['id']!r}",
                         channels_last=False, allow_silent=True)


def header_seconds(dataset, rows: list[int] | None = None):
    """Seconds of audio of each row (or of ``rows``) from the files' headers, without decoding:
    what orders clips by length and weighs the ranks' shares. A header soundfile cannot read
    counts the file's bytes as 16-bit mono 16 kHz audio: a guess that only orders or weighs
    the work (decoding names a bad file)."""
    import io

    import datasets
    import numpy as np
    import soundfile

    if rows is not None:
        if not rows:
            return np.zeros(0)
        dataset = dataset.select(rows)
    raw = dataset.select_columns(["audio"]).cast_column("audio", datasets.Audio(decode=False))
    seconds = []
    for batch in raw.iter(batch_size=256):  # the encoded audio of 256 clips at a time in memory
        for item in batch["audio"]:
            source = io.BytesIO(item["bytes"]) if item.get("bytes") else item.get("path")
            try:
                seconds.append(float(soundfile.info(source).duration))
            except Exception:  # noqa: BLE001 - a guess only orders or weighs the work
                seconds.append(_encoded_size(item) / 32000.0)
    return np.asarray(seconds)


def _encoded_size(item) -> int:
    import os

    if item.get("bytes"):
        return len(item["bytes"])
    path = item.get("path")
    return os.path.getsize(path) if path and os.path.exists(path) else 0


def header_lengths(dataset, rate: int) -> list[int]:
    """Each row's length in samples at ``rate`` from its file header (`header_seconds`)."""
    return [int(round(s * rate)) for s in header_seconds(dataset)]


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

    def capped(self, max_samples: int | None) -> Window:
        """This window, feeding at most ``max_samples`` of a clip."""
        if max_samples is None or (self.max_samples is not None and self.max_samples <= max_samples):
            return self
        return Window(int(max_samples), self.crop)

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
