"""4Q audio emotion dataset (Panda, Malheiro & Paiva 2018): 900 clips, balanced Russell quadrants.

Layout: ``MER_audio_taffc_dataset/Q1/MT0002161109.mp3`` ... ``Q4/``, with
``panda_dataset_taffc_annotations.csv`` (Song, Quadrant) as the label, and
``panda_dataset_taffc_metadata.csv`` (Song, Artist, ...) for the performer when present.
A clip whose quadrant folder disagrees with the annotation is reported, not kept.
Quadrants map to emotions as everywhere in hub_emo (Q1 happy, Q2 angry, Q3 sad, Q4 calm).
"""

from __future__ import annotations

import os
from pathlib import Path

from dataset_scripts import Skip, find, index_by_stem, read_table, record, unmatched_audio
from hub_emo.audio import audio_files
from hub_emo.schema import QUADRANT_TO_EMOTION

NAME = "panda_4q"
DOMAIN = "music"
HOMEPAGE = "http://mir.dei.uc.pt/resources/MER_audio_taffc_dataset.zip"
LICENSE = "Research use (audio excerpts from AllMusic; see the dataset page)"
CITATION = """@article{panda2018novel,
  title   = {Novel Audio Features for Music Emotion Recognition},
  author  = {Panda, Renato and Malheiro, Ricardo and Paiva, Rui Pedro},
  journal = {IEEE Transactions on Affective Computing},
  volume  = {11},
  number  = {4},
  pages   = {614--626},
  year    = {2018}
}"""
LABEL_MAP = dict(QUADRANT_TO_EMOTION)
DROPPED: dict[str, str] = {}


def records(root: str | os.PathLike):
    """Every annotated song with its MP3 in its quadrant folder."""
    base = Path(root, "MER_audio_taffc_dataset")
    base = base if base.is_dir() else Path(root)
    table = find(base, "panda_dataset_taffc_annotations.csv", what="the annotations CSV")
    artists = {}
    metadata = base / "panda_dataset_taffc_metadata.csv"
    if metadata.is_file():
        artists = {r["Song"]: r.get("Artist") or None for r in read_table(metadata)}
    audio = index_by_stem(p for q in LABEL_MAP for p in audio_files(base / q))
    seen: set[str] = set()
    for line_no, row in enumerate(read_table(table), 2):
        where = f"{table}:{line_no}"
        song, native = row.get("Song", ""), row.get("Quadrant", "")
        seen.add(song)
        if song not in audio:
            yield Skip(where, f"metadata without audio ({song} is missing)")
        elif native in LABEL_MAP and audio[song].parent.name != native:
            yield Skip(str(audio[song]), f"folder says {audio[song].parent.name}, annotations say {native}")
        else:
            yield record(
                id=song, audio=audio[song], native_label=native, label_map=LABEL_MAP,
                dropped=DROPPED, speaker=artists.get(song), source=where,
            )
    yield from unmatched_audio(audio, seen)
