"""The hub_emo model family, table-driven over backbone × aggregation × adapter."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
import torch
from tiny import BACKBONES, tiny_backbone_config

import hub_emo
from hub_emo import EmoConfig, EmoForAudioClassification

AGGREGATIONS = ["last", -1, "weighted_sum"]
ADAPTERS = ["none", "lora", "bottleneck"]
CASES = list(itertools.product(BACKBONES, AGGREGATIONS, ADAPTERS))
LABELS = ["neutral", "happy", "sad", "angry"]


def make_model(kind="wav2vec2", aggregation="weighted_sum", adapter="none", backbone_options=None, **options):
    torch.manual_seed(0)
    backbone = tiny_backbone_config(kind, **(backbone_options or {}))
    config = EmoConfig(
        backbone_config=backbone,
        aggregation=aggregation,
        adapter=adapter,
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        **{"head_hidden_sizes": [16], **options},
    )
    return EmoForAudioClassification(config)


def batch(n=4, samples=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(n, samples, generator=g)
    mask = torch.ones(n, samples, dtype=torch.long)
    mask[0, samples // 2 :] = 0
    values[0, samples // 2 :] = 0.0
    labels = torch.arange(n) % len(LABELS)
    return values, mask, labels


def expected_trainable(model: EmoForAudioClassification) -> set[str]:
    names = set()
    for name, _ in model.named_parameters():
        top = name.split(".")[0]
        if top in ("head", "layer_weights", "pooling", "bottleneck") or "lora_" in name:
            names.add(name)
    return names


@pytest.mark.parametrize("kind,aggregation,adapter", CASES)
def test_shapes_gradients_and_trainable_parameters(kind, aggregation, adapter):
    model = make_model(kind, aggregation, adapter)
    model.train()
    values, mask, labels = batch()
    out = model(values, attention_mask=mask, labels=labels)
    assert out.logits.shape == (4, len(LABELS))
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    if aggregation == "weighted_sum":
        assert out.layer_weights.shape == (model.config.num_hidden_states,)
        assert torch.allclose(out.layer_weights.sum(), torch.tensor(1.0))
    else:
        assert out.layer_weights is None
    out.loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert trainable == expected_trainable(model)
    assert with_grad == trainable
    backbone_params = sum(p.numel() for p in model.backbone.parameters())
    adapter_params = sum(
        p.numel() for n, p in model.named_parameters() if "lora_" in n or n.startswith("bottleneck")
    )
    assert (adapter_params > 0) == (adapter != "none")
    assert adapter_params < backbone_params


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_loss_decreases(aggregation, adapter):
    # No dropout or SpecAugment: the test is about learning, not regularisation noise.
    quiet = dict(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, apply_spec_augment=False)
    model = make_model("wav2vec2", aggregation, adapter, backbone_options=quiet, head_dropout=0.0)
    model.train()
    values, mask, labels = batch()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = model(values, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.6 * losses[0], losses


def test_layerdrop_is_forced_off_when_aggregating_and_training_mode_keeps_all_layers():
    model = make_model("wav2vec2", "weighted_sum")
    assert model.config.backbone_config.layerdrop == 0.0
    assert model.backbone.config.layerdrop == 0.0
    model.train()
    values, mask, _ = batch()
    for _ in range(10):  # with layerdrop 0.1 some of these would drop a layer
        out = model(values, attention_mask=mask, output_hidden_states=True)
        assert len(out.hidden_states) == model.config.num_hidden_states
    # The config itself decides, from the backbone's default of 0.1: off wherever layers are aggregated.
    for aggregation, expected in (("weighted_sum", 0.0), (1, 0.0), (-1, 0.0), ("last", 0.1)):
        config = EmoConfig(backbone_config=tiny_backbone_config(), aggregation=aggregation)
        assert config.backbone_config.layerdrop == expected, aggregation


def test_layer_index_reads_the_right_hidden_state():
    model = make_model("hubert", 1, head_hidden_sizes=[])
    model.eval()
    values, mask, _ = batch()
    with torch.no_grad():
        out = model(values, attention_mask=mask, output_hidden_states=True)
        frames = out.hidden_states[1]
        frame_mask = model.backbone._get_feature_vector_attention_mask(frames.shape[1], mask)
        pooled = (frames * frame_mask[..., None]).sum(1) / frame_mask.sum(1, keepdim=True)
        assert torch.allclose(model.head(pooled), out.logits, atol=1e-6)


def test_frozen_backbone_runs_without_gradients():
    model = make_model("wav2vec2", "weighted_sum", "none")
    assert not model.backbone_needs_grad
    assert make_model("wav2vec2", "weighted_sum", "lora").backbone_needs_grad
    assert make_model("wav2vec2", "weighted_sum", freeze_backbone=False).backbone_needs_grad
    full = make_model("wav2vec2", "weighted_sum", freeze_backbone=False)
    trainable = {n for n, p in full.named_parameters() if p.requires_grad}
    assert not any(n.startswith("backbone.feature_extractor") for n in trainable)
    assert any(n.startswith("backbone.encoder") for n in trainable)


@pytest.mark.parametrize("kind", ["wavlm", "wav2vec2"])
def test_padding_does_not_change_a_clip_prediction(kind):
    # Backbones pretrained with attention masks (feat_extract_norm="layer", the "large" style).
    layer_norm = dict(feat_extract_norm="layer", do_stable_layer_norm=True)
    model = make_model(kind, "weighted_sum", backbone_options=layer_norm, pooling="attentive_stats")
    model.eval()
    clip = torch.randn(1, 3000)
    padded = torch.cat([clip, torch.zeros(1, 1000)], dim=1)
    mask = torch.cat([torch.ones(1, 3000), torch.zeros(1, 1000)], dim=1).long()
    with torch.no_grad():
        alone = model(clip, attention_mask=torch.ones(1, 3000, dtype=torch.long)).logits
        with_pad = model(padded, attention_mask=mask).logits
    assert torch.allclose(alone, with_pad, atol=1e-4)


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_save_load_identical_logits(tmp_path, adapter):
    model = make_model("wav2vec2", "weighted_sum", adapter)
    _nudge_adapters(model)
    model.eval()
    model.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)
    assert {"modeling_hub_emo.py", "configuration_hub_emo.py", "adapters.py"} <= files
    from transformers import AutoModelForAudioClassification

    loaded = AutoModelForAudioClassification.from_pretrained(tmp_path)
    assert isinstance(loaded, EmoForAudioClassification)
    loaded.eval()
    values, mask, _ = batch()
    with torch.no_grad():
        assert torch.equal(model(values, attention_mask=mask).logits, loaded(values, attention_mask=mask).logits)
    assert {n for n, p in loaded.named_parameters() if p.requires_grad} == expected_trainable(loaded)


def _nudge_adapters(model):
    """Give adapters non-identity weights, as training would, so tests can see them."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name or name.startswith("bottleneck") or name.startswith("layer_weights"):
                p.add_(0.05 * torch.randn_like(p))


