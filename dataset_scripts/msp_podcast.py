"""MSP-Podcast: podcast speech with consensus categories and valence/arousal (1-7).

Layout: ``Audios/<FileName>`` and ``Labels/labels_consensus.csv`` (FileName, EmoClass,
EmoAct, EmoVal, EmoDom, SpkrID, Gender, Split_Set). Other (O) and no agreement (X) have
no canonical class: kept with no label (-1). Valence/arousal are rescaled from 1-7 to
[-1, 1]; ``fold`` is Split_Set (Train, Development, Test1, ...). Column names differ
between releases: check yours.
"""

from __future__ import annotations

import os
from pathlib import Path

from dataset_scripts import Skip, find, index_by_stem, read_table, record, unmatched_audio, va_ratings
from hub_emo.audio import audio_files

NAME = "msp_podcast"
DOMAIN = "speech"
HOMEPAGE = "https://ecs.utdallas.edu/research/researchlabs/msp-lab/MSP-Podcast.html"
LICENSE = "MSP-Podcast academic licence (by agreement with UT Dallas)"
CITATION = """@article{lotfian2019msppodcast,
  title   = {Building Naturalistic Emotionally Balanced Speech Corpus by Retrieving Emotional Speech from Existing Podcast Recordings},
  author  = {Lotfian, Reza and Busso, Carlos},
  journal = {IEEE Transactions on Affective Computing},
  volume  = {10},
  number  = {4},
  pages   = {471--483},
  year    = {2019}
}"""
LABEL_MAP = {
    "A": "angry",
    "S": "sad",
    "H": "happy",
    "U": "surprised",
    "F": "fearful",
    "D": "disgust",
    "C": "contempt",
    "N": "neutral",
}
DROPPED: dict[str, str] = {}
UNLABELLED = {"O": "other", "X": "no agreement"}
COLUMNS = ("FileName", "EmoClass", "EmoAct", "EmoVal", "SpkrID", "Split_Set")


def records(root: str | os.PathLike):
    """Every row of ``Labels/labels_consensus.csv`` with its file in ``Audios/``."""
    table = find(root, "Labels/labels_consensus.csv", "labels_consensus.csv", what="the consensus labels")
    rows = read_table(table)
    missing = [c for c in COLUMNS if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{table}: missing columns {missing} (this loader reads {COLUMNS})")
    audio = index_by_stem(audio_files(find(root, "Audios", "Audio", what="the audio folder")))
    seen: set[str] = set()
    for line_no, row in enumerate(rows, 2):
        where = f"{table}:{line_no}"
        stem = Path(row["FileName"]).stem
        seen.add(stem)
        if stem not in audio:
            yield Skip(where, f"metadata without audio ({row['FileName']} is missing)")
            continue
        try:
            valence, arousal = va_ratings(row, "EmoVal", "EmoAct", (1, 7))
        except ValueError as error:
            yield Skip(where, str(error))
            continue
        yield record(
            id=stem, audio=audio[stem], native_label=row["EmoClass"], label_map=LABEL_MAP,
            dropped=DROPPED, unlabelled=UNLABELLED, speaker=row["SpkrID"] or None, valence=valence, arousal=arousal,
            fold=row["Split_Set"] or None, source=where,
        )
    yield from unmatched_audio(audio, seen)
