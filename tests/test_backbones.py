"""hub_emo.modeling.backbones: MERT without its remote code, every family by its Hub id."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from real_shapes import REPO_IDS, published, random_state_dict, reduced, write_repo

from hub_emo.modeling import EmoForAudioClassification, backbones

MERT = "m-a-p/MERT-v1-95M"


def test_published_mert_configs_translate_to_hubert_field_for_field():
    for repo_id in ("m-a-p/MERT-v1-95M", "m-a-p/MERT-v1-330M"):
        options, preprocessor = published(repo_id)
        config = backbones.hubert_config_from_mert(options, repo_id)
        assert config.model_type == "hubert"
        for key in ("conv_bias", "feat_extract_norm", "do_stable_layer_norm", "feat_proj_layer_norm",
                    "conv_dim", "conv_kernel", "conv_stride", "num_conv_pos_embeddings",
                    "num_conv_pos_embedding_groups", "hidden_size", "num_hidden_layers", "layer_norm_eps"):
            assert getattr(config, key) == (tuple(options[key]) if isinstance(options[key], list)
                                            and isinstance(getattr(config, key), tuple) else options[key]), key
        assert config.sampling_rate == preprocessor["sampling_rate"] == 24000
        assert config.conv_pos_batch_norm is False


@pytest.mark.parametrize("field,value", [("feature_extractor_cqt", True), ("deepnorm", True), ("cqt_magic", 1)])
def test_unsupported_mert_options_are_refused_naming_the_field(field, value):
    options, _ = published(MERT)
    with pytest.raises(ValueError, match=field):
        backbones.hubert_config_from_mert({**options, field: value}, MERT)


def _relaxed_attention_reference(attention, hidden, relax: float) -> torch.Tensor:
    """MERT's HubertAttention_extend written out: scores / c, minus the row max, times c, softmax."""
    b, t, d = hidden.shape
    h = attention.num_heads if hasattr(attention, "num_heads") else attention.config.num_attention_heads
    hd = d // h
    q = (attention.q_proj(hidden) * hd**-0.5).view(b, t, h, hd).transpose(1, 2)
    k = attention.k_proj(hidden).view(b, t, h, hd).transpose(1, 2)
    v = attention.v_proj(hidden).view(b, t, h, hd).transpose(1, 2)
    scores = q @ k.transpose(-1, -2)
    relaxed = scores / relax
    scores = (relaxed - relaxed.amax(dim=-1, keepdim=True)) * relax
    out = torch.softmax(scores, dim=-1) @ v
    return attention.out_proj(out.transpose(1, 2).reshape(b, t, d))


@pytest.mark.parametrize("relax", [32.0, 1.0, 0.25])
def test_attention_relax_equals_stock_attention(relax):
    from transformers import HubertModel

    options, _ = published("m-a-p/MERT-v1-330M")
    config = backbones.hubert_config_from_mert(reduced(options, {"hidden_size": 32, "num_attention_heads": 4,
                                                                  "intermediate_size": 37, "num_hidden_layers": 1}))
    torch.manual_seed(0)
    model = HubertModel(config).eval().double()
    attention = model.encoder.layers[0].attention
    hidden = torch.randn(2, 50, 32, dtype=torch.float64) * 30  # large scores, where a shift would show
    stock = attention(hidden)[0]
    reference = _relaxed_attention_reference(attention, hidden, relax)
    assert torch.allclose(stock, reference, atol=1e-10, rtol=1e-10)
    scaled = _relaxed_attention_reference(attention, hidden, relax) * 1.001
    assert not torch.allclose(stock, scaled, atol=1e-10, rtol=1e-10)  # the comparison can fail


def test_mert_checkpoint_with_pytorch_model_bin_loads_exactly(tmp_path):
    from transformers import HubertModel

    folder = write_repo(MERT, tmp_path / "mert")
    assert (folder / "pytorch_model.bin").exists()
    assert "encoder.pos_conv_embed.conv.weight_g" in torch.load(folder / "pytorch_model.bin", weights_only=True)
    model = backbones.load_model(folder)
    assert type(model) is HubertModel
    config = json.loads((folder / "config.json").read_text())
    expected = random_state_dict(config)
    got = model.state_dict()
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key
    wave = torch.randn(1, 24000)
    out = model.eval()(wave, output_hidden_states=True)
    assert len(out.hidden_states) == config["num_hidden_layers"] + 1
    extractor = backbones.load_feature_extractor(folder)
    assert extractor.sampling_rate == 24000 and extractor.do_normalize is False


