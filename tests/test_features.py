"""hub_emo.features: one extraction serves probing, FAD and training; records, windows, identity.

Forward passes are counted by a global module hook on the backbone's top module (rows it
was fed), so nothing is mocked: `hub-emo probe`, `fad` and `train` run as they do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from hub_emo import features
from test_analysis_data import make_backbone_folder, make_dataset
from training_setup import prepared_ravdess, tiny_backbone_folder


class ClipsThroughBackbone:
    """Rows fed to any wav2vec2 encoder in the process while the block runs."""

    def __enter__(self):
        from transformers import Wav2Vec2Model

        self.count = 0

        def hook(module, args, _output):
            if isinstance(module, Wav2Vec2Model):
                self.count += int(args[0].shape[0])

        self.handle = torch.nn.modules.module.register_module_forward_hook(hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HUB_EMO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("feature_clips")
    return make_dataset(root / "wavs", per_cell=1), make_backbone_folder(root / "model")


@pytest.mark.slow
def test_probe_then_fad_then_train_extract_once(tmp_path, fresh_cache):
    """A training crop that covers every clip (0.4 s clips, max_seconds 6) reads probing's records."""
    from hub_emo.analysis import run_fad, run_probing
    from hub_emo.training import train

    corpus = prepared_ravdess(tmp_path / "ravdess")[1]
    backbone = tiny_backbone_folder(tmp_path / "backbone", seed=3)
    with ClipsThroughBackbone() as probing:
        run_probing({"tiny": backbone}, corpus, "4class", tmp_path / "probe", epochs=2, progress=False)
    with ClipsThroughBackbone() as fad:
        run_fad({"tiny": backbone}, corpus, "4class", [-1], tmp_path / "fad", n_boot=0, progress=False)
    with ClipsThroughBackbone() as training:
        result = train(dataset=corpus, backbone=backbone, strategy="weighted_sum", max_seconds=6.0,
                       output_dir=str(tmp_path / "train"), label_set="4class", domain="speech", folds="1",
                       max_steps=2, report_to="none", logging_steps=1)
    assert probing.count == len(corpus)
    assert fad.count == 0 and training.count == 0
    stats = result["folds"]["1"]["feature_cache"]
    assert stats["clips"] > 0 and stats["extracted"] == stats["forward_passes"] == 0
    assert Path(stats["directory"]).parent == fresh_cache / "features"


