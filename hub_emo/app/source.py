"""What an app shows: the model, a study report beside it, a few example clips.

``MODEL`` may be a model folder, a Hub repo id (the real Hub or the one ``HF_ENDPOINT``
names), or a `hub-emo demo` output folder: then the demo's best model for the task, its
``report.html`` and a few clips of its corpus, one per emotion.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from hub_emo.audio import AUDIO_EXTENSIONS, audio_files

#: The domain of each task's clips in a demo corpus.
TASK_DOMAIN = {"SER": "speech", "MER": "music"}
MAX_EXAMPLES = 6


@dataclass
class AppSource:
    model: str
    report: Path | None = None
    examples: list[Path] = field(default_factory=list)
    title: str = ""
    #: What each example is (e.g. its true emotion), shown instead of its file name.
    example_labels: list[str] = field(default_factory=list)


def _demo_examples(corpus: Path, task: str) -> tuple[list[Path], list[str]]:
    """One clip per emotion of the task's domain from the demo corpus (RAVDESS layout), and its emotion."""
    from dataset_scripts import _ravdess

    chosen: dict[str, Path] = {}
    for clip, fields in _ravdess.clips(corpus, TASK_DOMAIN[task]):
        chosen.setdefault(fields["emotion"], clip)
    codes = sorted(chosen)[:MAX_EXAMPLES]
    names = _ravdess.EMOTION_CODES
    return [chosen[code] for code in codes], [f"{names.get(code, code)} ({chosen[code].name})" for code in codes]


def from_demo(folder: Path, task: str = "SER") -> AppSource:
    summary = json.loads((folder / "summary.json").read_text())
    best = summary.get("best", {}).get(task)
    if best is None:
        raise ValueError(f"{folder}: the demo has no {task} model (tasks: {', '.join(summary.get('best', {})) or 'none'})")
    if "model" not in best:
        raise ValueError(f"{folder}/summary.json predates the app: rerun `hub-emo demo --out {folder}`")
    report = Path(summary.get("report_html") or folder / "report.html")
    if not report.is_file():
        report = Path(summary["report"])
    examples, labels = _demo_examples(folder / "corpus", task)
    return AppSource(
        model=best["model"],
        report=report if report.is_file() else None,
        examples=examples,
        example_labels=labels,
        title=f"hub_emo demo · best {task} model ({best['strategy']}, {best['stages']})",
    )


def _hub_examples(repo_id: str, revision: str | None) -> list[Path]:
    from huggingface_hub import HfApi, hf_hub_download

    files = HfApi().list_repo_files(repo_id, revision=revision)
    names = sorted(f for f in files if f.startswith("examples/") and f.lower().endswith(AUDIO_EXTENSIONS))
    return [Path(hf_hub_download(repo_id, name, revision=revision)) for name in names[:MAX_EXAMPLES]]


def resolve(model: str | os.PathLike, *, task: str = "SER", report=None, revision: str | None = None) -> AppSource:
    """The `AppSource` for ``model``; an explicit ``report`` wins over one found beside it."""
    path = Path(model)
    if path.is_dir() and (path / "summary.json").is_file():
        source = from_demo(path, task)
    elif path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(f"{path}: not a model folder (no config.json)")
        source = AppSource(model=str(path), examples=audio_files(path / "examples")[:MAX_EXAMPLES], title=path.name)
    elif path.exists():
        raise ValueError(f"{path}: not a model folder (expected a folder with config.json)")
    else:
        try:
            examples = _hub_examples(str(model), revision)
        except Exception:  # noqa: BLE001 - loading the model reports a missing repo clearly
            examples = []
        source = AppSource(model=str(model), examples=examples, title=str(model))
    if report is not None:
        source.report = Path(report)
        if not source.report.is_file():
            raise ValueError(f"{source.report}: no such report")
    return source