def test_mert_loads_without_running_its_code_even_with_trust_remote_code(tmp_path):
    folder = write_repo(MERT, tmp_path / "mert")
    (folder / "modeling_MERT.py").write_text("raise RuntimeError('remote code executed')\n")
    (folder / "configuration_MERT.py").write_text("raise RuntimeError('remote code executed')\n")
    model = EmoForAudioClassification.from_backbone(str(folder), ["a", "b"], trust_remote_code=True)
    assert model.config.backbone_config.model_type == "hubert"
    assert model.config.backbone_config.sampling_rate == 24000
    logits = model.eval()(torch.randn(2, 12000)).logits
    assert logits.shape == (2, 2)


def test_saved_mert_classifier_reloads_in_a_process_without_hub_emo(tmp_path):
    folder = write_repo(MERT, tmp_path / "mert")
    model = EmoForAudioClassification.from_backbone(str(folder), ["a", "b", "c"]).eval()
    save = tmp_path / "saved"
    model.save_pretrained(save)
    assert (save / "backbones.py").exists()
    wave = torch.randn(1, 9600, generator=torch.Generator().manual_seed(1))
    expected = model(wave).logits.detach().numpy().tolist()
    code = textwrap.dedent(f"""
        import json, sys
        sys.modules["hub_emo"] = None  # not importable here, even if installed
        import torch
        from transformers import AutoModelForAudioClassification
        model = AutoModelForAudioClassification.from_pretrained({str(save)!r}, trust_remote_code=True).eval()
        assert "hub_emo" not in type(model).__module__.split(".")[0:1], type(model).__module__
        wave = torch.randn(1, 9600, generator=torch.Generator().manual_seed(1))
        print(json.dumps({{"logits": model(wave).logits.tolist(), "rate": model.config.backbone_config.sampling_rate}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["rate"] == 24000
    np.testing.assert_allclose(got["logits"], expected, atol=1e-5)


def test_every_family_loads_by_hub_id_at_its_published_shape(published_backbones):
    for repo_id in REPO_IDS:
        config, preprocessor = published(repo_id)
        model = EmoForAudioClassification.from_backbone(repo_id, ["a", "b"]).eval()
        backbone = model.config.backbone_config
        assert backbone.feat_extract_norm == config["feat_extract_norm"], repo_id
        assert list(backbone.conv_kernel) == config["conv_kernel"], repo_id
        assert list(backbone.conv_stride) == config["conv_stride"], repo_id
        extractor = backbones.load_feature_extractor(repo_id)
        assert extractor.sampling_rate == preprocessor["sampling_rate"], repo_id
        assert backbones.sampling_rate_of(model.config) == preprocessor["sampling_rate"], repo_id
        wave = torch.randn(1, preprocessor["sampling_rate"] // 2)
        features = model.extract_layer_features(wave)
        assert features.shape == (1, TINY_LAYERS + 2, 32), repo_id


TINY_LAYERS = 2


# ------------------------------------------------------------------ reference hidden states
REFERENCE = Path(__file__).resolve().parent / "fixtures" / "reference"
REFERENCE_CASES = sorted(p.name for p in REFERENCE.iterdir() if p.is_dir())
PRENORM_CASES = [case for case in REFERENCE_CASES
                 if json.loads((REFERENCE / case / "config.json").read_text())["do_stable_layer_norm"]]


def _reference_repo(case: str, folder: Path) -> Path:
    """The reference's checkpoint as its repository ships it: its config.json and a pytorch_model.bin."""
    from safetensors.torch import load_file

    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REFERENCE / case / "config.json", folder / "config.json")
    torch.save(load_file(str(REFERENCE / case / "weights.safetensors")), folder / "pytorch_model.bin")
    return folder


def _reference_states(case: str) -> tuple[torch.Tensor, list[torch.Tensor]]:
    from safetensors.torch import load_file

    saved = load_file(str(REFERENCE / case / "hidden_states.safetensors"))
    return saved["input_values"], [saved[k] for k in sorted(saved) if k.startswith("hidden_state_")]


def _encoder(path: str, folder: Path, tmp_path: Path):
    """The backbone of ``folder`` as each hub_emo path gets it."""
    from hub_emo.features import load_backbone

    if path == "load_model":
        return backbones.load_model(folder)
    if path == "features":
        return load_backbone(str(folder)).model
    classifier = EmoForAudioClassification.from_backbone(str(folder), ["a", "b"], aggregation="weighted_sum")
    if path == "classifier":
        return classifier.backbone
    classifier.save_pretrained(tmp_path / "saved")
    return EmoForAudioClassification.from_pretrained(tmp_path / "saved").backbone


def test_reference_fixtures_cover_every_case_the_script_builds():
    assert REFERENCE_CASES == ["hubert-prenorm", "mert-v1-330m", "mert-v1-95m", "wav2vec2-prenorm", "wavlm-prenorm"]
    assert PRENORM_CASES == ["hubert-prenorm", "mert-v1-330m", "wav2vec2-prenorm", "wavlm-prenorm"]
    mert330 = json.loads((REFERENCE / "mert-v1-330m" / "config.json").read_text())
    assert mert330["attention_relax"] == 32.0 and "mask_channel_prob" in mert330 and "mask_time_selection" in mert330


