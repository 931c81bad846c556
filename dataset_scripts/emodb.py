"""EmoDB (Berlin Database of Emotional Speech): 10 speakers, 10 texts, 535 utterances, 16 kHz.

Files ``wav/03a01Fa.wav``: speaker (03, 08-16), text code, emotion letter (German
initials: W Wut, L Langeweile, E Ekel, A Angst, F Freude, T Trauer, N neutral), version.
No official folds.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dataset_scripts import Skip, record
from hub_emo.audio import audio_files

NAME = "emodb"
DOMAIN = "speech"
HOMEPAGE = "http://emodb.bilderbar.info/"
LICENSE = "Free for research use (EmoDB terms; redistributed copies often say CC BY 4.0)"
CITATION = """@inproceedings{burkhardt2005emodb,
  title     = {A database of {German} emotional speech},
  author    = {Burkhardt, Felix and Paeschke, Astrid and Rolfes, Miriam and Sendlmeier, Walter F. and Weiss, Benjamin},
  booktitle = {Proc. Interspeech},
  pages     = {1517--1520},
  year      = {2005}
}"""
LABEL_MAP = {
    "W": "angry",
    "L": "boredom",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
DROPPED: dict[str, str] = {}
SPEAKERS = ("03", "08", "09", "10", "11", "12", "13", "14", "15", "16")
TEXTS = ("a01", "a02", "a04", "a05", "a07", "b01", "b02", "b03", "b09", "b10")

_NAME = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")


def records(root: str | os.PathLike):
    """Every utterance in ``root/wav`` (or ``root`` itself)."""
    folder = Path(root, "wav")
    for path in audio_files(folder if folder.is_dir() else root, (".wav",)):
        match = _NAME.match(path.stem)
        if not match:
            yield Skip(str(path), "name does not parse as <speaker><text><emotion><version>")
            continue
        speaker, text, emotion, _ = match.groups()
        if speaker not in SPEAKERS:
            yield Skip(str(path), f"speaker {speaker} is not one of EmoDB's 10")
        elif text not in TEXTS:
            yield Skip(str(path), f"text {text} is not one of EmoDB's 10")
        else:
            yield record(
                id=path.stem, audio=path, native_label=emotion, label_map=LABEL_MAP,
                dropped=DROPPED, speaker=speaker,
            )
