"""Where things are: hub_emo's one cache directory (never beside the user's data), and
whether a model name is a local path or a Hub repo id."""

from __future__ import annotations

import os
import re
from pathlib import Path

#: ``namespace/name`` as the Hub spells a repo id.
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def is_hub_id(name: str | os.PathLike) -> bool:
    """True for a ``namespace/name`` Hub repo id that is not also an existing local path."""
    return _HUB_ID.fullmatch(str(name)) is not None and not os.path.exists(name)


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