@pytest.mark.parametrize("path", ["load_model", "features", "classifier", "classifier_reloaded"])
@pytest.mark.parametrize("case", REFERENCE_CASES)
def test_every_hidden_state_is_the_reference_implementations(case, path, tmp_path):
    folder = _reference_repo(case, tmp_path / "repo")
    wave, expected = _reference_states(case)
    model = _encoder(path, folder, tmp_path).eval()
    with torch.no_grad():
        got = model(wave, output_hidden_states=True).hidden_states
    assert len(got) == len(expected) == model.config.num_hidden_layers + 1
    for index, (mine, reference) in enumerate(zip(got, expected)):
        assert mine.shape == reference.shape, (case, index)
        assert torch.allclose(mine, reference, atol=1e-4, rtol=0), (case, index, (mine - reference).abs().max())


@pytest.mark.parametrize("case", PRENORM_CASES)
def test_pre_norm_last_state_without_the_convention_is_not_the_reference(case, tmp_path):
    """The comparison above can fail: transformers 5's own default gives another last state."""
    model = backbones.load_model(_reference_repo(case, tmp_path)).eval()
    assert model.config.tie_last_hidden_states is True
    wave, expected = _reference_states(case)
    model.config.tie_last_hidden_states = False
    with torch.no_grad():
        got = model(wave, output_hidden_states=True).hidden_states
    assert torch.allclose(got[-2], expected[-2], atol=1e-4, rtol=0)
    assert (got[-1] - expected[-1]).abs().max() > 1e-2


@pytest.mark.parametrize("case", PRENORM_CASES)
def test_integer_aggregation_reads_the_reference_layer(case, tmp_path):
    folder = _reference_repo(case, tmp_path)
    wave, expected = _reference_states(case)
    last = len(expected) - 1
    model = EmoForAudioClassification.from_backbone(str(folder), ["a", "b"], aggregation=last).eval()
    with torch.no_grad():
        features = model.extract_layer_features(wave)
    assert torch.allclose(features[0, last], expected[last][0].mean(0), atol=1e-4, rtol=0)


def test_real_330m_config_ignores_fields_mert_never_reads_and_refuses_what_changes_the_network():
    options, _ = published("m-a-p/MERT-v1-330M")
    unread = [key for key in options if key.startswith("mask_channel") or key.endswith(("_other", "_selection"))]
    assert len(unread) == 7 and "mask_time_min_space" in options
    config = backbones.hubert_config_from_mert(options, "m-a-p/MERT-v1-330M")
    for key in unread + ["mask_time_min_space"]:
        assert key not in config.to_dict(), key
    assert config.tie_last_hidden_states is True and config.do_stable_layer_norm is True
    with pytest.raises(ValueError, match="deepnorm"):
        backbones.hubert_config_from_mert({**options, "deepnorm": True}, "m-a-p/MERT-v1-330M")


def test_a_checkpoint_tensor_the_model_does_not_use_is_reported_by_name(tmp_path, caplog):
    folder = _reference_repo("mert-v1-95m", tmp_path)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["encoder.cqt_projection.weight"] = torch.zeros(3)
    torch.save(state, folder / "pytorch_model.bin")
    with caplog.at_level("WARNING", logger="hub_emo.modeling.backbones"):
        backbones.load_model(folder)
    assert "encoder.cqt_projection.weight" in caplog.text and "does not use" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="hub_emo.modeling.backbones"):
        backbones.load_model(_reference_repo("mert-v1-95m", tmp_path / "clean"))
    assert "does not use" not in caplog.text


def test_an_explicit_choice_of_the_last_state_is_kept(tmp_path):
    folder = _reference_repo("hubert-prenorm", tmp_path)
    options = json.loads((folder / "config.json").read_text())
    assert backbones.config_from_dict(options).tie_last_hidden_states is True
    kept = backbones.config_from_dict({**options, "tie_last_hidden_states": False})
    assert kept.tie_last_hidden_states is False
    post_norm = backbones.config_from_dict(json.loads((REFERENCE / "mert-v1-95m" / "config.json").read_text()))
    assert getattr(post_norm, "tie_last_hidden_states", None) is None  # unchanged config, unchanged identity


def test_a_saved_pre_norm_models_card_states_the_convention_it_was_saved_with(tmp_path):
    from hub_emo.hub.publish import layer_convention

    model = EmoForAudioClassification.from_backbone(str(_reference_repo("mert-v1-330m", tmp_path / "repo")), ["a"])
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())["backbone_config"]
    assert saved["tie_last_hidden_states"] is True
    assert "after the encoder's final LayerNorm" in layer_convention(saved)
    assert "before" in layer_convention({**saved, "tie_last_hidden_states": False})
    assert "LayerNorm" not in layer_convention({"do_stable_layer_norm": False})
