"""hub_emo.paths: a model name is a Hub repo id only when it has the Hub's shape and no such path exists."""

from __future__ import annotations

import pytest

from hub_emo.paths import is_hub_id


@pytest.mark.parametrize("name, expected", [
    ("facebook/wav2vec2-base", True),
    ("m-a-p/MERT-v1-95M", True),
    ("user_1/model.v2", True),
    ("wav2vec2-base", False),          # no namespace
    ("a/b/c", False),                  # a path, not an id
    ("/abs/model", False),
    ("-bad/name", False),
    ("facebook/wav2vec2-base\n", False),
])
def test_the_hub_id_shape(name, expected):
    assert is_hub_id(name) is expected


def test_an_existing_folder_is_a_path_even_when_shaped_like_an_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "me" / "model").mkdir(parents=True)
    assert is_hub_id("me/model") is False and is_hub_id("me/other") is True
