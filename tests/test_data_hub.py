"""prepare --push-to-hub -> load_dataset round trip on the real local Hub (the `hub` fixture)."""

from __future__ import annotations

import corpora
from hub_emo import data


def test_push_then_load_dataset_by_config_and_streaming(hub, tmp_path):
    from datasets import get_dataset_config_names, load_dataset
    from huggingface_hub import HfApi

    root = corpora.make_ravdess(tmp_path / "ravdess", actors=(5,), emotions=(1, 4), seconds=0.05)
    corpora.make_deam(tmp_path / "deam")
    repo = "hub-emo/emotion-corpora-test"
    result = data.prepare_with_report(
        ["ravdess_speech", "ravdess_song", "deam"],
        {"ravdess_speech": root, "ravdess_song": root, "deam": tmp_path / "deam"},
        push_to_hub=repo,
        private=True,
    )
    assert result.url and repo in result.url and result.out is None
    files = set(HfApi().list_repo_files(repo, repo_type="dataset"))
    assert {"README.md", "skipped.tsv", "data/deam/train-00000-of-00001.parquet"} <= files
    assert HfApi().repo_info(repo, repo_type="dataset").private is True

    cache = str(tmp_path / "cache")
    assert set(get_dataset_config_names(repo)) == {"all", "ravdess_speech", "ravdess_song", "deam", "speech", "music"}
    music = load_dataset(repo, "music", split="train", cache_dir=cache)
    assert music["corpus"] == ["ravdess_song"] * 2 + ["deam"] * 4
    assert music.features["label"].int2str(music["label"])[:2] == ["neutral", "sad"]
    assert music.to_dict() == data.prepare(["ravdess_song", "deam"], {"ravdess_song": root, "deam": tmp_path / "deam"}).to_dict()
    streamed = list(load_dataset(repo, "deam", split="train", streaming=True))
    assert [r["id"] for r in streamed] == ["2", "2001", "3", "5"]
    assert streamed[0]["audio"].get_all_samples().sample_rate == 44100
