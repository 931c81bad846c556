"""Emotify (Aljanaki et al. 2016): 400 one-minute excerpts, per-listener GEMS-9 annotations.

Layout: ``<genre>/<n>.mp3`` for the genres classical, rock, electronic, pop (n = 1..100,
optionally under ``emotifymusic/``) and ``data.csv`` with one row per listener and track
(``track id``, ``genre``, then one 0/1 column per GEMS category). Track ids number
each genre as a block of 100 consecutive ids, so ``track id`` t of genre g is
``g/((t - 1) % 100 + 1).mp3``: check this against your copy.

Label: the GEMS category most listeners chose (ties: the first in GEMS order),
mapped as in ``LABEL_MAP``; power, nostalgia and solemnity have no canonical class:
those tracks are kept with no label (-1). ``native_label`` is that GEMS category; ``id``
is the track id.
No valence/arousal, no folds.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from dataset_scripts import Skip, find, rating, read_table, record
from hub_emo.audio import audio_files

NAME = "emotify"
DOMAIN = "music"
HOMEPAGE = "http://www2.projects.science.uu.nl/memotion/emotifydata/"
LICENSE = "Annotations: research use; audio: the tracks' own Creative Commons / Magnatune licences"
CITATION = """@article{aljanaki2016emotify,
  title   = {Studying emotion induced by music through a crowdsourcing game},
  author  = {Aljanaki, Anna and Wiering, Frans and Veltkamp, Remco C.},
  journal = {Information Processing \\& Management},
  volume  = {52},
  number  = {1},
  pages   = {115--128},
  year    = {2016}
}"""
GEMS = (
    "amazement",
    "solemnity",
    "tenderness",
    "nostalgia",
    "calmness",
    "power",
    "joyful_activation",
    "tension",
    "sadness",
)
LABEL_MAP = {
    "amazement": "surprised",
    "tenderness": "tender",
    "calmness": "calm",
    "joyful_activation": "happy",
    "tension": "fearful",
    "sadness": "sad",
}
DROPPED: dict[str, str] = {}
UNLABELLED = {
    "power": "no canonical class (high arousal, either valence)",
    "nostalgia": "no canonical class (mixed valence)",
    "solemnity": "no canonical class",
}
GENRES = ("classical", "rock", "electronic", "pop")


def records(root: str | os.PathLike):
    """One record per track: the majority GEMS category over its listeners."""
    table = find(root, "data.csv", "emotifymusic/data.csv", what="data.csv")
    base = Path(root, "emotifymusic") if Path(root, "emotifymusic").is_dir() else Path(root)
    votes: dict[int, list[float]] = defaultdict(lambda: [0.0] * len(GEMS))
    genre_of: dict[int, str] = {}
    for line_no, row in enumerate(read_table(table), 2):
        where = f"{table}:{line_no}"
        try:
            track = int(row["track id"])
            counts = [rating(row[g], g) for g in GEMS]
        except (KeyError, ValueError) as error:
            yield Skip(where, f"row does not parse: {error}")
            continue
        genre_of[track] = row.get("genre", "").strip().lower()
        votes[track] = [a + b for a, b in zip(votes[track], counts)]
    audio = {p.resolve(): p for g in GENRES for p in audio_files(base / g)}
    seen = set()
    for track in sorted(votes):
        genre = genre_of[track]
        path = base / genre / f"{(track - 1) % 100 + 1}.mp3"
        if genre not in GENRES or not path.is_file():
            yield Skip(str(table), f"metadata without audio (track {track}: {path} is missing)")
            continue
        seen.add(path.resolve())
        total = votes[track]
        native = GEMS[max(range(len(GEMS)), key=lambda i: (total[i], -i))]
        yield record(
            id=str(track), audio=path, native_label=native, label_map=LABEL_MAP,
            dropped=DROPPED, unlabelled=UNLABELLED,
        )
    for resolved in sorted(set(audio) - seen):
        yield Skip(str(audio[resolved]), "audio without metadata")
