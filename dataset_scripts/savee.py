"""SAVEE (Surrey Audio-Visual Expressed Emotion): 4 male speakers, 480 utterances, 7 emotions.

Original layout ``AudioData/DC/a01.wav``; a common flattened copy has ``ALL/DC_a01.wav``.
Both give the id ``DC_a01`` (speaker prefix, since utterance names repeat across
speakers). The emotion prefix is parsed two letters first (``sa``, ``su``), then one.
No official folds.
"""

from __future__ import annotations

import os
import re

from dataset_scripts import Skip, record
from hub_emo.audio import audio_files

NAME = "savee"
DOMAIN = "speech"
HOMEPAGE = "http://kahlan.eps.surrey.ac.uk/savee/"
LICENSE = "Free for research use (SAVEE terms, registration required)"
CITATION = """@inproceedings{haq2008savee,
  title     = {Audio-visual feature selection and reduction for emotion classification},
  author    = {Haq, Sanaul and Jackson, Philip J. B. and Edge, James},
  booktitle = {Proc. International Conference on Auditory-Visual Speech Processing (AVSP)},
  pages     = {185--190},
  year      = {2008}
}"""
LABEL_MAP = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
DROPPED: dict[str, str] = {}
SPEAKERS = ("DC", "JE", "JK", "KL")

_UTTERANCE = re.compile(r"^(sa|su|[a-z])(\d{2})$")


def records(root: str | os.PathLike):
    """Every utterance in either layout under ``root``."""
    for path in audio_files(root, (".wav",)):
        stem = path.stem
        if "_" in stem:
            speaker, _, utterance = stem.partition("_")
        else:
            speaker, utterance = path.parent.name, stem
        match = _UTTERANCE.match(utterance)
        if speaker not in SPEAKERS or not match:
            yield Skip(str(path), "name does not parse as <DC|JE|JK|KL>/<emotion><nn> or <speaker>_<emotion><nn>")
            continue
        yield record(
            id=f"{speaker}_{utterance}", audio=path, native_label=match.group(1),
            label_map=LABEL_MAP, dropped=DROPPED, speaker=speaker,
        )
