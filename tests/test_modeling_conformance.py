"""EmoForAudioClassification behaves as a stock transformers model: initialisation and loading,
output flags, attention implementations, gradient checkpointing, base model and compile.

transformers' own common tests run against the model through
`scripts/run_transformers_model_tests.py` (docs/conformance.md); these are the same properties
as tests of the suite.
"""

from __future__ import annotations

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
