"""Upload a prepared folder to a dataset repo on the Hub ``HF_ENDPOINT`` names."""

from __future__ import annotations

import os


def push(folder: str | os.PathLike, repo_id: str, *, private: bool = False) -> str:
    """Upload a prepared folder to a dataset repo on ``HF_ENDPOINT``; returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message="hub-emo prepare",
    )
    return str(url)
