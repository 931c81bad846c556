"""The app's parts without a browser: light imports, the timeline, report.html, the Space folder."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from app_fixtures import LABELS, long_clip, report_md, stereo_44k, tiny_model
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tiny_model(tmp_path_factory.mktemp("model"))
    (path / "examples").mkdir()
    stereo_44k(path / "examples" / "clip.wav")
    return path


def test_import_hub_emo_and_help_load_no_web_stack():
    code = (
        "import contextlib, io, sys\n"
        "import hub_emo\n"
        "from hub_emo import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        cli.main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        "import hub_emo.app.space, hub_emo.app.source\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'gradio', 'fastapi', 'uvicorn', 'torch', 'transformers'})\n"
        "print(heavy, ' app ' in out.getvalue(), ' space ' in out.getvalue())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[] True True"


def test_timeline_scores_are_the_pipeline_call_and_chunks_cover_the_recording(model_dir, tmp_path):
    from hub_emo.inference import pipeline

    classifier = pipeline(model_dir)
    path = str(long_clip(tmp_path / "long.flac", seconds=25.0))
    result = classifier.timeline(path, chunk_seconds=10)
    called = classifier(path, top_k=None, chunk_seconds=10)
    assert [s["label"] for s in result["scores"]] == [s["label"] for s in called]
    assert [s["score"] for s in result["scores"]] == pytest.approx([s["score"] for s in called], abs=1e-6)
    # 25 s in 10 s chunks: 0-10, 10-20 and the last aligned to the end, 15-25.
    assert [(c["start"], c["end"]) for c in result["chunks"]] == [(0, 10), (10, 20), (15, 25)]
    for chunk in result["chunks"]:
        assert set(chunk["scores"]) == set(LABELS) and sum(chunk["scores"].values()) == pytest.approx(1, abs=1e-5)
    # The recording's scores are the chunks' averaged by chunk length (all 10 s here).
    mean = {label: sum(c["scores"][label] for c in result["chunks"]) / 3 for label in LABELS}
    assert {s["label"]: s["score"] for s in result["scores"]} == pytest.approx(mean, abs=1e-5)


def test_report_html_embeds_every_image_and_keeps_tables_and_sentences(tmp_path):
    from hub_emo.analysis.html import write_html_report

    page = write_html_report(report_md(tmp_path)).read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert base64.b64decode(sources[0].split(",", 1)[1]) == (tmp_path / "plots" / "layers.png").read_bytes()
    assert "<table>" in page and "<td>speech-ssl</td>" in page and "UA 0.512" in page
    assert "<title>A study</title>" in page and not re.search(r'(src|href)="(?!data:)', page)


def test_report_html_names_a_missing_image(tmp_path):
    from hub_emo.analysis.html import write_html_report

    (tmp_path / "report.md").write_text("# r\n\n![gone](plots/gone.png)\n")
    with pytest.raises(ValueError, match=r"plots/gone.png"):
        write_html_report(tmp_path / "report.md")


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        name, _, version = line.partition("==")
        if version:
            pins[canonicalize_name(name)] = version
    return pins


def test_space_folder_for_a_local_model(model_dir, tmp_path):
    from huggingface_hub import SpaceCard

    from hub_emo.app.space import write_space

    report = report_md(tmp_path / "study")
    out = write_space(model_dir, tmp_path / "space", report=report)
    assert {p.name for p in out.iterdir()} >= {"app.py", "requirements.txt", "packages.txt", "README.md", "hub_emo", "model", "report.html", "examples"}
    assert (out / "model" / "model.safetensors").is_file() and (out / "examples" / "clip.wav").is_file()
    card = SpaceCard.load(out / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py" and card.data.models is None
    assert 'src="data:image/png' in (out / "report.html").read_text()
    with pytest.raises(ValueError, match="not empty"):
        write_space(model_dir, out)


def test_space_requirements_are_satisfied_by_the_lock(model_dir, tmp_path):
    """Nothing to install beyond the pinned set: every requirement is in the lock, at a version it allows."""
    from hub_emo.app.space import write_space

    out = write_space(model_dir, tmp_path / "space")
    pins = _lock()
    requirements = [Requirement(line) for line in (out / "requirements.txt").read_text().split()]
    assert {canonicalize_name(r.name) for r in requirements} >= {"gradio", "torch", "transformers"}
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock"
        assert requirement.specifier.contains(pins[name]), f"{requirement} vs lock {pins[name]}"


def test_space_for_a_hub_model_links_it_and_pushes_as_a_space(hub, model_dir, tmp_path):
    from huggingface_hub import HfApi, SpaceCard

    from hub_emo.app.space import push_space, write_space

    api = HfApi()
    api.create_repo("tester/tiny-emo", exist_ok=True)
    api.upload_folder(folder_path=str(model_dir), repo_id="tester/tiny-emo")
    out = write_space("tester/tiny-emo", tmp_path / "space")
    assert not (out / "model").exists() and (out / "examples" / "clip.wav").is_file()  # the repo's examples/
    assert SpaceCard.load(out / "README.md").data.models == ["tester/tiny-emo"]
    assert "MODEL = 'tester/tiny-emo'" in (out / "app.py").read_text()
    push_space(out, "tester/tiny-emo-space")
    files = set(api.list_repo_files("tester/tiny-emo-space", repo_type="space"))
    assert {"app.py", "requirements.txt", "README.md", "hub_emo/app/ui.py"} <= files
    assert api.repo_info("tester/tiny-emo-space", repo_type="space").id == "tester/tiny-emo-space"


@pytest.mark.slow
def test_space_app_builds_from_the_folder_alone(model_dir, tmp_path):
    """The Space's app.py imports hub_emo from the folder itself and builds the page for its model."""
    from hub_emo.app.space import write_space

    out = write_space(model_dir, tmp_path / "space")
    code = (
        "import json, sys\n"
        "sys.path.insert(0, '.')\n"
        "import app\n"
        "import hub_emo\n"
        "from hub_emo.app.ui import build_app\n"
        "blocks = build_app(app.source)\n"
        "print(json.dumps({'hub_emo': hub_emo.__file__, 'model': str(app.source.model), 'title': blocks.title}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=out, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    info = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(info["hub_emo"]).resolve().is_relative_to(out.resolve())
    assert Path(info["model"]).resolve() == (out / "model").resolve()


def test_source_from_a_demo_folder(model_dir, tmp_path):
    from hub_emo.app.source import resolve

    demo = tmp_path / "demo_output"
    corpus = demo / "corpus" / "Actor_01"
    corpus.mkdir(parents=True)
    for name in ("03-01-01-01-01-01-01", "03-01-03-01-01-01-01", "03-01-03-02-01-01-01", "03-02-05-01-01-01-01"):
        stereo_44k(corpus / f"{name}.wav", seconds=0.2)
    (demo / "report.html").write_text("<html></html>")
    summary = {"report": str(demo / "report.md"), "report_html": str(demo / "report.html"),
               "best": {"SER": {"model": str(model_dir), "strategy": "lora", "stages": "music→speech"}}}
    (demo / "summary.json").write_text(json.dumps(summary))
    source = resolve(demo)
    assert source.model == str(model_dir) and source.report == demo / "report.html"
    # one speech clip (channel 01) per emotion: codes 01 and 03
    assert [p.name for p in source.examples] == ["03-01-01-01-01-01-01.wav", "03-01-03-01-01-01-01.wav"]
    assert source.example_labels == ["neutral (03-01-01-01-01-01-01.wav)", "happy (03-01-03-01-01-01-01.wav)"]
    with pytest.raises(ValueError, match="no MER model"):
        resolve(demo, task="MER")


def test_app_and_space_commands_name_a_bad_model_and_exit_2(tmp_path, capsys):
    from hub_emo import cli

    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("hello")
    assert cli.main(["app", str(not_a_model)]) == 2
    assert f"{not_a_model}: not a model folder" in capsys.readouterr().err
    assert cli.main(["space", str(tmp_path), str(tmp_path / "space")]) == 2
    assert "no config.json" in capsys.readouterr().err and not (tmp_path / "space").exists()


@pytest.mark.slow
def test_hub_emo_app_serves_the_model_on_the_given_port(model_dir):
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "hub_emo", "app", str(model_dir), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 300
        page = None
        while page is None and process.poll() is None and time.monotonic() < deadline:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(1)
        assert page is not None, process.stdout.read() if process.poll() is not None else "no answer"
        assert f"hub_emo · {model_dir.name}" in page and "neutral, happy, sad, angry" in page
    finally:
        process.terminate()
        process.wait(timeout=60)
