"""What preparation left out: `Skipped` rows, the skip report (``skipped.tsv``), `PrepareError`."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

#: Name of the skip report written beside the data.
SKIP_REPORT = "skipped.tsv"


class PrepareError(ValueError):
    """A corpus that cannot be prepared as asked (strict mode, nothing left, bad options)."""


@dataclass(frozen=True)
class Skipped:
    """One clip or metadata row left out: which corpus, which file, why."""

    corpus: str
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.corpus}: {self.file}: {self.reason}"


def write_skip_report(skipped: Iterable[Skipped], path: Path, roots: Mapping[str, Any]) -> None:
    """A TSV of (corpus, file, reason); files are shown relative to their corpus root."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["corpus", "file", "reason"])
        for skip in skipped:
            writer.writerow([skip.corpus, _relative(skip.file, roots.get(skip.corpus)), skip.reason])


def read_skip_report(path: str | os.PathLike) -> list[Skipped]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader)
        return [Skipped(*row) for row in reader]


def _relative(file: str, root) -> str:
    if root is None:
        return file
    try:
        return Path(os.path.abspath(file)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return file
