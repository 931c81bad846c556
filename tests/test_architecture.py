"""The house's rules (docs/architecture.md), checked over the import graph of the source.

Every `import` and `from ... import` in hub_emo/ and dataset_scripts/ is read with `ast`
(also those inside functions: a lazy import is still a dependency), relative imports
resolved, and each module is placed in its stage. A stage may import only the stages
listed for it in `ALLOWED`; a new module that fits no stage fails here until the table
(and docs/architecture.md) say where it belongs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hub_emo", "dataset_scripts")

#: Module prefix -> stage, most specific first.
STAGES = {
    "hub_emo.modeling": "modeling",
    "hub_emo.schema": "base",
    "hub_emo.paths": "base",
    "hub_emo.progress": "base",
    "hub_emo.threads": "base",
    "hub_emo.distributed": "base",
    "hub_emo.plots": "base",
    "hub_emo.audio": "base",
    "hub_emo.metric": "base",
    "dataset_scripts": "corpora",
    "hub_emo.data": "data",
    "hub_emo.inference": "inference",
    "hub_emo.features": "features",  # one backbone loader, identity, extraction and cache
    "hub_emo.training": "training",
    "hub_emo.analysis": "analysis",
    "hub_emo.hub.server": "hub_server",
    "hub_emo.hub.rules": "hub_server",
    "hub_emo.hub.storage": "hub_server",
    "hub_emo.hub.xet": "hub_server",
    "hub_emo.hub": "hub",
    "hub_emo.app": "app",
    "hub_emo.demo": "demo",
    "hub_emo.commands": "commands",
    "hub_emo.cli": "cli",
    "hub_emo.__main__": "cli",
    "model_cards": "base",  # the Jinja card templates
    "hub_emo": "package",  # hub_emo/__init__.py: public names, Auto-class registration
}

_BELOW_TRAINING = {"base", "corpora", "data", "modeling", "inference", "package", "features"}
#: Stage -> the stages it may import (its own stage is always allowed).
ALLOWED = {
    "modeling": set(),  # shipped as remote code: relative imports only
    "base": set(),
    "package": {"base", "modeling", "inference"},
    "corpora": {"base"},
    "data": {"base", "corpora"},
    "inference": {"base", "modeling", "package"},
    "features": {"base", "corpora", "data", "modeling", "inference", "package"},
    "training": _BELOW_TRAINING,
    "analysis": _BELOW_TRAINING,
    "hub_server": set(),
    "hub": {"base", "modeling", "package", "hub_server"},
    "app": _BELOW_TRAINING | {"training", "analysis", "hub", "hub_server"},
    "demo": _BELOW_TRAINING | {"training", "analysis", "hub", "hub_server"},
    "commands": _BELOW_TRAINING | {"training", "analysis", "hub", "hub_server", "app", "demo", "cli"},
    "cli": _BELOW_TRAINING | {"training", "analysis", "hub", "hub_server", "app", "demo", "commands"},
}

#: Libraries that must not load where start-up time or standing alone matters.
HEAVY = ("torch", "transformers", "datasets", "numpy", "evaluate", "peft", "accelerate", "sklearn", "scipy")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield _module_name(path), path


def _imports(module: str, path: Path, top_level_only: bool = False):
    """(imported module, line, at module level) for every import statement of a file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    top = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # `from hub_emo.x import y` may import the submodule hub_emo.x.y
            names = [f"{prefix}.{alias.name}" for alias in node.names] if prefix else []
            names = [n if _is_module(n) else prefix for n in names] or [prefix]
        else:
            continue
        at_top = id(node) in top
        if top_level_only and not at_top:
            continue
        for name in names:
            yield name, node.lineno, at_top


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _stage(module: str) -> str | None:
    for prefix, stage in STAGES.items():
        if module == prefix or module.startswith(prefix + "."):
            return stage
    return None


SOURCES = dict(_sources())


def test_every_module_has_a_stage():
    assert [m for m in SOURCES if _stage(m) is None] == []


