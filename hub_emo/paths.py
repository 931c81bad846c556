"""Where hub_emo keeps caches: one directory, never beside the user's data."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$HUB_EMO_CACHE`` (default ``$HF_HOME/hub_emo``, or ``~/.cache/huggingface/hub_emo``)."""
    root = os.environ.get("HUB_EMO_CACHE")
    if not root:
        hf_home = os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "huggingface"
        )
        root = os.path.join(hf_home, "hub_emo")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path

