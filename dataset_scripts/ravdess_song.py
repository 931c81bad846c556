"""RAVDESS, song half (the music domain): 23 actors sing the same statements, 6 emotions.

Layout: ``Actor_XX/03-02-EE-II-SS-RR-AA.wav`` (e.g. under ``Audio_Song_Actors_01-24/``;
actor 18 has no song). Speech files under the same root are left to `ravdess_speech`.
Song has no disgust or surprised: a file claiming one is reported, not kept.
"""

from __future__ import annotations

import os

from dataset_scripts import _ravdess

NAME = "ravdess_song"
DOMAIN = "music"
HOMEPAGE = _ravdess.HOMEPAGE
LICENSE = _ravdess.LICENSE
CITATION = _ravdess.CITATION
LABEL_MAP = {n: n for n in ("neutral", "calm", "happy", "sad", "angry", "fearful")}
DROPPED = {
    "disgust": "RAVDESS song has no disgust",
    "surprised": "RAVDESS song has no surprised",
}


def records(root: str | os.PathLike):
    """Every audio-only song file under ``root``."""
    yield from _ravdess.records(root, "song", LABEL_MAP, DROPPED)
