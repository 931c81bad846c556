"""The Python examples of README.md and docs/*.md run as written, read from the files themselves.

Each ```python block runs unchanged in a fresh process whose working folder holds what the
examples name (a tiny RAVDESS and CREMA-D in the official layout, a 44.1 kHz stereo recording,
the prepared dataset for examples that read it) and whose Hub (the local test server) serves a
tiny random model at its published shape under every id the examples name. A harness around
the block records the value of each top-level expression and each name the block binds.
Examples that train (30 epochs per stage, as written) are marked slow: 1-5 minutes each here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from corpora import make_crema_d, make_ravdess

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)

#: Runs the block (its code unchanged) and prints what it produced as one JSON line.
HARNESS = r'''
import ast, json, sys
source = open(sys.argv[1]).read()
tree = ast.parse(source)
for i, node in enumerate(tree.body):  # keep each top-level expression's value
    if isinstance(node, ast.Expr):
        tree.body[i] = ast.parse(f"__values__.append(None)").body[0]
        tree.body[i].value.args = [node.value]
ast.fix_missing_locations(tree)
namespace = {"__name__": "__main__", "__values__": []}
exec(compile(tree, sys.argv[1], "exec"), namespace)
def describe(value):
    out = {"type": type(value).__name__}
    try:
        out["len"] = len(value)
    except TypeError:
        pass
    return out
names = {k: describe(v) for k, v in namespace.items() if not k.startswith("__") and not isinstance(v, type(sys))
         and not callable(v)}
print("\nHARNESS " + json.dumps({"values": namespace["__values__"], "names": names}, default=repr))
'''


def blocks() -> list:
    found = []
    for document in DOCUMENTS:
        for i, match in enumerate(BLOCK.finditer(document.read_text())):
            code = match.group(1)
            trains = re.search(r"\btrain(_two_stage)?\(", code) is not None  # 30 epochs per stage: minutes
            found.append(pytest.param(document, code, id=f"{document.relative_to(REPO)}#{i + 1}",
                                      marks=[pytest.mark.slow] if trains else []))
    return found


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, published_backbones):
    """What the examples name, in one folder (copied per example)."""
    import soundfile as sf

    import hub_emo.data

    root = tmp_path_factory.mktemp("docs_workspace")
    make_ravdess(root / "RAVDESS", actors=(1, 2), emotions=range(1, 7), seconds=0.3)
    make_crema_d(root / "CREMA-D")
    t = np.arange(int(44100 * 2.5)) / 44100
    stereo = 0.2 * np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], axis=1)
    sf.write(root / "interview_44k_stereo.flac", stereo.astype(np.float32), 44100)
    prepared = tmp_path_factory.mktemp("docs_prepared")
    hub_emo.data.prepare_with_report(["ravdess_speech", "ravdess_song"], root / "RAVDESS",
                                     out=prepared / "prepared" / "ravdess")
    return root, prepared


def test_every_document_with_python_has_its_blocks_found():
    assert {p.id.split("#")[0] for p in blocks()} >= {"README.md", "docs/data.md", "docs/training.md"}


@pytest.mark.parametrize("document,code", blocks())
def test_python_example_runs_as_written(document, code, workspace, tmp_path):
    root, prepared = workspace
    here = tmp_path / "work"
    shutil.copytree(root, here)
    if "prepared/ravdess" in code and 'out="prepared/ravdess"' not in code:  # it reads what another example writes
        shutil.copytree(prepared / "prepared", here / "prepared")
    (tmp_path / "example.py").write_text(code)
    (tmp_path / "harness.py").write_text(HARNESS)
    done = subprocess.run([sys.executable, str(tmp_path / "harness.py"), str(tmp_path / "example.py")], cwd=here,
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=900)
    assert done.returncode == 0, f"{document.name}:\n{done.stderr[-4000:]}"
    produced = json.loads(done.stdout.split("\nHARNESS ")[-1])
    CHECKS[document.name](produced, here, done.stdout)


def _readme(produced: dict, here: Path, stdout: str) -> None:
    *_, top3, summary = produced["values"]  # save_pretrained returns None
    labels = {"neutral", "calm", "happy", "sad", "angry", "fearful"}
    assert len(top3) == 3 and {s["label"] for s in top3} <= labels and all(0 <= s["score"] <= 1 for s in top3)
    assert 0 <= float(summary["balanced_accuracy"].split(" ± ")[0]) <= 1
    assert (here / "ser-model" / "preprocessor_config.json").is_file()
    assert json.loads((here / "runs" / "ser" / "results.json").read_text())["two_stage"] is True
    assert produced["names"]["ds"]["len"] > 0


def _data(produced: dict, here: Path, stdout: str) -> None:
    names = produced["names"]
    assert names["ds"] == {"type": "Dataset", "len": names["ds"]["len"]} and names["ds"]["len"] > 0
    assert names["parts"] == {"type": "DatasetDict", "len": 2}
    assert (here / "prepared" / "ravdess" / "README.md").is_file()


def _training(produced: dict, here: Path, stdout: str) -> None:
    assert "accuracy" in stdout and "±" in stdout
    for run in ("x", "y", "z"):
        assert (here / "runs" / run / "results.json").is_file(), run
    assert json.loads((here / "runs" / "y" / "results.json").read_text())["arguments"]["trainer_options"] == {
        "lr_scheduler_type": "cosine"}


CHECKS = {"README.md": _readme, "data.md": _data, "training.md": _training}
