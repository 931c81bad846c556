"""Evaluation logits do not depend on which clips share a batch (group-norm backbones).

wav2vec2-base and HuBERT-base (``feat_extract_norm="group"``) are pretrained without an
attention mask: their first convolution's GroupNorm normalises over the whole padded
length and their attention sees the padding, so a zero-padded clip's logits would change
with its batch. Through the real evaluation path (`EmoTrainer.predict` + `AudioCollator`),
every clip must get the logits it gets alone, whatever the batch size and order, while the
whole padded batch runs through the backbone in one pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel
from tiny import tiny_backbone_config

torch.set_num_threads(1)
RATE = 16000
LENGTHS = (0.20, 0.31, 0.31, 0.45, 0.26, 0.45)  # seconds: four distinct lengths


@pytest.fixture(scope="module")
def clips():
    import datasets

    rng = np.random.default_rng(0)
    rows = {"id": [f"c{i}" for i in range(len(LENGTHS))],
            "audio": [{"array": rng.normal(scale=0.1, size=int(s * RATE)).astype(np.float32), "sampling_rate": RATE}
                      for s in LENGTHS],
            "label": [i % 2 for i in range(len(LENGTHS))]}
    features = datasets.Features({"id": datasets.Value("string"), "audio": datasets.Audio(sampling_rate=RATE),
                                  "label": datasets.Value("int64")})
    return datasets.Dataset.from_dict(rows, features=features)


def _model(kind: str, strategy: str):
    from hub_emo.inference import feature_extractor_for
    from hub_emo.training.strategies import strategy_config
    from hub_emo.modeling import EmoForAudioClassification

    torch.manual_seed(0)
    backbone = AutoModel.from_config(tiny_backbone_config(kind, layerdrop=0.0))
    assert backbone.config.feat_extract_norm == "group"
    model = EmoForAudioClassification.from_backbone(backbone, ["a", "b"], **strategy_config(strategy))
    return model, feature_extractor_for(model.config)


def _predict(model, extractor, dataset, batch_size: int, tmp_path) -> np.ndarray:
    from transformers import TrainingArguments

    from hub_emo.training import data as train_data
    from hub_emo.training.stage import trainer_classes

    EmoTrainer, _ = trainer_classes()
    collator = train_data.AudioCollator(extractor, None, "center")
    args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=batch_size, report_to=[],
                             use_cpu=True, remove_unused_columns=False, label_names=["labels"], disable_tqdm=True)
    trainer = EmoTrainer(model=model, args=args, data_collator=collator, eval_collator=collator)
    output = trainer.predict(train_data.DecodedClips(dataset, collator.rate))
    return output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions


@pytest.mark.parametrize("kind, strategy", [("wav2vec2", "lora"), ("hubert", "full"), ("wav2vec2", "weighted_sum")])
def test_evaluation_logits_do_not_depend_on_the_batch(clips, tmp_path, kind, strategy):
    model, extractor = _model(kind, strategy)
    alone = _predict(model, extractor, clips, 1, tmp_path)
    together = _predict(model, extractor, clips, len(clips), tmp_path)
    order = [5, 2, 0, 4, 1, 3]
    shuffled = _predict(model, extractor, clips.select(order), 4, tmp_path)
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-5)
    np.testing.assert_allclose(shuffled, alone[order], rtol=0, atol=1e-5)
    assert np.abs(alone[0] - alone[1]).max() > 1e-3  # the clips are told apart: the check has teeth


def test_evaluation_runs_each_padded_batch_in_one_backbone_pass(clips, tmp_path):
    """Clips of four distinct lengths: one backbone pass per evaluation batch, not one per length."""
    model, extractor = _model("wav2vec2", "weighted_sum")
    passes = []
    handle = model.backbone.register_forward_hook(lambda module, args, out: passes.append(len(args[0])))
    try:
        _predict(model, extractor, clips, len(clips), tmp_path)
        _predict(model, extractor, clips, 4, tmp_path)
    finally:
        handle.remove()
    assert passes == [6, 4, 2]


def test_a_frozen_backbone_training_sees_each_clip_unpadded_as_the_feature_cache_does():
    """Frozen strategies keep the backbone in eval mode while training: an uncached step gets the
    features the cache (each clip as alone) holds, so cached and uncached training agree."""
    model, _ = _model("wav2vec2", "weighted_sum")
    model.train()
    assert not model.backbone.training
    clip, other = torch.randn(1, 3000), torch.randn(1, 4000)
    values = torch.cat([torch.cat([clip, torch.zeros(1, 1000)], 1), other])
    mask = torch.ones(2, 4000, dtype=torch.long)
    mask[0, 3000:] = 0
    with torch.no_grad():
        together = model.extract_layer_features(values, mask)[0]
        alone = model.extract_layer_features(clip, torch.ones(1, 3000, dtype=torch.long))[0]
    torch.testing.assert_close(together, alone, rtol=0, atol=1e-5)
