"""Importing hub_emo changes nothing for code that does not use it.

transformers' own ``pipeline("audio-classification")`` on a stock model gives the same class
and the same scores in a process that imported hub_emo (and its inference module) as in one
that did not; hub_emo's pipeline is had by asking for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import torch

from tiny import tiny_backbone_config

SCORE = """
import json, sys
import numpy as np
{before}
from transformers import pipeline
classifier = pipeline("audio-classification", model={model!r})
wave = 0.1 * np.sin(np.arange(8000, dtype=np.float32) / 7)
scores = classifier(wave, top_k=None)
print(json.dumps({{"class": type(classifier).__module__ + "." + type(classifier).__qualname__, "scores": scores,
                  "hooks": [type(f).__module__ for f in sys.meta_path]}}))
"""


def _score(model: str, before: str) -> dict:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCORE.format(model=model, before=before))],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_stock_pipeline_is_the_same_with_and_without_hub_emo(tmp_path):
    from transformers import AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    AutoModelForAudioClassification.from_config(tiny_backbone_config(num_labels=3)).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path)
    without = _score(str(tmp_path), "")
    with_hub_emo = _score(str(tmp_path), "import hub_emo, hub_emo.inference, hub_emo.training")
    assert without["class"] == "transformers.pipelines.audio_classification.AudioClassificationPipeline"
    assert with_hub_emo["class"] == without["class"]
    assert with_hub_emo["scores"] == without["scores"]
    assert not any(m.startswith("hub_emo") for m in with_hub_emo["hooks"])  # no meta-path hook


def test_hub_emo_pipeline_is_had_by_asking(tmp_path):
    from transformers import AutoModelForAudioClassification, Wav2Vec2FeatureExtractor

    import hub_emo
    from hub_emo.inference import EmoAudioClassificationPipeline

    torch.manual_seed(0)
    AutoModelForAudioClassification.from_config(tiny_backbone_config(num_labels=3)).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor().save_pretrained(tmp_path)
    classifier = hub_emo.pipeline(tmp_path)
    assert isinstance(classifier, EmoAudioClassificationPipeline)
    stereo = 0.1 * np.stack([np.sin(np.arange(8000, dtype=np.float32) / 7)] * 2)
    assert len(classifier({"array": stereo, "sampling_rate": 16000}, top_k=None)) == 3  # the stock one refuses it
    registered = _score(str(tmp_path), "import hub_emo; hub_emo.register(pipeline=True)")
    assert registered["class"] == "hub_emo.inference._AudioClassificationPipeline"