def test_a_crop_shorter_than_the_clip_gets_its_own_records(clips, fresh_cache):
    dataset, folder = clips
    backbone = features.load_backbone(str(folder))
    whole = features.extract(backbone, dataset)
    rate = backbone.sampling_rate
    samples = whole.records[0].samples
    assert whole.extracted == len(dataset) and samples == int(0.25 * rate)
    covering = features.extract(backbone, dataset, features.Window(samples, "start"))
    assert covering.extracted == 0
    with ClipsThroughBackbone() as calls:
        cut = features.extract(backbone, dataset, features.Window(samples // 2, "start"))
        again = features.extract(backbone, dataset, features.Window(samples // 2, "start"))
    assert cut.extracted == calls.count == len(dataset) and again.extracted == 0
    assert cut.records[0].samples == samples // 2
    assert np.abs(cut.records[0].mean - whole.records[0].mean).max() > 1e-3
    centred = features.extract(backbone, dataset, features.Window(samples // 2, "center"))
    assert centred.extracted == len(dataset)  # another window: another record
    with pytest.raises(ValueError, match="never cached"):
        features.extract(backbone, dataset, features.Window(samples // 2, "random"))


def test_identity_follows_weights_and_extractor_settings(clips):
    from transformers import Wav2Vec2FeatureExtractor

    _, folder = clips
    backbone = features.load_backbone(str(folder))
    assert features.load_backbone(str(folder)).identity == backbone.identity
    other = Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=False)
    assert features.backbone_identity(backbone.model, other) != backbone.identity
    with torch.no_grad():
        next(backbone.model.parameters()).view(-1)[0] += 1e-3
    assert features.backbone_identity(backbone.model, backbone.feature_extractor) != backbone.identity


def test_the_rate_is_the_preprocessors_with_no_default_of_its_own(clips):
    from transformers import Wav2Vec2FeatureExtractor

    backbone = features.load_backbone(str(clips[1]))
    at_24k = Wav2Vec2FeatureExtractor(sampling_rate=24000)
    assert features.load_backbone((backbone.model, at_24k)).sampling_rate == 24000
    with pytest.raises(ValueError, match="given: .*no sampling_rate"):
        features.load_backbone((backbone.model, Wav2Vec2FeatureExtractor(sampling_rate=None)), name="given")


def test_a_folder_without_preprocessor_config_probes_with_the_default_extractor(clips, tmp_path, fresh_cache):
    from transformers import AutoModel

    from hub_emo.inference import feature_extractor_for

    dataset, folder = clips
    AutoModel.from_pretrained(str(folder)).save_pretrained(tmp_path / "bare")
    assert not (tmp_path / "bare" / "preprocessor_config.json").exists()
    backbone = features.load_backbone(str(tmp_path / "bare"))
    assert backbone.feature_extractor.to_dict() == feature_extractor_for(backbone.model.config).to_dict()
    extracted = features.extract_features(str(tmp_path / "bare"), dataset, frames_per_clip=0, progress=False)
    assert extracted.pooled.shape == (3, len(dataset), 32)


def test_cached_records_equal_a_fresh_forward_pass(clips, fresh_cache):
    dataset, folder = clips
    backbone = features.load_backbone(str(folder))
    features.extract(backbone, dataset, frames_cap=8)
    cached = features.extract(backbone, dataset, frames_cap=8)
    assert cached.extracted == 0
    rows = features.decodable(dataset)
    for position in (0, len(dataset) - 1):
        wave = features.waveform(rows[position], backbone.sampling_rate)
        inputs = backbone.feature_extractor(wave, sampling_rate=backbone.sampling_rate, return_tensors="pt")
        with torch.no_grad():
            out = backbone.model(inputs["input_values"], output_hidden_states=True)
        states = torch.stack([*out.hidden_states, out.last_hidden_state])[:, 0]  # (S + 1, T, D)
        record = cached.records[position]
        np.testing.assert_allclose(record.mean, states.mean(1).numpy(), atol=1e-5)
        chosen = states[:-1, features.frame_indices(states.shape[1], 8)].numpy()
        np.testing.assert_allclose(record.frames.astype(np.float32), chosen, atol=2e-3, rtol=2e-3)


def test_a_record_written_with_a_maximum_still_serves(clips, fresh_cache):
    """Pooled files once held each hidden state's maximum beside its mean: such a file is read as
    it is, not extracted again."""
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    dataset, folder = clips
    backbone = features.load_backbone(str(folder))
    first = features.extract(backbone, dataset)
    pooled = sorted(p for p in Path(first.directory).rglob("*.safetensors") if ".frames-" not in p.name)
    assert len(pooled) == len(dataset)
    for path in pooled:
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata()
        tensors = load_file(str(path))
        assert list(tensors) == ["mean"]
        save_file({"mean": tensors["mean"], "max": tensors["mean"] + 1}, str(path), metadata=meta)
    with ClipsThroughBackbone() as fed:
        again = features.extract(backbone, dataset)
    assert again.extracted == fed.count == 0
    for old, new in zip(first.records, again.records):
        np.testing.assert_array_equal(old.mean, new.mean)


def test_a_record_with_every_frame_serves_any_cap_and_a_capped_one_only_its_own(clips, fresh_cache):
    dataset, folder = clips
    backbone = features.load_backbone(str(folder))
    every = features.extract(backbone, dataset, frames_cap=1000)
    frames = every.records[0].frame_count
    assert every.records[0].frames.shape[1] == frames < 1000
    fewer = features.extract(backbone, dataset, frames_cap=5)
    assert fewer.extracted == 0 and fewer.records[0].frames.shape[1] == 5
    np.testing.assert_array_equal(fewer.records[0].frames, every.records[0].frames[:, features.frame_indices(frames, 5)])

    other = features.load_backbone(str(make_backbone_folder(fresh_cache.parent / "other", seed=5)))
    assert features.extract(other, dataset, frames_cap=5).extracted == len(dataset)
    assert features.extract(other, dataset, frames_cap=5).extracted == 0
    assert features.extract(other, dataset, frames_cap=0).extracted == 0
    assert features.extract(other, dataset, frames_cap=7).extracted == len(dataset)  # 5 kept frames cannot give 7


def test_training_on_audio_and_the_cache_feed_the_same_resampled_samples(tmp_path, fresh_cache):
    """48 kHz clips, a 16 kHz backbone: one decoding and resampling path for both."""
    from hub_emo import EmoForAudioClassification
    from hub_emo.training.data import AudioCollator, DecodedClips
    from hub_emo.training.feature_cache import FeatureCache

    dataset = make_dataset(tmp_path / "wavs", per_cell=1, rate=48000)
    folder = make_backbone_folder(tmp_path / "model")
    model = EmoForAudioClassification.from_backbone(str(folder), ["a", "b"]).eval()
    backbone = features.load_backbone(str(folder))
    cached = FeatureCache(model, backbone.feature_extractor, 0.2, "center").features(dataset)
    collator = AudioCollator(backbone.feature_extractor, 0.2, "center")
    rows = DecodedClips(dataset, collator.rate)
    for position in (0, len(dataset) - 1):
        wave = collator.waveform(rows[position])
        assert len(wave) == int(0.2 * 16000)
        with torch.no_grad():
            direct = model.extract_layer_features(collator.pad([wave])["input_values"])[0]
        torch.testing.assert_close(cached[position], direct, rtol=1e-5, atol=1e-5)


def test_training_audio_decodes_once_per_stage_within_its_budget(tmp_path):
    """A stage reads each clip every epoch; within the budget it is decoded and resampled once."""
    from hub_emo.training.data import DecodedClips

    dataset = make_dataset(tmp_path / "wavs", per_cell=1, rate=48000)
    clips = DecodedClips(dataset, 16000)
    first = [clips[i] for i in range(len(clips))]
    assert [row["id"] for row in first] == list(dataset["id"])
    assert [row["label"] for row in first] == list(dataset["label"])
    again = clips[1]["wave"]
    assert again is first[1]["wave"] and not again.flags.writeable  # kept, and no crop can change it
    np.testing.assert_array_equal(again, features.waveform(dataset[1], 16000))

    one_clip = first[0]["wave"].nbytes
    tight = DecodedClips(dataset, 16000, budget=one_clip)
    assert tight[0]["wave"] is tight[0]["wave"]  # the first clip fills the budget
    assert tight[1]["wave"] is not tight[1]["wave"]  # the rest decode on each read
    np.testing.assert_array_equal(tight[1]["wave"], again)


def test_a_damaged_clip_is_named_not_fed(tmp_path, clips, fresh_cache):
    import datasets
    import soundfile as sf

    from hub_emo.audio import AudioError

    wave = np.sin(np.linspace(0, 200, 8000)).astype(np.float32)
    wave[100] = np.nan
    sf.write(tmp_path / "bad.wav", wave, 16000, subtype="FLOAT")
    dataset = datasets.Dataset.from_dict({"id": ["bad-clip"], "audio": [str(tmp_path / "bad.wav")]}).cast_column(
        "audio", datasets.Audio())
    with ClipsThroughBackbone() as fed, pytest.raises(AudioError, match="bad-clip.*NaN"):
        features.extract_features(str(clips[1]), dataset, progress=False)
    assert fed.count == 0


def _ravdess_like(count: int = 20, seed: int = 0):
    """Clips of distinct lengths spread as RAVDESS's are (3.0-5.3 s), scaled down ten times."""
    import datasets

    rng = np.random.default_rng(seed)
    lengths = rng.permutation(np.linspace(0.30, 0.53, count))
    audio = [{"array": rng.normal(scale=0.1, size=int(s * 16000)).astype(np.float32), "sampling_rate": 16000}
             for s in lengths]
    return datasets.Dataset.from_dict({"id": [f"r{i:02d}" for i in range(count)], "audio": audio}).cast_column(
        "audio", datasets.Audio())


def _alone(backbone, wave):
    """(S + 1, T, D) states of one clip run by itself."""
    inputs = backbone.feature_extractor(wave, sampling_rate=backbone.sampling_rate, return_tensors="pt")
    with torch.no_grad():
        out = backbone.model(inputs["input_values"].to(next(backbone.model.parameters()).dtype),
                             output_hidden_states=True)
    return torch.stack([*out.hidden_states, out.last_hidden_state])[:, 0].float()


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_near_equal_lengths_share_a_pass_and_each_clip_keeps_its_own_features(tmp_path, fresh_cache, norm):
    dataset = _ravdess_like()
    backbone = features.load_backbone(str(make_backbone_folder(tmp_path / norm, feat_extract_norm=norm)))
    passes = []
    handle = backbone.model.register_forward_hook(lambda _module, args, _out: passes.append(args[0].shape[0]))
    try:
        done = features.extract(backbone, dataset, frames_cap=6, batch_size=8)
    finally:
        handle.remove()
    assert passes == [8, 8, 4] and done.forward_passes == 3  # 20 distinct lengths: 6.7 clips per pass
    rows = features.decodable(dataset)
    for position, record in enumerate(done.records):
        states = _alone(backbone, features.waveform(rows[position], backbone.sampling_rate))
        samples = len(rows[position]["audio"].get_all_samples().data[0])
        assert record.frame_count == states.shape[1] and record.samples == samples
        np.testing.assert_allclose(record.mean, states.mean(1).numpy(), rtol=0, atol=1e-4)
        chosen = states[:-1, features.frame_indices(states.shape[1], 6)].numpy()
        np.testing.assert_allclose(record.frames.astype(np.float32), chosen, atol=2e-3, rtol=2e-3)


def test_a_second_extraction_over_a_dataset_hashes_no_audio(tmp_path, fresh_cache):
    """Clip keys are kept by the dataset's own fingerprint; another selection is hashed anew."""
    from hub_emo.data import clip_fingerprints, clips_hashed, select_rows

    dataset = _ravdess_like(6, seed=4)  # audio embedded as bytes, as in a prepared dataset
    backbone = features.load_backbone(str(make_backbone_folder(tmp_path / "model")))
    start = clips_hashed()
    first = features.extract(backbone, dataset)
    assert clips_hashed() - start == len(dataset) == first.extracted
    again = features.extract(backbone, dataset)
    assert clips_hashed() - start == len(dataset) and again.extracted == 0
    keys = clip_fingerprints(dataset)
    assert clip_fingerprints(dataset.select([4, 1])) == [keys[4], keys[1]]
    assert clips_hashed() - start == len(dataset) + 2
    split = select_rows(select_rows(dataset, [5, 0, 3]), [2, 0])  # rows taken with select_rows: no hashing
    assert clip_fingerprints(split) == [keys[3], keys[5]] and clips_hashed() - start == len(dataset) + 2


def test_decoding_workers_feed_the_same_batches(tmp_path, fresh_cache):
    dataset = _ravdess_like(10, seed=1)
    backbone = features.load_backbone(str(make_backbone_folder(tmp_path / "model")))
    inline = features.extract(backbone, dataset, batch_size=4, num_workers=0)
    workers = features.extract(backbone, dataset, batch_size=4, num_workers=2, refresh=True)
    assert workers.extracted == len(dataset) and workers.forward_passes == 3
    for mine, theirs in zip(workers.records, inline.records):
        np.testing.assert_array_equal(mine.mean, theirs.mean)


def test_a_bfloat16_backbone_extracts_with_inputs_in_its_dtype(tmp_path, fresh_cache):
    dataset = _ravdess_like(6, seed=2)
    folder = make_backbone_folder(tmp_path / "model")
    full = features.extract(features.load_backbone(str(folder)), dataset, batch_size=3)
    half = features.load_backbone(str(folder))
    half.model.to(torch.bfloat16)
    half = features.load_backbone((half.model, half.feature_extractor))
    done = features.extract(half, dataset, batch_size=3)
    assert done.extracted == len(dataset) and done.records[0].mean.dtype == np.float32
    rows = features.decodable(dataset)
    own = _alone(half, features.waveform(rows[0], half.sampling_rate)).mean(1).numpy()
    np.testing.assert_allclose(done.records[0].mean, own, rtol=0, atol=2e-2)  # bf16 itself, not a cast of fp32
    scale = np.abs(full.records[0].mean).max()
    assert 0 < np.abs(done.records[0].mean - full.records[0].mean).max() < 0.05 * scale


def test_the_length_cap_cuts_long_clips_with_a_note(tmp_path, fresh_cache, caplog):
    dataset = _ravdess_like(4, seed=3)
    backbone = features.load_backbone(str(make_backbone_folder(tmp_path / "model")))
    with caplog.at_level("WARNING", logger="hub_emo.features.extract"):
        capped = features.extract(backbone, dataset, max_seconds=0.4)
    longer = sum(len(r["audio"].get_all_samples().data[0]) > 6400 for r in features.decodable(dataset))
    assert longer and f"{longer} clip(s) longer than the 0.4 s cap" in caplog.text and "max_seconds=None" in caplog.text
    assert max(r.samples for r in capped.records) == 6400
    whole = features.extract(backbone, dataset, max_seconds=None)
    assert whole.extracted == longer and max(r.samples for r in whole.records) > 6400


def test_cached_features_follow_a_bfloat16_models_dtype(tmp_path, fresh_cache):
    """A bf16 classifier trains from the cache: its backbone extracts in bf16, the head gets bf16
    (float32 features made it fail with "mixed dtype")."""
    from hub_emo import EmoForAudioClassification
    from hub_emo.training.feature_cache import FeatureCache, collate_features
    from hub_emo.training.strategies import strategy_config

    dataset = make_dataset(tmp_path / "wavs", per_cell=1)
    folder = make_backbone_folder(tmp_path / "model")
    model = EmoForAudioClassification.from_backbone(str(folder), ["a", "b", "c", "d"],
                                                    **strategy_config("weighted_sum")).to(torch.bfloat16)
    cache = FeatureCache(model, features.load_backbone(str(folder)).feature_extractor, None, "center")
    batch = collate_features([cache.dataset(dataset)[i] for i in range(3)])
    assert batch["layer_features"].dtype == torch.bfloat16
    out = model(**batch)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.loss)
