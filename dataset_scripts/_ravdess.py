"""RAVDESS file names: the one rule, read by `ravdess_speech`, `ravdess_song`, the demo and the app.

``MM-VV-EE-II-SS-RR-AA.wav``: modality (03 audio-only), vocal channel (01 speech,
02 song), emotion, intensity, statement, repetition, actor (01-24). The demo's generated
corpus uses the same names, so everything that picks clips by channel or emotion asks
`clips` here.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

from dataset_scripts import Skip, record
from hub_emo.audio import audio_files

HOMEPAGE = "https://zenodo.org/records/1188976"
LICENSE = "CC BY-NC-SA 4.0"
CITATION = """@article{livingstone2018ravdess,
  title   = {The Ryerson Audio-Visual Database of Emotional Speech and Song (RAVDESS)},
  author  = {Livingstone, Steven R. and Russo, Frank A.},
  journal = {PLoS ONE},
  volume  = {13},
  number  = {5},
  pages   = {e0196391},
  year    = {2018},
  doi     = {10.1371/journal.pone.0196391}
}"""

#: Emotion field code -> RAVDESS's own name for it (the native label).
EMOTION_CODES = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
VOCAL_CHANNELS = {"01": "speech", "02": "song"}
#: The domain (`hub_emo.schema.DOMAINS`) of each vocal channel's clips.
CHANNEL_DOMAIN = {"speech": "speech", "song": "music"}

#: The paper's 4 actor-independent folds, by integer actor id.
FOLDS: tuple[tuple[int, ...], ...] = (
    (2, 8, 10, 16, 18, 24),
    (1, 3, 9, 11, 19, 23),
    (4, 6, 12, 13, 20, 21),
    (5, 7, 14, 15, 17, 22),
)
_FOLD_OF = {actor: str(i + 1) for i, actors in enumerate(FOLDS) for actor in actors}

_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def file_name(channel: str, emotion: str, intensity: int, statement: int, repetition: int, actor: int) -> str:
    """``Actor_AA/03-VV-EE-II-SS-RR-AA.wav`` for an audio-only clip (the layout RAVDESS ships);
    ``channel`` "speech" or "song", ``emotion`` RAVDESS's own name; `parse` reads it back."""
    vocal = {name: code for code, name in VOCAL_CHANNELS.items()}[channel]
    code = {name: code for code, name in EMOTION_CODES.items()}[emotion]
    return f"Actor_{actor:02d}/03-{vocal}-{code}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.wav"


def fold_of(actor: int | str) -> str:
    """Fold "1".."4" of an actor, compared as an integer ("02", "2" and 2 are one actor)."""
    return _FOLD_OF[int(actor)]


def parse(stem: str) -> dict[str, str]:
    """The seven fields of a RAVDESS stem; ValueError saying which field is wrong."""
    match = _NAME.match(stem)
    if not match:
        raise ValueError("name does not parse as MM-VV-EE-II-SS-RR-AA")
    modality, channel, emotion, intensity, statement, repetition, actor = match.groups()
    checks = [
        (modality == "03", f"modality {modality} is not audio-only (03)"),
        (channel in VOCAL_CHANNELS, f"vocal channel {channel} is not 01 or 02"),
        (intensity in ("01", "02"), f"intensity {intensity} is not 01 or 02"),
        (statement in ("01", "02"), f"statement {statement} is not 01 or 02"),
        (repetition in ("01", "02"), f"repetition {repetition} is not 01 or 02"),
        (1 <= int(actor) <= 24, f"actor {actor} is not 01-24"),
    ]
    for ok, problem in checks:
        if not ok:
            raise ValueError(problem)
    return {
        "channel": VOCAL_CHANNELS[channel],
        "emotion": emotion,
        "intensity": intensity,
        "statement": statement,
        "repetition": repetition,
        "actor": actor,
    }


def clips(root: str | os.PathLike, domain: str) -> list[tuple[Path, dict[str, str]]]:
    """(path, `parse` fields) of every well-named audio-only clip of ``domain`` under ``root``,
    sorted by path; names that do not parse are left out (`records` reports them)."""
    if domain not in CHANNEL_DOMAIN.values():
        raise ValueError(f"RAVDESS has no {domain!r} clips (domains: {', '.join(CHANNEL_DOMAIN.values())})")
    found = []
    for path in audio_files(root, (".wav",)):
        try:
            fields = parse(path.stem)
        except ValueError:
            continue
        if CHANNEL_DOMAIN[fields["channel"]] == domain:
            found.append((path, fields))
    return found


def records(root: str | os.PathLike, channel: str, label_map: dict, dropped: dict) -> Iterator[dict | Skip]:
    """Records of one vocal channel; files of the other channel belong to the other corpus."""
    for path in audio_files(root, (".wav",)):
        try:
            fields = parse(path.stem)
        except ValueError as error:
            yield Skip(str(path), str(error))
            continue
        if fields["channel"] != channel:
            continue
        native = EMOTION_CODES.get(fields["emotion"])
        if native is None:
            yield Skip(str(path), f"emotion code {fields['emotion']} is not 01-08")
            continue
        yield record(
            id=path.stem,
            audio=path,
            native_label=native,
            label_map=label_map,
            dropped=dropped,
            speaker=f"Actor_{fields['actor']}",
            fold=fold_of(fields["actor"]),
        )

