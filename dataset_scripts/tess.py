"""TESS (Toronto emotional speech set): speakers OAF and YAF, 200 words, 7 emotions, 2800 files.

Files ``OAF_back_angry.wav``: speaker, word, emotion. Folder names differ between copies
(``OAF_angry``, ``OAF_Pleasant_surprise``, ``YAF_pleasant_surprised``), so only the file
name is parsed. The emotion suffix is matched case-insensitively; ``native_label`` keeps
it as written. No official folds.
"""

from __future__ import annotations

import os

from dataset_scripts import Skip, record
from hub_emo.audio import audio_files

NAME = "tess"
DOMAIN = "speech"
HOMEPAGE = "https://doi.org/10.5683/SP2/E8H2MF"
LICENSE = "CC BY-NC-ND 4.0"
CITATION = """@misc{dupuis2010tess,
  title     = {Toronto emotional speech set ({TESS})},
  author    = {Pichora-Fuller, M. Kathleen and Dupuis, Kate},
  publisher = {Borealis},
  year      = {2020},
  doi       = {10.5683/SP2/E8H2MF}
}"""
LABEL_MAP = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "ps": "surprised",
}
DROPPED: dict[str, str] = {}
SPEAKERS = ("OAF", "YAF")


def records(root: str | os.PathLike):
    """Every ``<speaker>_<word>_<emotion>.wav`` under ``root``."""
    for path in audio_files(root, (".wav",)):
        parts = path.stem.split("_")
        if len(parts) < 3 or parts[0].upper() not in SPEAKERS:
            yield Skip(str(path), "name does not parse as <OAF|YAF>_<word>_<emotion>")
            continue
        native = parts[-1]
        result = record(
            id=path.stem, audio=path, native_label=native.lower(), label_map=LABEL_MAP,
            dropped=DROPPED, speaker=parts[0].upper(),
        )
        if isinstance(result, dict):
            result["native_label"] = native
        yield result
