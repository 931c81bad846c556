"""Jinja templates for the model and dataset cards (used with huggingface_hub's
``ModelCard.from_template`` / ``DatasetCard.from_template``)."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def template_path(name: str) -> Path:
    """The path of the template ``name`` (e.g. ``"model_card.md"``) shipped in this package."""
    path = _HERE / name
    if path.parent != _HERE or not path.is_file():
        available = sorted(p.name for p in _HERE.glob("*.md"))
        raise FileNotFoundError(f"{path}: no such card template (available: {', '.join(available)})")
    return path
