"""EMOPIA: 1087 pop-piano clips from 387 songs, labelled by Russell quadrant (MIDI).

Layout: ``midis/Q1_<songid>_<clip>.mid`` and ``label.csv`` (``ID``, ``4Q``). The song id
is a YouTube id and may itself contain ``_``: the name splits on its first and last
underscore. ``label.csv`` is the label; a file whose ``Qn_`` prefix disagrees is reported.

Audio: EMOPIA ships MIDI, so by default each clip is **rendered** with FluidSynth and
the General MIDI SoundFont ``/usr/share/sounds/sf2/TimGM6mb.sf2`` (Debian
``timgm6mb-soundfont``) at 22.05 kHz: the timbre is that SoundFont's piano, not the
original recording. Pass ``audio_dir=`` to use audio you have instead
(``<audio_dir>/<ID>.{wav,flac,mp3,ogg}``). ``speaker`` is the song id (group folds by
song); ``fold`` is null (the release's split files vary between versions).
"""

from __future__ import annotations

import os
from pathlib import Path

from dataset_scripts import Skip, find, index_by_stem, read_table, record, unmatched_audio
from hub_emo.audio import AUDIO_EXTENSIONS, audio_files
from hub_emo.schema import QUADRANT_TO_EMOTION

NAME = "emopia"
DOMAIN = "music"
HOMEPAGE = "https://annahung31.github.io/EMOPIA/"
LICENSE = "CC BY-NC-SA 4.0 (annotations and MIDI; see the Zenodo record)"
CITATION = """@inproceedings{hung2021emopia,
  title     = {{EMOPIA}: A Multi-Modal Pop Piano Dataset For Emotion Recognition and Emotion-based Music Generation},
  author    = {Hung, Hsiao-Tzu and Ching, Joann and Doh, Seungheon and Kim, Nabin and Nam, Juhan and Yang, Yi-Hsuan},
  booktitle = {Proc. ISMIR},
  year      = {2021}
}"""
LABEL_MAP = dict(QUADRANT_TO_EMOTION)
DROPPED: dict[str, str] = {}
SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"
RENDER_RATE = 22050


def parse(stem: str) -> tuple[str, str, str]:
    """(quadrant, song id, clip) of ``Q1_<songid>_<clip>``, splitting on first and last ``_``."""
    quadrant, _, rest = stem.partition("_")
    song, _, clip = rest.rpartition("_")
    if quadrant not in LABEL_MAP or not song or not clip.isdigit():
        raise ValueError("name does not parse as Q<n>_<songid>_<clip>")
    return quadrant, song, clip


def to_audio(path: str | os.PathLike):
    """Render a MIDI file with FluidSynth and the TimGM6mb SoundFont: (float32 mono, rate)."""
    import numpy as np
    import pretty_midi

    if not Path(SOUNDFONT).is_file():
        raise FileNotFoundError(f"{SOUNDFONT} is missing (apt-get install timgm6mb-soundfont)")
    midi = pretty_midi.PrettyMIDI(str(path))
    wave = midi.fluidsynth(fs=RENDER_RATE, synthesizer=SOUNDFONT)
    return np.asarray(wave, dtype=np.float32), RENDER_RATE


def records(root: str | os.PathLike, audio_dir: str | os.PathLike | None = None):
    """Every row of ``label.csv``, with its MIDI (rendered later) or its file in ``audio_dir``."""
    table = find(root, "label.csv", what="label.csv")
    if audio_dir is None:
        sources = index_by_stem(audio_files(find(root, "midis", what="the midis folder"), (".mid", ".midi")))
    else:
        sources = index_by_stem(audio_files(audio_dir, AUDIO_EXTENSIONS))
    seen: set[str] = set()
    for line_no, row in enumerate(read_table(table), 2):
        where = f"{table}:{line_no}"
        clip_id = row.get("ID", "")
        seen.add(clip_id)
        try:
            prefix, song, _ = parse(clip_id)
        except ValueError as error:
            yield Skip(where, f"{clip_id!r}: {error}")
            continue
        native = f"Q{row.get('4Q', '')}"
        if clip_id not in sources:
            yield Skip(where, f"metadata without audio ({clip_id} is missing)")
        elif native in LABEL_MAP and native != prefix:
            yield Skip(where, f"label.csv says {native}, the name says {prefix}")
        else:
            yield record(
                id=clip_id, audio=sources[clip_id], native_label=native, label_map=LABEL_MAP,
                dropped=DROPPED, speaker=song, source=where,
            )
    yield from unmatched_audio(sources, seen)
