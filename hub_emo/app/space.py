"""A Space-ready folder that runs the same app: ``app.py``, ``requirements.txt``, README.md.

The folder carries hub_emo's own code (it is not on PyPI), the model when it is a local
folder (a Hub model is linked in the card's ``models:`` and loaded by id), the study report
and the example clips. ``requirements.txt`` pins the versions this app runs with here, so
the Space installs the set that was tested. No Gradio import: writing a Space is cheap.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sys
from pathlib import Path

from hub_emo.app.source import AppSource, resolve
from hub_emo.paths import is_hub_id

#: What the app imports when it runs (hub_emo.app.ui, .source, hub_emo.inference, .audio, .modeling).
SPACE_REQUIREMENTS = (
    "gradio",
    "torch",
    "torchcodec",
    "transformers",
    "huggingface_hub",
    "safetensors",
    "numpy",
    "soundfile",
    "soxr",
    "matplotlib",
)
#: Debian packages the Space needs (torchcodec decodes through FFmpeg's libraries).
SPACE_PACKAGES = ("ffmpeg",)
MODEL_FILES = (".json", ".safetensors", ".py", ".txt")

APP_PY = '''"""{title}: try the model in the browser (written by `hub-emo space`)."""

import os
from pathlib import Path

from hub_emo.app.source import resolve
from hub_emo.app.ui import launch
from hub_emo.audio import audio_files

HERE = Path(__file__).resolve().parent
MODEL = {model!r}
REPORT = {report!r}
EXAMPLE_LABELS = {labels!r}

source = resolve(MODEL if "/" in MODEL else HERE / MODEL, report=REPORT and HERE / REPORT)
source.title = {title!r}
if not source.examples:
    source.examples = audio_files(HERE / "examples")
    source.example_labels = [EXAMPLE_LABELS.get(p.name, p.name) for p in source.examples]

if __name__ == "__main__":
    launch(source, host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
           port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
'''


def requirements() -> list[str]:
    """``name==version`` of each package the app imports, as installed here (local tags dropped)."""
    lines = []
    for name in SPACE_REQUIREMENTS:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise ValueError(f"{name} is not installed: install hub_emo with its app dependencies first") from None
        lines.append(f"{name}=={version.split('+')[0]}")
    return lines


def _copy_package(target: Path) -> None:
    package = Path(__file__).resolve().parents[1]
    shutil.copytree(
        package, target / "hub_emo",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
    )


def _copy_model(model_dir: Path, target: Path) -> None:
    target.mkdir(parents=True)
    for item in sorted(model_dir.iterdir()):
        if item.is_file() and item.suffix in MODEL_FILES:
            shutil.copy2(item, target / item.name)
    if not (target / "config.json").is_file():
        raise ValueError(f"{model_dir}: not a model folder (no config.json)")


def card(title: str, model: str | None, has_report: bool, examples: int) -> str:
    """README.md: the Space metadata (``sdk: gradio``, the model linked) and what the Space does."""
    from huggingface_hub import SpaceCardData

    data = SpaceCardData(
        title=title[:60],
        emoji="🎧",
        colorFrom="blue",
        colorTo="indigo",
        sdk="gradio",
        sdk_version=importlib.metadata.version("gradio"),
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
        app_file="app.py",
        license="apache-2.0",
        models=[model] if model else None,
        tags=["audio-classification", "emotion-recognition", "hub_emo"],
        short_description="Emotion recognition in speech and music",
    )
    what = f"the model [{model}](https://huggingface.co/{model})" if model else "the model in `model/`"
    body = [
        f"# {title}",
        "",
        f"Try {what} in the browser: upload or record audio in any format, sample rate, channel "
        "count and length, and see its emotion scores; long recordings are classified in chunks, "
        "shown as a timeline. The app is hub_emo's (its code is in `hub_emo/`): the same "
        "inference pipeline as `hub-emo predict`, resampling, downmixing and chunking included.",
        "",
    ]
    if has_report:
        body += ["The **Study report** tab shows the study the model comes from (`report.html`, one self-contained page).", ""]
    if examples:
        body += [f"`examples/` holds {examples} example clips.", ""]
    body += [
        "Run it on your machine:",
        "",
        "```bash",
        "pip install -r requirements.txt   # torchcodec needs FFmpeg's libraries (packages.txt)",
        "python app.py                     # http://127.0.0.1:7860",
        "```",
        "",
    ]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body)


def _fill(staging: Path, source: AppSource, lines: list[str]) -> None:
    linked = source.model if is_hub_id(source.model) else None
    if linked is None:
        _copy_model(Path(source.model), staging / "model")
    report_name = None
    if source.report is not None:
        report_name = "report.html"
        if source.report.suffix.lower() in (".html", ".htm"):
            shutil.copy2(source.report, staging / report_name)
        else:
            from hub_emo.analysis.html import write_html_report

            write_html_report(source.report, staging / report_name)
    if source.examples:
        (staging / "examples").mkdir()
        for clip in source.examples:
            shutil.copy2(clip, staging / "examples" / clip.name)
    _copy_package(staging)
    title = source.title if linked is None else linked
    labels = dict(zip((p.name for p in source.examples), source.example_labels))
    (staging / "app.py").write_text(
        APP_PY.format(title=title, model=linked or "model", report=report_name, labels=labels)
    )
    (staging / "requirements.txt").write_text("\n".join(lines) + "\n")
    (staging / "packages.txt").write_text("\n".join(SPACE_PACKAGES) + "\n")
    (staging / "README.md").write_text(card(title, linked, report_name is not None, len(source.examples)))


def write_space(
    model: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    task: str = "SER",
    report: str | os.PathLike | None = None,
    revision: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the Space folder for ``model`` (folder, Hub id or demo output) into ``out_dir``."""
    source: AppSource = resolve(model, task=task, report=report, revision=revision)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ValueError(f"{out}: exists and is not empty (choose another folder, or overwrite)")
    lines = requirements()
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        _fill(staging, source, lines)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)  # only now: a failed write leaves the old folder as it was
    staging.rename(out)
    return out


def push_space(folder: str | os.PathLike, repo_id: str, *, private: bool = False):
    """Create (or reuse) the Space ``repo_id`` on the Hub ``HF_ENDPOINT`` names and upload ``folder``."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    return api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, repo_type="space",
        commit_message="Space written by hub-emo space",
    )