def _wrong_imports(module: str, path: Path) -> list[str]:
    """The imports of ``module`` (at ``path``) that its stage may not make."""
    stage = _stage(module)
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    wrong = []
    for name, line, _ in _imports(module, path):
        target = _stage(name)
        if target is not None and target != stage and target not in ALLOWED[stage]:
            wrong.append(f"{where}:{line} ({stage}) imports {name} ({target})")
    return wrong


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_a_stage_imports_only_the_stages_before_it(module):
    assert _wrong_imports(module, SOURCES[module]) == []


def test_modeling_imports_nothing_else_from_hub_emo():
    """`save_pretrained` copies modeling/ as remote code: it must stand alone."""
    for module, path in SOURCES.items():
        if _stage(module) == "modeling":
            for name, line, _ in _imports(module, path):
                assert _stage(name) in (None, "modeling"), f"{path}:{line} imports {name}"
                assert not name.startswith("hub_emo.") or name.startswith("hub_emo.modeling"), f"{path}:{line}"


def test_the_hub_server_needs_neither_torch_nor_transformers():
    for module, path in SOURCES.items():
        if _stage(module) == "hub_server":
            for name, line, _ in _imports(module, path):
                assert name.split(".")[0] not in HEAVY, f"{path}:{line} imports {name}"


def test_commands_do_not_import_each_other_and_load_heavy_libraries_only_in_run():
    """`hub-emo --help` imports every command module: they stay cheap to import."""
    for module, path in SOURCES.items():
        if _stage(module) != "commands":
            continue
        for name, line, at_top in _imports(module, path):
            if _stage(name) == "commands" and name != "hub_emo.commands":
                raise AssertionError(f"{path}:{line} imports another command, {name}")
            if at_top:
                assert name.split(".")[0] not in HEAVY, f"{path}:{line} imports {name} at module level"


def test_corpus_modules_only_yield_records():
    """Corpus modules read files and yield records: validation, decoding and writing live in hub_emo.data."""
    for module, path in SOURCES.items():
        if _stage(module) == "corpora":
            for name, line, _ in _imports(module, path):
                assert name.split(".")[0] not in ("datasets", "torch", "soundfile", "torchcodec"), f"{path}:{line}"


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The rules above can fail: a function-level and a relative import are both found."""
    source = tmp_path / "m.py"
    source.write_text("from . import data\n\ndef f():\n    from hub_emo.hub.publish import push_model\n")
    found = {name for name, _, _ in _imports("hub_emo.training.m", source)}
    assert found == {"hub_emo.training.data", "hub_emo.hub.publish"}
    assert _wrong_imports("hub_emo.training.m", source) == ["m.py:4 (training) imports hub_emo.hub.publish (hub)"]


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _docs_table() -> dict[str, tuple[str, set[str]]]:
    """docs/architecture.md's stage table: stage -> (its modules cell, the stages it may import)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## Stages", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        allowed = cells[2].split(" — ", 1)[0]
        imports = set() if allowed == "nothing" else {name.strip() for name in allowed.split(",")}
        for stage in (name.strip(" `") for name in cells[0].split(",")):
            table[stage] = (cells[1], imports)
    return table


def test_the_docs_table_is_this_table():
    """docs/architecture.md states the same stages, modules and allowed imports as `STAGES`/`ALLOWED`."""
    table = _docs_table()
    assert {stage: imports for stage, (_, imports) in table.items()} == ALLOWED
    for prefix, stage in STAGES.items():
        path = prefix.replace(".", "/")
        forms = (f"`{path}/`", f"`{path}.py`", f"`{path}/__init__.py`")
        assert any(form in table[stage][0] for form in forms), f"{prefix} ({stage}) is not in its docs row"


def test_docs_stand_alone():
    """The docs link only to files of the repository, and no doc or source climbs out of it."""
    link = re.compile(r"\]\(([^)#\s]+)")
    climb = re.compile(r"(?<![\w/.])((?:\.\./)+[\w./-]*)")
    for path in DOCS + [p for _, p in SOURCES.items()]:
        text = path.read_text()
        targets = climb.findall(text) + (link.findall(text) if path in DOCS else [])
        for target in targets:
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (path.parent / target).resolve()
            where = f"{path.relative_to(ROOT)}: {target}"
            assert resolved.is_relative_to(ROOT), f"{where} points outside the repository"
            assert resolved.exists(), f"{where} does not exist"
