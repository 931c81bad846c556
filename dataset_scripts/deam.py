"""DEAM (MediaEval 2013-2015): 1802 songs with song-level valence/arousal on 1-9.

Layout: ``MEMD_audio/<song_id>.mp3`` and the song-level averages
``static_annotations_averaged_songs_1_2000.csv`` and
``static_annotations_averaged_songs_2000_2058.csv`` (song_id, valence_mean,
arousal_mean, ...; found anywhere under the root, columns stripped of spaces).
Valence/arousal are rescaled from 1-9 to [-1, 1]; the category is the Russell quadrant
at the midpoint (5 on DEAM's scale; on the midpoint counts as high): Q1 happy, Q2 angry,
Q3 sad, Q4 calm. ``native_label`` is that quadrant. No official folds.
"""

from __future__ import annotations

import os
from pathlib import Path

from dataset_scripts import Skip, find, index_by_stem, read_table, record, unmatched_audio, va_ratings
from hub_emo.audio import audio_files
from hub_emo.schema import QUADRANT_TO_EMOTION, va_to_quadrant

NAME = "deam"
DOMAIN = "music"
HOMEPAGE = "https://cvml.unige.ch/databases/DEAM/"
LICENSE = "Annotations: research use; audio: Creative Commons licences of the individual tracks"
CITATION = """@article{aljanaki2017deam,
  title   = {Developing a benchmark for emotional analysis of music},
  author  = {Aljanaki, Anna and Yang, Yi-Hsuan and Soleymani, Mohammad},
  journal = {PLoS ONE},
  volume  = {12},
  number  = {3},
  pages   = {e0173392},
  year    = {2017}
}"""
LABEL_MAP = dict(QUADRANT_TO_EMOTION)
DROPPED: dict[str, str] = {}


def records(root: str | os.PathLike):
    """Every song with a song-level annotation in either averages file."""
    tables = sorted(Path(root).rglob("static_annotations_averaged_songs_*.csv"))
    if not tables:
        raise ValueError(f"{root}: no static_annotations_averaged_songs_*.csv (is this the DEAM root?)")
    audio = index_by_stem(audio_files(find(root, "MEMD_audio", what="the MEMD_audio folder")))
    seen: set[str] = set()
    for table in tables:
        for line_no, row in enumerate(read_table(table), 2):
            where = f"{table}:{line_no}"
            song = row.get("song_id", "")
            seen.add(song)
            if song not in audio:
                yield Skip(where, f"metadata without audio ({song}.mp3 is missing)")
                continue
            try:
                valence, arousal = va_ratings(row, "valence_mean", "arousal_mean", (1, 9))
            except ValueError as error:
                yield Skip(where, str(error))
                continue
            yield record(
                id=song, audio=audio[song], native_label=va_to_quadrant(valence, arousal),
                label_map=LABEL_MAP, dropped=DROPPED, valence=valence, arousal=arousal,
                source=where,
            )
    yield from unmatched_audio(audio, seen)
