"""EmoForAudioClassification behaves as a stock transformers model: initialisation and loading,
output flags, attention implementations, gradient checkpointing, base model and compile.

transformers' own common tests run against the model through
`scripts/run_transformers_model_tests.py` (docs/conformance.md); these are the same properties
as tests of the suite.
"""

from __future__ import annotations

import pytest
import torch
from tiny import tiny_backbone_config
from transformers import AutoModel

from hub_emo import EmoConfig, EmoForAudioClassification


def make_config(kind="wav2vec2", **options) -> EmoConfig:
    backbone = tiny_backbone_config(kind, layerdrop=0.0)
    return EmoConfig(backbone_config=backbone, num_labels=3, head_hidden_sizes=[8], **options)


def audio(n=3, samples=4000, seed=0):
    return torch.randn(n, samples, generator=torch.Generator().manual_seed(seed))


def test_loading_a_plain_backbone_checkpoint_keeps_it_and_starts_adapters_as_no_ops(tmp_path):
    """from_pretrained on a bare backbone folder: its weights land under `backbone` (base_model_prefix),
    and every weight it lacks is initialised as in __init__: LoRA's B and the bottleneck's up-projection
    at zero, the standardiser's running statistics at mean 0 / variance 1."""
    torch.manual_seed(0)
    plain = AutoModel.from_config(tiny_backbone_config(layerdrop=0.0)).eval()
    plain.save_pretrained(tmp_path)
    values = audio()
    with torch.no_grad():
        expected = plain(values, output_hidden_states=True).hidden_states
    for adapter in ("lora", "bottleneck"):
        config = make_config(adapter=adapter, aggregation="weighted_sum")
        model, info = EmoForAudioClassification.from_pretrained(tmp_path, config=config, output_loading_info=True)
        assert any("lora_B" in k or ".up." in k for k in info["missing_keys"]), adapter
        assert not info["unexpected_keys"]
        with torch.no_grad():
            got = model.eval()(values, output_hidden_states=True).hidden_states
        for a, b in zip(expected, got, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        standardiser = model.head.layers[0]
        assert torch.equal(standardiser.running_mean, torch.zeros_like(standardiser.running_mean))
        assert torch.equal(standardiser.running_var, torch.ones_like(standardiser.running_var))


def test_meta_device_init_gives_the_same_buffers_and_no_op_adapters():
    for adapter in ("none", "lora", "bottleneck"):
        config = make_config(adapter=adapter)
        with torch.device("meta"):
            model = EmoForAudioClassification(config)
        model.to_empty(device="cpu")
        model.init_weights()
        reference = EmoForAudioClassification(config)
        for (name, got), (_, want) in zip(model.named_buffers(), reference.named_buffers(), strict=True):
            assert torch.equal(got, want), (adapter, name)
        for name, param in model.named_parameters():
            if "lora_B" in name or ".up." in name:
                assert not param.detach().any(), name
        # (The backbone's weight-normed positional convolution is left to transformers' own
        # init, which does not cover it on the meta device: only hub_emo's modules are checked.)
        for name, tensor in [*model.head.named_buffers(), *model.head.named_parameters()]:
            assert torch.isfinite(tensor).all(), name


def test_output_loading_info_returns_the_model_and_the_report(tmp_path):
    model = EmoForAudioClassification(make_config(adapter="lora", aggregation="last"))
    model.save_pretrained(tmp_path)
    loaded, info = EmoForAudioClassification.from_pretrained(tmp_path, output_loading_info=True)
    assert isinstance(loaded, EmoForAudioClassification)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    # Freezing is applied to the returned model, as without the report.
    assert {n for n, p in loaded.named_parameters() if p.requires_grad} == {
        n for n, p in model.named_parameters() if p.requires_grad
    }


def test_a_lora_model_loads_a_checkpoint_saved_without_lora_and_its_own_save(tmp_path):
    torch.manual_seed(0)
    plain = EmoForAudioClassification(make_config(aggregation="last")).eval()
    plain.save_pretrained(tmp_path / "plain")
    lora = EmoForAudioClassification.from_pretrained(tmp_path / "plain", adapter="lora").eval()
    values = audio()
    with torch.no_grad():
        torch.testing.assert_close(lora(values).logits, plain(values).logits, rtol=0, atol=1e-6)
        for name, param in lora.named_parameters():
            if "lora_B" in name:
                param.normal_()  # a trained adapter: its weights must survive the round trip
        trained = lora(values).logits
    lora.save_pretrained(tmp_path / "lora")
    again, info = EmoForAudioClassification.from_pretrained(tmp_path / "lora", output_loading_info=True)
    assert again.config.adapter == "lora"
    assert not info["missing_keys"] and not info["unexpected_keys"]
    with torch.no_grad():
        torch.testing.assert_close(again.eval()(values).logits, trained, rtol=0, atol=1e-6)


def padded_batch(samples=4000):
    """Three clips, right-padded (1 = real sample), the first full length."""
    values = audio(3, samples)
    mask = torch.ones(3, samples, dtype=torch.long)
    mask[1, samples * 3 // 4 :] = 0
    mask[2, samples // 2 :] = 0
    return values * mask, mask


def test_output_flags_default_to_the_config_as_in_stock_models():
    config = make_config(aggregation="last")
    model = EmoForAudioClassification(config).eval()
    values, mask = padded_batch()
    with torch.no_grad():
        plain = model(values, attention_mask=mask)
        assert plain.hidden_states is None and plain.attentions is None
        model.config.output_hidden_states = True
        out = model(values, attention_mask=mask)
        assert len(out.hidden_states) == config.num_hidden_states
        assert model(values, attention_mask=mask, output_hidden_states=False).hidden_states is None
        model.config.return_dict = False
        as_tuple = model(values, attention_mask=mask)
        assert isinstance(as_tuple, tuple)
        torch.testing.assert_close(as_tuple[0], plain.logits)
        assert len(as_tuple[1]) == config.num_hidden_states
        assert model(values, attention_mask=mask, return_dict=True).logits is not None


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_attentions_are_returned_per_layer_when_asked(norm):
    backbone = tiny_backbone_config(layerdrop=0.0, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer")
    config = EmoConfig(backbone_config=backbone, num_labels=3, head_hidden_sizes=[8], aggregation="last",
                       attn_implementation="eager")
    model = EmoForAudioClassification(config).eval()
    values, mask = padded_batch()
    frames = int(model.backbone._get_feat_extract_output_lengths(values.shape[1]))
    heads = backbone.num_attention_heads
    with torch.no_grad():
        out = model(values, attention_mask=mask, output_attentions=True)
        assert len(out.attentions) == backbone.num_hidden_layers
        for layer in out.attentions:
            assert layer.shape == (3, heads, frames, frames)
            torch.testing.assert_close(layer[0].sum(-1), torch.ones(heads, frames))  # full clip: rows sum to 1
        model.config.output_attentions = True
        by_config = model(values, attention_mask=mask)
        assert len(by_config.attentions) == backbone.num_hidden_layers
        torch.testing.assert_close(by_config.logits, out.logits)
        tup = model(values, attention_mask=mask, output_hidden_states=True, return_dict=False)
        assert len(tup) == 3 and len(tup[2]) == backbone.num_hidden_layers  # logits, hidden_states, attentions


def test_attention_implementation_is_selectable_and_sdpa_equals_eager(tmp_path):
    torch.manual_seed(0)
    EmoForAudioClassification(make_config(aggregation="weighted_sum", adapter="lora")).save_pretrained(tmp_path)
    values, mask = padded_batch()
    logits = {}
    for implementation in ("eager", "sdpa"):
        model = EmoForAudioClassification.from_pretrained(tmp_path, attn_implementation=implementation).eval()
        assert model.backbone.config._attn_implementation == implementation
        with torch.no_grad():
            logits[implementation] = model(values, attention_mask=mask).logits
    torch.testing.assert_close(logits["sdpa"], logits["eager"], rtol=1e-5, atol=1e-5)
    model.set_attn_implementation("eager")
    assert model.backbone.config._attn_implementation == "eager"
    with torch.no_grad():
        torch.testing.assert_close(model(values, attention_mask=mask).logits, logits["eager"], rtol=1e-5, atol=1e-5)


def test_a_backbone_without_sdpa_refuses_it_by_name():
    with pytest.raises(ValueError, match="WavLM"):
        EmoForAudioClassification._from_config(make_config("wavlm"), attn_implementation="sdpa")
    # Unasked, sdpa is tried and the backbone falls back to eager, as stock models do.
    assert EmoForAudioClassification(make_config("wavlm")).backbone.config._attn_implementation == "eager"


QUIET = dict(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
             apply_spec_augment=False, layerdrop=0.0)


def adapter_gradients(model, values, labels) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    model(values, labels=labels).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("adapter", ["lora", "bottleneck"])
def test_adapters_get_their_gradients_under_gradient_checkpointing(adapter):
    """Reentrant checkpointing gives a layer's weights gradients only if the layer's input requires grad;
    with the whole backbone frozen nothing upstream does, so the model makes it (the audio analogue of
    enable_input_require_grads). Gradients then equal those without checkpointing."""
    torch.manual_seed(0)
    config = EmoConfig(backbone_config=tiny_backbone_config(**QUIET), adapter=adapter, aggregation="last",
                       lora_dropout=0.0, head_dropout=0.0, num_labels=2, head_hidden_sizes=[8])
    model = EmoForAudioClassification(config).train()
    with torch.no_grad():  # trained adapters, so that every adapter weight has a gradient
        for name, param in model.named_parameters():
            if "lora_B" in name or ".up." in name:
                param.normal_(std=0.1)
    values, labels = audio(4), torch.tensor([0, 1, 0, 1])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    adapters = {n for n in trainable if "lora_" in n or n.startswith("bottleneck.")}
    assert adapters
    reference = adapter_gradients(model, values, labels)
    assert set(reference) == trainable
    for reentrant in (True, False):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": reentrant})
        assert model.is_activation_checkpointing
        grads = adapter_gradients(model, values, labels)
        assert set(grads) == trainable, (reentrant, adapters - set(grads))
        for name in trainable:
            torch.testing.assert_close(grads[name], reference[name], rtol=1e-5, atol=1e-6)
        model.activation_checkpointing_disable()
    with torch.no_grad():  # inference under checkpointing records nothing and needs no input grad
        model.activation_checkpointing_enable()
        assert not model(values).logits.requires_grad


def test_base_model_is_the_backbone_and_layers_are_not_split():
    for kind in ("wav2vec2", "hubert", "wavlm", "data2vec-audio"):
        model = EmoForAudioClassification(make_config(kind, adapter="bottleneck"))
        assert model.base_model is model.backbone
        layer = type(model.backbone.encoder.layers[0]).__name__
        assert layer in model._no_split_modules
        assert set(model.backbone._no_split_modules or ()) <= set(model._no_split_modules)


@pytest.mark.parametrize("options", [{"adapter": "lora"}, {"adapter": "bottleneck"}, {"freeze_backbone": False}])
def test_layerdrop_is_off_wherever_layers_train_so_ddp_sees_every_weight_used(options):
    """DDP without find_unused_parameters stops when a trainable weight gets no gradient in a step:
    a dropped layer's adapter or weights would. Every trainable weight must get one, step after step."""
    config = EmoConfig(backbone_config=tiny_backbone_config(layerdrop=0.9), aggregation="last", num_labels=2,
                       head_hidden_sizes=[8], **options)
    assert config.backbone_config.layerdrop == 0.0
    model = EmoForAudioClassification(config).train()
    values, labels = audio(2, 2000), torch.tensor([0, 1])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for _ in range(5):
        assert set(adapter_gradients(model, values, labels)) == trainable


@pytest.mark.slow
def test_eval_forward_compiles_with_fullgraph_and_matches_eager():
    """torch.compile(fullgraph=True) on the eval forward with a padding mask (layer-norm backbone: the
    mask reaches it) and without one (group-norm backbone). One eager call comes first: transformers
    installs its hidden-state capturing hooks on the first call, under a lock dynamo cannot trace.
    (A group-norm backbone with a padding mask runs its first GroupNorm per clip, a data-dependent
    step that fullgraph refuses: see docs/conformance.md.)"""
    cases = (("layer", True), ("group", False))
    for norm, with_mask in cases:
        backbone = tiny_backbone_config(layerdrop=0.0, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer")
        model = EmoForAudioClassification(EmoConfig(backbone_config=backbone, num_labels=3, head_hidden_sizes=[8]))
        model.eval()
        values, mask = padded_batch()
        inputs = {"attention_mask": mask} if with_mask else {}
        with torch.no_grad():
            eager = model(values, **inputs).logits
            compiled = torch.compile(model, fullgraph=True)(values, **inputs).logits
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
        torch._dynamo.reset()


def test_from_pretrained_on_a_bare_backbone_folder_builds_a_classifier_on_it(tmp_path):
    torch.manual_seed(0)
    plain = AutoModel.from_config(tiny_backbone_config("hubert", layerdrop=0.0)).eval()
    plain.save_pretrained(tmp_path)
    model, info = EmoForAudioClassification.from_pretrained(tmp_path, adapter="lora", output_loading_info=True)
    assert model.config.backbone_config.model_type == "hubert" and model.config.adapter == "lora"
    assert not info["unexpected_keys"]
    assert all(k.startswith(("head.", "layer_weights.")) or "lora_" in k for k in info["missing_keys"])
    values = audio()
    with torch.no_grad():
        torch.testing.assert_close(model.eval().backbone(values).last_hidden_state,
                                   plain(values).last_hidden_state, rtol=0, atol=1e-6)
