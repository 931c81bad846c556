"""One module per emotion corpus, all with the same small contract.

A corpus module defines

- ``NAME`` (the module's name), ``DOMAIN`` (``"speech"`` or ``"music"``), ``HOMEPAGE``,
  ``LICENSE`` (as the corpus states it), ``CITATION`` (BibTeX);
- ``LABEL_MAP``: every native label the module keeps -> its canonical emotion
  (`hub_emo.schema.EMOTIONS`); ``DROPPED`` documents the native labels it leaves out
  because the clip contradicts the corpus (a label the corpus says it does not have);
- optionally ``UNLABELLED``: native labels with no canonical class, and why. Their clips
  are kept (nothing a corpus has is lost) with ``label`` None, stored as -1, the
  `datasets.ClassLabel` "no label"; training, probing and FAD leave them out and say how many;
- ``records(root, **options)``: a generator over the corpus as published (after
  unzipping) that yields, in a deterministic order, either a record dict made by
  `record` or a `Skip` (file, reason) for a name that does not parse, a label outside
  the map, a metadata row without audio or audio without metadata.
- optionally ``to_audio(path) -> (waveform, rate)`` when ``audio`` is not an audio file
  (EMOPIA's MIDI).

Modules only *yield*: validation, decoding, writing and the skip report live once, in
`hub_emo.data`. They import nothing from hub_emo but `hub_emo.schema` and
`hub_emo.audio.audio_files` (the one way audio files are listed). Adding a corpus =
one new module listed in `CORPORA`, and one fixture builder in ``tests/corpora.py``.
"""

from __future__ import annotations

import csv
import importlib
import math
import os
from pathlib import Path
from types import ModuleType
from typing import Iterable, Iterator, Mapping, NamedTuple

from hub_emo.schema import DOMAINS, EMOTIONS, rescale_va

#: Every corpus, speech first, then music (the order `hub-emo prepare --help` lists).
CORPORA: tuple[str, ...] = (
    "ravdess_speech",
    "crema_d",
    "tess",
    "savee",
    "emodb",
    "iemocap",
    "esd",
    "msp_podcast",
    "ravdess_song",
    "emopia",
    "panda_4q",
    "pmemo",
    "deam",
    "emotify",
    "mtg_jamendo_mood",
)

#: Names every corpus module must define.
CONTRACT: tuple[str, ...] = (
    "NAME",
    "DOMAIN",
    "HOMEPAGE",
    "LICENSE",
    "CITATION",
    "LABEL_MAP",
    "DROPPED",
    "records",
)



class Skip(NamedTuple):
    """A file (or metadata row) left out, and why."""

    file: str
    reason: str


def load(name: str) -> ModuleType:
    """The corpus module called ``name``, checked against the contract."""
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    module = importlib.import_module(f"dataset_scripts.{name}")
    check_contract(module)
    return module


def check_contract(module: ModuleType) -> None:
    """Raise ValueError when a corpus module breaks the contract (names, domain, labels)."""
    missing = [n for n in CONTRACT if not hasattr(module, n)]
    if missing:
        raise ValueError(f"{module.__name__} lacks {', '.join(missing)}")
    if module.DOMAIN not in DOMAINS:
        raise ValueError(f"{module.__name__}: DOMAIN {module.DOMAIN!r} not in {DOMAINS}")
    bad = sorted({v for v in module.LABEL_MAP.values() if v not in EMOTIONS})
    if bad:
        raise ValueError(f"{module.__name__}: LABEL_MAP targets non-canonical emotions {bad}")
    unlabelled = set(getattr(module, "UNLABELLED", {}))
    for kind, names in (("dropped", set(module.DROPPED)), ("unlabelled", unlabelled)):
        both = sorted(set(module.LABEL_MAP) & names)
        if both:
            raise ValueError(f"{module.__name__}: labels both mapped and {kind}: {both}")
    both = sorted(set(module.DROPPED) & unlabelled)
    if both:
        raise ValueError(f"{module.__name__}: labels both dropped and unlabelled: {both}")


def record(
    *,
    id: str,
    audio: str | os.PathLike,
    native_label: str,
    label_map: Mapping[str, str],
    dropped: Mapping[str, str] | None = None,
    unlabelled: Mapping[str, str] | None = None,
    speaker: str | None = None,
    valence: float | None = None,
    arousal: float | None = None,
    fold: str | None = None,
    source: str | os.PathLike | None = None,
) -> dict | Skip:
    """A record, or a `Skip` naming ``source`` (default: the audio) when the label is not kept.

    A native label in ``unlabelled`` keeps its clip with ``label`` None (no canonical class).
    """
    if native_label not in label_map and native_label not in (unlabelled or {}):
        why = (dropped or {}).get(native_label)
        reason = f"label {native_label!r} is dropped ({why})" if why else (
            f"label {native_label!r} is outside the label map"
        )
        return Skip(str(source or audio), reason)
    return {
        "id": id,
        "audio": str(audio),
        "native_label": native_label,
        "label": label_map.get(native_label),
        "speaker": speaker,
        "valence": valence,
        "arousal": arousal,
        "fold": fold,
    }


def find(root: str | os.PathLike, *candidates: str, what: str = "") -> Path:
    """The first of ``root/candidate`` that exists; a ValueError naming them all otherwise."""
    root = Path(root)
    for candidate in candidates:
        path = root / candidate
        if path.exists():
            return path
    names = ", ".join(str(root / c) for c in candidates)
    raise ValueError(f"{root}: cannot find {what or 'the corpus'} (looked for {names})")


def read_table(path: str | os.PathLike, delimiter: str = ",") -> list[dict[str, str]]:
    """Rows of a CSV/TSV with stripped column names and values (BOM tolerated)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, delimiter=delimiter))
    if not rows:
        raise ValueError(f"{path}: empty table")
    header = [h.strip() for h in rows[0]]
    return [
        {h: v.strip() for h, v in zip(header, row)}
        for row in rows[1:]
        if any(cell.strip() for cell in row)
    ]


def rating(value: str | float, field: str) -> float:
    """A finite float from a metadata cell; ValueError naming the field otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{field} is {value!r} (not finite)")
    return number


def va_ratings(row: Mapping[str, str], valence: str, arousal: str, scale: tuple[float, float]) -> tuple[float, float]:
    """(valence, arousal) of a metadata row, read from the named columns on the corpus's own
    ``scale`` and mapped onto [-1, 1]; ValueError naming a column that is missing or not a number."""
    values = []
    for column in (valence, arousal):
        if column not in row:
            raise ValueError(f"no {column} column")
        values.append(rescale_va(rating(row[column], column), *scale))
    return values[0], values[1]


def index_by_stem(paths: Iterable[Path]) -> dict[str, Path]:
    """Map file stem -> path (first in sorted order wins; duplicates are reported by hub_emo.data)."""
    out: dict[str, Path] = {}
    for path in sorted(paths):
        out.setdefault(path.stem, path)
    return out


def unmatched_audio(audio: Mapping[str, Path], seen: set[str]) -> Iterator[Skip]:
    """Skips for audio files that no metadata row named."""
    for stem in sorted(set(audio) - seen):
        yield Skip(str(audio[stem]), "audio without metadata")
