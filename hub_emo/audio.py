"""Find audio files; load, downmix, resample and validate one waveform.

The single place where audio files are listed, read and checked, shared by data preparation and
inference, so a clip that prepares cleanly also predicts cleanly. Every failure is an
`AudioError` that names the file (or input) and the problem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

#: Peak amplitude below which a clip counts as silent (about -80 dBFS).
SILENCE_PEAK = 1e-4
#: File extensions treated as audio when a folder is walked (`read` decodes them all).
AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".webm")


class AudioError(ValueError):
    """A waveform that cannot be used, with the file (or input) and the reason."""

    def __init__(self, source: str | os.PathLike, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")


def audio_files(root: str | os.PathLike, extensions: Iterable[str] = AUDIO_EXTENSIONS) -> list[Path]:
    """Every audio file under ``root``, sorted by path (so runs are deterministic).

    Hidden files (macOS ``._*`` resource forks, ``.DS_Store``) are not audio.
    """
    exts = tuple(e.lower() for e in extensions)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d != "__MACOSX"]
        found.extend(
            Path(dirpath, f) for f in filenames if f.lower().endswith(exts) and not f.startswith(".")
        )
    return sorted(found)


def read(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read a file as float32 (samples, channels) and its rate.

    soundfile (libsndfile: WAV, FLAC, OGG, MP3) first; anything else goes through
    torchcodec's FFmpeg decoder.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "no such file")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return data, int(sr)
    except Exception as sf_error:  # noqa: BLE001 - fall back to FFmpeg for other formats
        try:
            from torchcodec.decoders import AudioDecoder

            samples = AudioDecoder(str(path)).get_all_samples()
            return samples.data.numpy().T.astype(np.float32, copy=False), int(samples.sample_rate)
        except Exception as ff_error:  # noqa: BLE001
            raise AudioError(
                path, f"cannot decode audio (soundfile: {sf_error}; ffmpeg: {ff_error})"
            ) from None


def to_mono(wave: np.ndarray, channels_last: bool = True) -> np.ndarray:
    """Average the channels of a (samples, channels) array (or 1-D, unchanged)."""
    wave = np.asarray(wave)
    if wave.ndim == 1:
        return wave
    if wave.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D waveform, got shape {wave.shape}")
    axis = 1 if channels_last else 0
    if wave.shape[axis] == 1:  # already mono: a view, not a mean over one channel
        return wave[:, 0] if channels_last else wave[0]
    return wave.mean(axis=axis)


def resample(wave: np.ndarray, orig_sr: int, target_sr: int | None) -> np.ndarray:
    """High-quality resampling with soxr (a no-op at the same rate)."""
    if target_sr is None or int(orig_sr) == int(target_sr):
        return wave
    import soxr

    return soxr.resample(wave, int(orig_sr), int(target_sr), quality="HQ").astype(np.float32, copy=False)


def check(
    wave: np.ndarray,
    sr: int,
    source: str | os.PathLike = "<waveform>",
    *,
    min_seconds: float = 0.0,
    max_seconds: float | None = None,
    allow_silent: bool = False,
) -> None:
    """Raise `AudioError` when a mono waveform is empty, non-finite, silent or too long."""
    if sr is None or sr <= 0:
        raise AudioError(source, f"invalid sampling rate {sr!r}")
    if wave.size == 0:
        raise AudioError(source, "no samples (empty audio)")
    if not np.isfinite(wave).all():
        raise AudioError(source, "contains NaN or infinite samples")
    seconds = wave.shape[0] / sr
    if seconds < min_seconds:
        raise AudioError(source, f"too short: {seconds:.3f} s < {min_seconds} s")
    if max_seconds is not None and seconds > max_seconds:
        raise AudioError(source, f"too long: {seconds:.1f} s > {max_seconds} s")
    if not allow_silent and float(np.abs(wave).max()) < SILENCE_PEAK:
        raise AudioError(source, f"silent (peak amplitude below {SILENCE_PEAK:g})")


def conform(
    wave: np.ndarray,
    sr: int,
    target_sr: int | None = None,
    source: str | os.PathLike = "<waveform>",
    *,
    channels_last: bool = True,
    **check_options,
) -> np.ndarray:
    """An in-memory waveform as a model takes it: downmixed, validated, resampled, float32 mono."""
    wave = np.asarray(wave, dtype=np.float32)
    try:
        wave = to_mono(wave, channels_last=channels_last)
    except ValueError as error:
        raise AudioError(source, str(error)) from None
    check(wave, sr, source, **check_options)
    return np.ascontiguousarray(resample(wave, sr, target_sr), dtype=np.float32)


def load(
    path: str | os.PathLike, target_sr: int | None = None, **check_options
) -> tuple[np.ndarray, int]:
    """Read a file to validated float32 mono at ``target_sr`` (or its own rate)."""
    data, sr = read(path)
    wave = conform(data, sr, target_sr, path, **check_options)
    return wave, int(target_sr or sr)
