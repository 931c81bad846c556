"""ESD (Emotional Speech Dataset): 10 Mandarin + 10 English speakers, 5 emotions, 16 kHz.

Layout: ``ESD/<spk>/<Emotion>/<spk>_<nnnnnn>.wav`` (some copies add ``train/``,
``evaluation/``, ``test/`` under each emotion: that folder becomes ``fold``, otherwise
``fold`` is null), transcripts ``<spk>/<spk>.txt`` (id, text, emotion; tab-separated).
The transcript's emotion is the label (English names, or Chinese for the Mandarin
speakers); a clip whose emotion folder disagrees with it is reported, not kept.
"""

from __future__ import annotations

import os
from pathlib import Path

from dataset_scripts import Skip, index_by_stem, record, unmatched_audio
from hub_emo.audio import audio_files

NAME = "esd"
DOMAIN = "speech"
HOMEPAGE = "https://hltsingapore.github.io/ESD/"
LICENSE = "ESD licence (non-commercial research use, by agreement)"
CITATION = """@inproceedings{zhou2021esd,
  title     = {Seen and Unseen Emotional Style Transfer for Voice Conversion with A New Emotional Speech Dataset},
  author    = {Zhou, Kun and Sisman, Berrak and Liu, Rui and Li, Haizhou},
  booktitle = {Proc. ICASSP},
  pages     = {920--924},
  year      = {2021}
}"""
LABEL_MAP = {
    "Neutral": "neutral",
    "Angry": "angry",
    "Happy": "happy",
    "Sad": "sad",
    "Surprise": "surprised",
    "中立": "neutral",
    "生气": "angry",
    "快乐": "happy",
    "伤心": "sad",
    "惊喜": "surprised",
}
DROPPED: dict[str, str] = {}
SPLITS = ("train", "evaluation", "test")


def _read_text(path: Path) -> str:
    for encoding in ("utf-8-sig", "utf-16", "gb18030"):
        try:
            return path.read_text(encoding=encoding)
        except UnicodeError:
            continue
    raise ValueError(f"{path}: transcript is neither UTF-8, UTF-16 nor GB18030")


def records(root: str | os.PathLike):
    """Every transcript row of every speaker folder (``0001``..``0020``) under ``root``."""
    transcripts = sorted(
        p for p in Path(root).rglob("[0-9][0-9][0-9][0-9].txt") if p.parent.name == p.stem
    )
    if not transcripts:
        raise ValueError(f"{root}: no <speaker>/<speaker>.txt transcripts (is this the ESD root?)")
    for transcript in transcripts:
        speaker = transcript.stem
        audio = index_by_stem(audio_files(transcript.parent, (".wav",)))
        seen: set[str] = set()
        for line_no, line in enumerate(_read_text(transcript).splitlines(), 1):
            if not line.strip():
                continue
            where = f"{transcript}:{line_no}"
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) < 3:
                yield Skip(where, "transcript line is not <id> TAB <text> TAB <emotion>")
                continue
            utterance, native = fields[0], fields[-1]
            seen.add(utterance)
            if utterance not in audio:
                yield Skip(where, f"metadata without audio ({utterance}.wav is missing)")
                continue
            path = audio[utterance]
            split = path.parent.name if path.parent.name in SPLITS else None
            folder = path.parent.parent.name if split else path.parent.name
            if native in LABEL_MAP and folder in LABEL_MAP and LABEL_MAP[folder] != LABEL_MAP[native]:
                yield Skip(str(path), f"folder says {folder}, transcript says {native}")
                continue
            yield record(
                id=utterance, audio=path, native_label=native, label_map=LABEL_MAP,
                dropped=DROPPED, speaker=speaker, fold=split, source=where,
            )
        yield from unmatched_audio(audio, seen)
