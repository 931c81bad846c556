"""Feature caching for frozen backbones: exact model input, same training, cache hits, two-stage source.

The tiny RAVDESS and tiny wav2vec2 of tests/training_setup.py (0.4 s clips: every crop is
the whole clip, so cached and uncached runs see the same audio).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import Wav2Vec2FeatureExtractor

from tiny import tiny_backbone_config
from training_setup import prepared_ravdess, tiny_backbone_folder

torch.set_num_threads(1)

FAST = dict(report_to="none", per_device_train_batch_size=4, per_device_eval_batch_size=8,
            label_set="4class", logging_steps=1, head_dropout=0.0, warmup_ratio=0.0, domain="speech",
            folds="1", learning_rate=5e-3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return prepared_ravdess(tmp_path_factory.mktemp("ravdess_cache"))[1]


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    return tiny_backbone_folder(tmp_path_factory.mktemp("backbone_cache"), seed=1)


class BackboneCalls:
    """Counts forward passes of every wav2vec2 encoder in the process (a global module hook)."""

    def __enter__(self):
        from transformers import Wav2Vec2Model

        self.count = 0

        def hook(module, _inputs, _output):
            if isinstance(module, Wav2Vec2Model):
                self.count += 1

        self.handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


# ---------------------------------------------------------------------- the model input
@pytest.mark.parametrize("stable", [False, True], ids=["post-norm", "pre-norm+final-LN"])
@pytest.mark.parametrize("aggregation", ["weighted_sum", "last", 1, -1, 0])
def test_layer_features_give_the_same_logits_as_audio(aggregation, stable):
    from hub_emo import EmoConfig, EmoForAudioClassification

    torch.manual_seed(0)
    # pre-norm backbones (wav2vec2-large) end with a LayerNorm: last_hidden_state != hidden_states[-1]
    config = tiny_backbone_config(do_stable_layer_norm=stable, feat_extract_norm="layer" if stable else "group")
    model = EmoForAudioClassification(EmoConfig(backbone_config=config, aggregation=aggregation,
                                                id2label={0: "a", 1: "b", 2: "c"})).eval()
    with torch.no_grad():  # non-trivial layer weights and running statistics
        if aggregation == "weighted_sum":
            model.layer_weights.weights.copy_(torch.tensor([0.5, -1.0, 2.0]))
        model.head.layers[0].running_mean.normal_()
    values = torch.randn(3, 4000)
    mask = torch.ones(3, 4000, dtype=torch.long)
    mask[0, 2500:] = 0
    values[0, 2500:] = 0.0
    with torch.no_grad():
        features = model.extract_layer_features(values, mask)
        assert features.shape == (3, model.config.num_hidden_states + 1, 32)
        torch.testing.assert_close(model(layer_features=features).logits,
                                   model(values, attention_mask=mask).logits, rtol=1e-5, atol=1e-6)
        labels = torch.tensor([0, 1, 2])
        torch.testing.assert_close(model(layer_features=features, labels=labels).loss,
                                   model(values, attention_mask=mask, labels=labels).loss)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(pooling="attentive_stats"), "needs the frames"),
        (dict(adapter="lora"), "frozen backbone without adapters"),
        (dict(adapter="bottleneck"), "frozen backbone without adapters"),
        (dict(freeze_backbone=False), "frozen backbone without adapters"),
    ],
)
def test_layer_features_are_refused_where_they_would_not_be_exact(options, message):
    from hub_emo import EmoConfig, EmoForAudioClassification

    model = EmoForAudioClassification(EmoConfig(backbone_config=tiny_backbone_config(), id2label={0: "a", 1: "b"},
                                                **options))
    assert not model.accepts_layer_features
    with pytest.raises(ValueError, match=message):
        model(layer_features=torch.zeros(2, 4, 32))


def test_bad_layer_features_input_is_a_clear_error():
    from hub_emo import EmoConfig, EmoForAudioClassification

    model = EmoForAudioClassification(EmoConfig(backbone_config=tiny_backbone_config(), id2label={0: "a", 1: "b"}))
    with pytest.raises(ValueError, match=r"must be \(batch, 4, 32\)"):
        model(layer_features=torch.zeros(2, 3, 32))
    with pytest.raises(ValueError, match="not both"):
        model(torch.zeros(2, 800), layer_features=torch.zeros(2, 4, 32))
    from hub_emo.training import parse

    with pytest.raises(ValueError, match="cache_features needs a frozen-backbone strategy"):
        parse(strategy="lora", cache_features=True)
    with pytest.raises(ValueError, match="cache_features needs"):
        parse(strategy="weighted_sum", pooling="attentive_stats", cache_features=True)


# ---------------------------------------------------------------------- training on the cache
def _fold(result):
    return result["folds"]["1"]


def test_cached_training_equals_training_on_audio_then_hits_the_cache(tmp_path, corpus, backbone):
    """Deterministic crop (clips are shorter than max_seconds), no dropout: same steps, same model.

    Tolerance: losses and layer weights to 1e-5 (the backbone runs in batches of another
    composition, so float sums may round differently); metrics and confusion matrix exactly.
    """
    from hub_emo.modeling import EmoForAudioClassification
    from hub_emo.training import train

    options = dict(FAST, backbone=backbone, strategy="weighted_sum", max_steps=8, eval_steps=4)
    with BackboneCalls() as audio_calls:
        on_audio = _fold(train(dataset=corpus, output_dir=str(tmp_path / "audio"), cache_features=False, **options))
    with BackboneCalls() as first_calls:
        cached = _fold(train(dataset=corpus, output_dir=str(tmp_path / "cached"), **options))
    with BackboneCalls() as second_calls:
        again = _fold(train(dataset=corpus, output_dir=str(tmp_path / "again"), **options))

    assert "feature_cache" not in on_audio
    stats = cached["feature_cache"]
    clips = cached["train_rows"] + cached["validation_rows"] + cached["test_rows"]
    assert stats["clips"] == stats["extracted"] == clips
    # the backbone ran once per clip: a few length-bucketed batches, against every step and evaluation
    assert first_calls.count == stats["forward_passes"] <= clips
    assert audio_calls.count == 8 + 2 + 1 > first_calls.count  # steps, evaluations, test
    assert second_calls.count == 0 and again["feature_cache"]["extracted"] == 0

    for key in ("accuracy", "balanced_accuracy", "macro_f1", "confusion_matrix", "best_validation", "steps"):
        assert cached[key] == on_audio[key] == again[key], key
    np.testing.assert_allclose(cached["layer_weights"], on_audio["layer_weights"], atol=1e-5)
    history = [json.loads((Path(f["model"]).parent / "results.json").read_text())["loss_history"]
               for f in (on_audio, cached)]
    np.testing.assert_allclose(history[1], history[0], rtol=1e-5, atol=1e-6)

    # The saved best model is a normal model: full weights, takes audio, equals the uncached one.
    a = EmoForAudioClassification.from_pretrained(cached["model"]).eval()
    b = EmoForAudioClassification.from_pretrained(on_audio["model"]).eval()
    assert set(a.state_dict()) == set(b.state_dict()) and any(k.startswith("backbone.") for k in a.state_dict())
    wave = torch.randn(2, 6400)
    with torch.no_grad():
        torch.testing.assert_close(a(wave).logits, b(wave).logits, rtol=1e-4, atol=1e-5)


def test_a_runs_splits_hash_its_audio_once(tmp_path, corpus, backbone):
    """Every fold's train, validation and test rows come from one selected dataset, whose clip
    keys are computed once; the splits take theirs from it."""
    from hub_emo.data import clips_hashed
    from hub_emo.training import train

    options = dict(FAST, folds="1,2", backbone=backbone, strategy="weighted_sum", max_steps=2, eval_steps=2)
    fresh = corpus.shuffle(seed=1)  # a dataset no other test has hashed
    start = clips_hashed()
    result = train(dataset=fresh, output_dir=str(tmp_path / "run"), **options)
    folds = list(result["folds"].values())
    assert len(folds) == 2 and all(f["feature_cache"]["clips"] > 0 for f in folds)
    rows = folds[0]["train_rows"] + folds[0]["validation_rows"] + folds[0]["test_rows"]  # fold 1 holds every row
    assert clips_hashed() - start == rows  # not once per split of every fold


def test_baseline_shares_the_cache_of_weighted_sum_and_pipeline_loads_the_result(tmp_path, corpus, backbone):
    from transformers import pipeline

    import hub_emo  # noqa: F401 - registers the Auto classes
    from hub_emo.training import train

    first = _fold(train(dataset=corpus, backbone=backbone, strategy="weighted_sum", max_steps=2,
                        output_dir=str(tmp_path / "ws"), **FAST))
    with BackboneCalls() as calls:
        base = _fold(train(dataset=corpus, backbone=backbone, strategy="baseline", max_steps=2,
                           output_dir=str(tmp_path / "base"), **FAST))
    assert calls.count == 0 and base["feature_cache"]["directory"] == first["feature_cache"]["directory"]
    classify = pipeline("audio-classification", model=base["model"])
    out = classify(np.random.default_rng(0).standard_normal(6400).astype(np.float32))
    assert {o["label"] for o in out} <= {"neutral", "happy", "sad", "angry"} and len(out) == 4


def test_two_stage_lora_then_weighted_sum_caches_the_adapted_backbone(tmp_path, corpus, backbone):
    from hub_emo.data import clip_fingerprints
    from hub_emo.features import Store, Window, backbone_identity
    from hub_emo.modeling import EmoForAudioClassification
    from hub_emo.training import train_two_stage
    from hub_emo.training.data import AudioCollator, DecodedClips

    result = train_two_stage(dataset=corpus, source_domain="music", strategy="weighted_sum", source_strategy="lora",
                             backbone=backbone, max_steps=4, output_dir=str(tmp_path / "two"), **FAST)
    fold = _fold(result)
    assert "feature_cache" not in fold["stage1"]  # LoRA trains inside the backbone: audio every step
    assert fold["feature_cache"]["extracted"] > 0
    directory = Path(fold["feature_cache"]["directory"])

    adapted = EmoForAudioClassification.from_pretrained(fold["stage1"]["model"]).merge_and_unload().eval()
    original = EmoForAudioClassification.from_backbone(backbone, ["a"]).eval()
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(backbone)
    collator = AudioCollator(extractor, 6.0, "center")
    domain = corpus.features["domain"]
    test = corpus.filter(lambda f, d: f == "1" and d == domain.str2int("speech"), input_columns=["fold", "domain"])
    row = DecodedClips(test, 16000)[0]
    inputs = collator.pad([collator.waveform(row)])
    with torch.no_grad():
        from_adapted = adapted.extract_layer_features(inputs["input_values"])[0]
        from_original = original.extract_layer_features(inputs["input_values"])[0]
    key = clip_fingerprints(test.select([0]))[0]
    store = Store(backbone_identity(adapted.backbone, extractor))  # the adapted backbone's own identity
    assert store.directory == directory
    record = store.find(key, Window.of(6.0, 16000))
    stored = None if record is None else torch.from_numpy(record.mean)
    assert stored is not None
    torch.testing.assert_close(stored, from_adapted, rtol=1e-4, atol=1e-5)
    assert (stored - from_original).abs().max() > 1e-4  # stage 1 changed the features that stage 2 learns from