def test_remote_code_loads_in_a_fresh_process_without_hub_emo(tmp_path):
    model = make_model(
        "wavlm", 2, "bottleneck", pooling="attentive_stats", bottleneck_placement=["attention", "feed_forward"]
    )
    _nudge_adapters(model)
    model.eval()
    model.save_pretrained(tmp_path / "model")
    values, mask, _ = batch(n=2)
    torch.save({"values": values, "mask": mask}, tmp_path / "inputs.pt")
    with torch.no_grad():
        expected = model(values, attention_mask=mask).logits
    script = f"""
import sys, torch
sys.path = [p for p in sys.path if 'hub_emo' not in p and p not in ('', '.')]
sys.meta_path = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]
import importlib.util
assert importlib.util.find_spec('hub_emo') is None, 'hub_emo must not be importable here'
from transformers import AutoModelForAudioClassification
m = AutoModelForAudioClassification.from_pretrained({str(tmp_path / 'model')!r}, trust_remote_code=True).eval()
x = torch.load({str(tmp_path / 'inputs.pt')!r})
with torch.no_grad():
    torch.save(m(x['values'], attention_mask=x['mask']).logits, {str(tmp_path / 'out.pt')!r})
print(type(m).__module__)
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # An isolated interpreter: -I ignores PYTHONPATH and the user site; the editable
    # install's import hook is removed above, so hub_emo cannot be imported at all.
    result = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "hub_emo" not in result.stdout.split(".")[0]
    assert "transformers_modules" in result.stdout
    got = torch.load(tmp_path / "out.pt")
    assert torch.allclose(got, expected, atol=1e-6)


def test_lora_merge_keeps_logits_in_float64():
    model = make_model("wav2vec2", "weighted_sum", "lora").double()
    _nudge_adapters(model)
    model.eval()
    values, mask, _ = batch()
    values = values.double()
    with torch.no_grad():
        before = model(values, attention_mask=mask).logits
        model.merge_and_unload()
        after = model(values, attention_mask=mask).logits
    assert model.config.adapter == "none"
    assert not any("lora_" in n for n, _ in model.named_parameters())
    assert (before - after).abs().max().item() <= 1e-9


def test_adapter_only_export_loads_with_peft(tmp_path):
    from peft import PeftModel

    backbone_dir = tmp_path / "backbone"
    from transformers import AutoModel

    torch.manual_seed(3)
    AutoModel.from_config(tiny_backbone_config("hubert", layerdrop=0.0)).save_pretrained(backbone_dir)
    model = EmoForAudioClassification.from_backbone(backbone_dir, LABELS, adapter="lora", head_hidden_sizes=[16])
    # a local backbone is recorded by its folder's name and weight hash, never its path
    assert model.config.backbone_name_or_path.startswith("backbone@sha256:")
    assert str(tmp_path) not in model.config.to_json_string()
    _nudge_adapters(model)
    model.eval()
    model.save_adapter(tmp_path / "adapter")
    adapter_files = os.listdir(tmp_path / "adapter")
    assert "adapter_model.safetensors" in adapter_files and "adapter_config.json" in adapter_files
    adapter_size = os.path.getsize(tmp_path / "adapter" / "adapter_model.safetensors")
    model.save_pretrained(tmp_path / "full")
    assert adapter_size < 0.5 * os.path.getsize(tmp_path / "full" / "model.safetensors")

    base = EmoForAudioClassification.from_backbone(backbone_dir, LABELS, adapter="none", head_hidden_sizes=[16])
    restored = PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    values, mask, _ = batch()
    with torch.no_grad():
        assert torch.allclose(model(values, attention_mask=mask).logits, restored(values, attention_mask=mask).logits, atol=1e-6)


def test_from_backbone_keeps_pretrained_weights(tmp_path):
    from transformers import AutoModel

    torch.manual_seed(5)
    backbone = AutoModel.from_config(tiny_backbone_config("wav2vec2"))
    backbone.save_pretrained(tmp_path)
    for adapter in ADAPTERS:
        model = EmoForAudioClassification.from_backbone(tmp_path, LABELS, adapter=adapter)
        weight = model.backbone.encoder.layers[0].attention.q_proj
        weight = getattr(weight, "base_layer", weight).weight
        assert torch.equal(weight, backbone.encoder.layers[0].attention.q_proj.weight)
        assert model.config.id2label == dict(enumerate(LABELS))
    assert backbone.config.layerdrop == 0.1  # the caller's config is not mutated


@pytest.mark.parametrize(
    "options,message",
    [
        ({"aggregation": "median"}, "unknown aggregation"),
        ({"aggregation": 7}, "out of range"),
        ({"aggregation": -4}, "out of range"),
        ({"adapter": "prefix"}, "unknown adapter"),
        ({"pooling": "max"}, "unknown pooling"),
        ({"adapter": "bottleneck", "bottleneck_placement": ["output"]}, "bottleneck_placement"),
        ({"class_weights": [1.0, 2.0]}, "class_weights"),
    ],
)
def test_bad_config_is_a_clear_error(options, message):
    with pytest.raises(ValueError, match=message):
        EmoConfig(backbone_config=tiny_backbone_config(), num_labels=4, **options)


def test_backbones_that_cannot_be_aggregated_are_refused():
    adapter_backbone = tiny_backbone_config("wav2vec2", add_adapter=True, output_hidden_size=16)
    with pytest.raises(ValueError, match="cannot be\\s+aggregated"):
        EmoConfig(backbone_config=adapter_backbone)
    from transformers import BertConfig

    with pytest.raises(ValueError, match="hidden states"):
        EmoConfig(backbone_config={"model_type": "clip"})
    assert EmoConfig(backbone_config=adapter_backbone, aggregation="last").aggregation == "last"
    del BertConfig


def test_wavlm_lora_on_bypassed_projections_is_refused():
    with pytest.raises(ValueError, match="would train nothing"):
        EmoConfig(backbone_config=tiny_backbone_config("wavlm"), adapter="lora", lora_target_modules=["q_proj"])
    assert EmoConfig(backbone_config=tiny_backbone_config("wavlm")).lora_targets == ["intermediate_dense", "output_dense"]


def test_default_config_is_wav2vec2_base_shaped():
    config = EmoConfig()
    assert config.backbone_config.model_type == "wav2vec2"
    assert (config.backbone_config.hidden_size, config.num_hidden_states) == (768, 13)
    assert (config.aggregation, config.adapter, config.pooling) == ("weighted_sum", "none", "mean")
    again = EmoConfig.from_dict(config.to_dict())
    assert again.to_dict()["backbone_config"] == config.to_dict()["backbone_config"]


def test_registration_with_auto_classes():
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModelForAudioClassification

    assert AutoConfig.for_model("hub_emo").__class__ is EmoConfig
    config = EmoConfig(backbone_config=tiny_backbone_config(), num_labels=3)
    assert isinstance(AutoModelForAudioClassification.from_config(config), EmoForAudioClassification)
    assert hub_emo.__version__
    del AutoFeatureExtractor


def test_a_frozen_backbone_stays_in_eval_mode_while_training():
    frozen = make_model("wav2vec2", "weighted_sum", "none").train()
    assert frozen.training and frozen.head.training and not frozen.backbone.training
    values, mask, _ = batch()
    pooled = []  # no dropout or SpecAugment: the head sees identical features on every call
    hook = frozen.head.register_forward_hook(lambda m, i, o: pooled.append(i[0]))
    frozen(values, attention_mask=mask)
    frozen(values, attention_mask=mask)
    hook.remove()
    assert torch.equal(pooled[0], pooled[1])
    adapted = make_model("wav2vec2", "weighted_sum", "lora").train()
    assert adapted.backbone.training


def test_import_hub_emo_is_light_and_registration_is_explicit():
    code = (
        "import sys, hub_emo; light = 'torch' not in sys.modules and 'transformers' not in sys.modules; "
        "from transformers import AutoConfig; from transformers.models.auto.configuration_auto import CONFIG_MAPPING; "
        "known = 'hub_emo' in CONFIG_MAPPING; hub_emo.register(); "
        "print(light, known, type(AutoConfig.for_model('hub_emo')).__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["True", "False", "EmoConfig"]
    direct = "from hub_emo.modeling import EmoConfig; from transformers import AutoConfig; print(type(AutoConfig.for_model('hub_emo')).__name__)"
    result = subprocess.run([sys.executable, "-c", direct], capture_output=True, text=True)
    assert result.stdout.strip() == "EmoConfig", result.stderr[-2000:]


@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
@pytest.mark.parametrize("stable", [False, True], ids=["post-norm", "pre-norm"])
def test_hidden_state_0_is_the_first_layers_input_as_documented(kind, stable):
    """docs/training.md "Hidden states": state 0 = [LayerNorm](p + pos_conv(p)), p the projected
    CNN features (LayerNorm only in post-norm models); not the CNN output."""
    from transformers import AutoModel

    torch.manual_seed(0)
    options = dict(layerdrop=0.0, do_stable_layer_norm=stable, feat_extract_norm="layer" if stable else "group")
    backbone = AutoModel.from_config(tiny_backbone_config(kind, **options)).eval()
    x = torch.randn(1, 4000)
    with torch.no_grad():
        states = backbone(x, output_hidden_states=True).hidden_states
        cnn = backbone.feature_extractor(x).transpose(1, 2)
        p = backbone.feature_projection(cnn)
        p = p[0] if isinstance(p, tuple) else p
        expected = p + backbone.encoder.pos_conv_embed(p)
        if not stable:
            expected = backbone.encoder.layer_norm(expected)
    assert len(states) == backbone.config.num_hidden_layers + 1
    torch.testing.assert_close(states[0], expected, rtol=0, atol=1e-6)
    assert not torch.allclose(states[0], p, atol=1e-3)  # the positional conv is in it
