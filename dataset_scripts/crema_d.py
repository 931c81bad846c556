"""CREMA-D: 91 actors, 7442 clips, 6 emotions, 16 kHz.

Layout: ``AudioWAV/AAAA_SSS_EEE_LL.wav`` (actor 1001-1091, sentence code, emotion,
level LO/MD/HI/XX). No official folds (``fold`` is null): split by actor.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dataset_scripts import Skip, record
from hub_emo.audio import audio_files

NAME = "crema_d"
DOMAIN = "speech"
HOMEPAGE = "https://github.com/CheyneyComputerScience/CREMA-D"
LICENSE = "ODbL 1.0 (Open Database License)"
CITATION = """@article{cao2014crema,
  title   = {{CREMA-D}: Crowd-sourced Emotional Multimodal Actors Dataset},
  author  = {Cao, Houwei and Cooper, David G. and Keutmann, Michael K. and Gur, Ruben C. and Nenkova, Ani and Verma, Ragini},
  journal = {IEEE Transactions on Affective Computing},
  volume  = {5},
  number  = {4},
  pages   = {377--390},
  year    = {2014}
}"""
LABEL_MAP = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
DROPPED: dict[str, str] = {}
SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
LEVELS = ("LO", "MD", "HI", "XX")

_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def records(root: str | os.PathLike):
    """Every clip in ``root/AudioWAV`` (or ``root`` itself when it holds the clips)."""
    folder = Path(root, "AudioWAV")
    for path in audio_files(folder if folder.is_dir() else root, (".wav",)):
        match = _NAME.match(path.stem)
        if not match:
            yield Skip(str(path), "name does not parse as AAAA_SSS_EEE_LL")
            continue
        actor, sentence, emotion, level = match.groups()
        if not 1001 <= int(actor) <= 1091:
            yield Skip(str(path), f"actor {actor} is not 1001-1091")
        elif sentence not in SENTENCES:
            yield Skip(str(path), f"sentence code {sentence} is not one of CREMA-D's 12")
        elif level not in LEVELS:
            yield Skip(str(path), f"level {level} is not LO, MD, HI or XX")
        else:
            yield record(
                id=path.stem, audio=path, native_label=emotion, label_map=LABEL_MAP,
                dropped=DROPPED, speaker=actor,
            )
