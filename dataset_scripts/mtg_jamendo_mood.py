"""MTG-Jamendo, mood/theme subset: 18 486 Creative Commons tracks, 56 multi-label mood/theme tags.

Layout: ``autotagging_moodtheme.tsv`` (TRACK_ID, ARTIST_ID, ALBUM_ID, PATH, DURATION,
then one tab-separated ``mood/theme---<tag>`` field per tag; found at the root or in
``data/``) and the audio at ``<audio_dir>/<PATH>`` (``audio_dir`` defaults to the root,
then ``root/audio``; ``low_quality=True`` reads the ``.low.mp3`` copies).

Single-label view of a multi-label corpus: a track whose tags that name an emotion
(``LABEL_MAP``) all map to one canonical class gets that class; a track with none, or
with conflicting ones (e.g. happy + sad), is kept with no label (-1).
``native_label`` keeps all the track's tags, comma-separated. ``fold`` is the track's
part (train / validation / test) of official split ``split`` (0-4) when
``splits/split-<k>/autotagging_moodtheme-<part>.tsv`` is present, else null.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from dataset_scripts import Skip, find, record

NAME = "mtg_jamendo_mood"
DOMAIN = "music"
HOMEPAGE = "https://mtg.github.io/mtg-jamendo-dataset/"
LICENSE = "Metadata: CC BY-NC-SA 4.0; audio: each track's Creative Commons licence"
CITATION = """@inproceedings{bogdanov2019mtg,
  title     = {The {MTG-Jamendo} Dataset for Automatic Music Tagging},
  author    = {Bogdanov, Dmitry and Won, Minz and Tovstogan, Philip and Porter, Alastair and Serra, Xavier},
  booktitle = {Machine Learning for Music Discovery Workshop, ICML},
  year      = {2019}
}"""
TAG_PREFIX = "mood/theme---"
LABEL_MAP = {
    "happy": "happy",
    "sad": "sad",
    "melancholic": "sad",
    "calm": "calm",
    "relaxing": "calm",
    "meditative": "calm",
    "romantic": "tender",
    "love": "tender",
}
DROPPED: dict[str, str] = {}
UNLABELLED = {
    "(no emotion tag)": "none of the track's tags names an emotion in LABEL_MAP",
    "(conflicting emotion tags)": "its emotion tags map to different canonical classes",
}
PARTS = ("train", "validation", "test")


def _rows(path: Path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if not header or header[:4] != ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH"]:
            raise ValueError(f"{path}: header is not TRACK_ID, ARTIST_ID, ALBUM_ID, PATH, DURATION, TAGS")
        for line_no, row in enumerate(reader, 2):
            if row:
                yield line_no, row


def _folds(table: Path, split: int) -> dict[str, str]:
    folder = None
    for candidate in (table.parent / "splits", table.parent / "data" / "splits"):
        if (candidate / f"split-{split}").is_dir():
            folder = candidate / f"split-{split}"
    if folder is None:
        return {}
    folds = {}
    for part in PARTS:
        path = folder / f"autotagging_moodtheme-{part}.tsv"
        if path.is_file():
            folds.update({row[0]: part for _, row in _rows(path)})
    return folds


def records(
    root: str | os.PathLike,
    audio_dir: str | os.PathLike | None = None,
    split: int = 0,
    low_quality: bool = False,
):
    """Every track of ``autotagging_moodtheme.tsv`` whose emotion tags agree."""
    table = find(root, "autotagging_moodtheme.tsv", "data/autotagging_moodtheme.tsv", what="autotagging_moodtheme.tsv")
    bases = [Path(audio_dir)] if audio_dir else [Path(root), Path(root, "audio")]
    folds = _folds(table, split)
    for line_no, row in _rows(table):
        where = f"{table}:{line_no}"
        if len(row) < 6:
            yield Skip(where, "row has fewer than 6 tab-separated fields")
            continue
        track, artist, _, rel = row[:4]
        if low_quality:
            rel = rel[: -len(".mp3")] + ".low.mp3"
        path = next((b / rel for b in bases if (b / rel).is_file()), None)
        if path is None:
            yield Skip(where, f"metadata without audio ({rel} is missing)")
            continue
        tags = [t.strip().removeprefix(TAG_PREFIX) for t in row[5:] if t.strip()]
        mapped = {LABEL_MAP[t] for t in tags if t in LABEL_MAP}
        native = ("(conflicting emotion tags)" if len(mapped) > 1
                  else next((t for t in tags if t in LABEL_MAP), "(no emotion tag)"))
        result = record(
            id=track, audio=path, native_label=native, label_map=LABEL_MAP, dropped=DROPPED,
            unlabelled=UNLABELLED, speaker=artist, fold=folds.get(track), source=where,
        )
        result["native_label"] = ",".join(tags)
        yield result
