"""RAVDESS, speech half: 24 actors, 8 emotions, 1440 audio-only files (vocal channel 01).

Layout: ``Actor_XX/03-01-EE-II-SS-RR-AA.wav`` (any parent folder, e.g.
``Audio_Speech_Actors_01-24/``). Song files (vocal channel 02) under the same root are
left to `ravdess_song`. Folds: the paper's 4 actor-independent folds "1".."4".
"""

from __future__ import annotations

import os

from dataset_scripts import _ravdess

NAME = "ravdess_speech"
DOMAIN = "speech"
HOMEPAGE = _ravdess.HOMEPAGE
LICENSE = _ravdess.LICENSE
CITATION = _ravdess.CITATION
LABEL_MAP = {name: name for name in _ravdess.EMOTION_CODES.values()}
DROPPED: dict[str, str] = {}


def records(root: str | os.PathLike):
    """Every audio-only speech file under ``root``."""
    yield from _ravdess.records(root, "speech", LABEL_MAP, DROPPED)
