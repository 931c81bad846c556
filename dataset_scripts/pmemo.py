"""PMEmo: 794 pop choruses with static valence/arousal in [0, 1].

Layout: ``chorus/<musicId>.mp3``, ``annotations/static_annotations.csv`` (musicId,
Arousal(mean), Valence(mean)), ``metadata.csv`` (musicId, ..., artist) for the performer.
Valence/arousal are rescaled from [0, 1] to [-1, 1]; the category is the Russell
quadrant at the scale's midpoint (0.5 on PMEmo's scale, 0 after rescaling; a value on
the midpoint counts as high): Q1 happy, Q2 angry, Q3 sad, Q4 calm. ``native_label`` is
that quadrant (PMEmo has no categories of its own). No official folds.
"""

from __future__ import annotations

import os
from pathlib import Path

from dataset_scripts import Skip, find, index_by_stem, read_table, record, unmatched_audio, va_ratings
from hub_emo.audio import audio_files
from hub_emo.schema import QUADRANT_TO_EMOTION, va_to_quadrant

NAME = "pmemo"
DOMAIN = "music"
HOMEPAGE = "https://github.com/HuiZhangDB/PMEmo"
LICENSE = "Research use (PMEmo terms; audio from the original releases)"
CITATION = """@inproceedings{zhang2018pmemo,
  title     = {The {PMEmo} Dataset for Music Emotion Recognition},
  author    = {Zhang, Kejun and Zhang, Hui and Li, Simeng and Yang, Changyuan and Sun, Lingyun},
  booktitle = {Proc. ACM International Conference on Multimedia Retrieval (ICMR)},
  pages     = {135--142},
  year      = {2018}
}"""
LABEL_MAP = dict(QUADRANT_TO_EMOTION)
DROPPED: dict[str, str] = {}


def records(root: str | os.PathLike):
    """Every chorus with a static annotation."""
    table = find(root, "annotations/static_annotations.csv", what="static_annotations.csv")
    artists = {}
    if Path(root, "metadata.csv").is_file():
        artists = {r["musicId"]: r.get("artist") or None for r in read_table(Path(root, "metadata.csv"))}
    audio = index_by_stem(audio_files(find(root, "chorus", what="the chorus folder")))
    seen: set[str] = set()
    for line_no, row in enumerate(read_table(table), 2):
        where = f"{table}:{line_no}"
        music_id = row.get("musicId", "")
        seen.add(music_id)
        if music_id not in audio:
            yield Skip(where, f"metadata without audio ({music_id}.mp3 is missing)")
            continue
        try:
            valence, arousal = va_ratings(row, "Valence(mean)", "Arousal(mean)", (0, 1))
        except ValueError as error:
            yield Skip(where, str(error))
            continue
        yield record(
            id=music_id, audio=audio[music_id], native_label=va_to_quadrant(valence, arousal),
            label_map=LABEL_MAP, dropped=DROPPED, speaker=artists.get(music_id),
            valence=valence, arousal=arousal, source=where,
        )
    yield from unmatched_audio(audio, seen)
