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


def weights_hash(model) -> str:
    """SHA-256 of every tensor of a model's state dict (names, shapes, bytes): cache keys
    follow the weights themselves, not a name that may point to other weights later."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(flat.numpy().data)
    return digest.hexdigest()
