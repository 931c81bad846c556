"""IEMOCAP: 5 sessions x 2 speakers, dyadic improvised and scripted dialogues.

Layout: ``SessionN/sentences/wav/<dialog>/<utterance>.wav``, labels in
``SessionN/dialog/EmoEvaluation/<dialog>.txt``, one line per utterance::

    [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

(valence, activation, dominance on 1-5; stored rescaled to [-1, 1]). Excited is merged
into happy (the common 4-class convention); frustration, other and no-agreement have no
canonical class and are kept with no label (-1). ``fold`` is the session "1".."5" (leave-one-session-out); the speaker is the
session plus the utterance's gender letter (``Ses01F``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dataset_scripts import Skip, index_by_stem, rating, record, unmatched_audio
from hub_emo.audio import audio_files
from hub_emo.schema import rescale_va

NAME = "iemocap"
DOMAIN = "speech"
HOMEPAGE = "https://sail.usc.edu/iemocap/"
LICENSE = "IEMOCAP licence agreement (research use, by request to USC SAIL)"
CITATION = """@article{busso2008iemocap,
  title   = {{IEMOCAP}: Interactive emotional dyadic motion capture database},
  author  = {Busso, Carlos and Bulut, Murtaza and Lee, Chi-Chun and Kazemzadeh, Abe and Mower, Emily and Kim, Samuel and Chang, Jeannette N. and Lee, Sungbok and Narayanan, Shrikanth S.},
  journal = {Language Resources and Evaluation},
  volume  = {42},
  number  = {4},
  pages   = {335--359},
  year    = {2008}
}"""
LABEL_MAP = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "happy",
    "sad": "sad",
    "ang": "angry",
    "fea": "fearful",
    "sur": "surprised",
    "dis": "disgust",
}
DROPPED: dict[str, str] = {}
UNLABELLED = {
    "fru": "frustration has no canonical class",
    "oth": "other",
    "xxx": "annotators did not agree",
}

_LINE = re.compile(
    r"^\[(\d+(?:\.\d+)?) - (\d+(?:\.\d+)?)\]\t(\S+)\t(\S+)\t\[([^,\]]+), ([^,\]]+), ([^,\]]+)\]"
)


def records(root: str | os.PathLike):
    """Every labelled utterance of every ``Session*`` folder under ``root``."""
    root = Path(root)
    sessions = sorted(p for p in root.glob("Session*") if p.is_dir())
    if not sessions:
        raise ValueError(f"{root}: no Session1..Session5 folders (is this the IEMOCAP root?)")
    for session in sessions:
        number = session.name.removeprefix("Session")
        audio = index_by_stem(audio_files(session / "sentences" / "wav", (".wav",)))
        seen: set[str] = set()
        for table in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
            for line_no, line in enumerate(table.read_text(encoding="utf-8").splitlines(), 1):
                if not line.startswith("["):
                    continue
                where = f"{table}:{line_no}"
                match = _LINE.match(line)
                if not match:
                    yield Skip(where, "evaluation line does not parse")
                    continue
                utterance, native = match.group(3), match.group(4)
                seen.add(utterance)
                if utterance not in audio:
                    yield Skip(where, f"metadata without audio ({utterance}.wav is missing)")
                    continue
                try:
                    valence = rescale_va(rating(match.group(5), "valence"), 1, 5)
                    arousal = rescale_va(rating(match.group(6), "activation"), 1, 5)
                except ValueError as error:
                    yield Skip(where, str(error))
                    continue
                gender = utterance.rsplit("_", 1)[-1][:1]
                yield record(
                    id=utterance, audio=audio[utterance], native_label=native,
                    label_map=LABEL_MAP, dropped=DROPPED, unlabelled=UNLABELLED,
                    speaker=f"Ses{int(number):02d}{gender}", valence=valence, arousal=arousal,
                    fold=number, source=where,
                )
        yield from unmatched_audio(audio, seen)
