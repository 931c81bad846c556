"""A padded batch gives each clip the output it gets alone, for every backbone family.

The published shapes (tests/fixtures/backbones: conv stacks, norms, positional convolutions
and preprocessors as released, depth and width reduced) cover wav2vec2-base, HuBERT, WavLM,
data2vec-audio and MERT (as HuBERT; 330M is group-norm *and* pre-norm); a tiny
wav2vec2-large-style config covers layer-norm feature encoders.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from real_shapes import REPO_IDS, TINY, published, reduced
from tiny import tiny_backbone_config
from transformers import AutoModel, Wav2Vec2FeatureExtractor

from hub_emo.modeling import EmoForAudioClassification
from hub_emo.modeling.backbones import config_from_dict
from hub_emo.modeling.batched_forward import encode, length_batches, sample_lengths

LAYER_NORM = "wav2vec2 layer-norm (large style)"
FAMILIES = (*REPO_IDS, LAYER_NORM)


def _backbone(family: str):
    """(backbone config, its preprocessor asked for an attention mask)."""
    if family == LAYER_NORM:
        config = tiny_backbone_config("wav2vec2", feat_extract_norm="layer", do_stable_layer_norm=True)
        preprocessor = {"sampling_rate": 16000, "do_normalize": True}
    else:
        options, preprocessor = published(family)
        config = config_from_dict(reduced(options, TINY))
        preprocessor = {k: v for k, v in preprocessor.items() if k != "feature_extractor_type"}
    config.layerdrop = 0.0
    return config, Wav2Vec2FeatureExtractor(**{**preprocessor, "return_attention_mask": True})


def _clips(rate: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=0.1, size=int(s * rate)).astype(np.float32) for s in (0.21, 0.5, 0.33, 0.48, 0.3)]


@pytest.mark.parametrize("family", FAMILIES)
def test_padded_batch_logits_equal_each_clip_alone(family):
    """`model(**feature_extractor(clips, padding=True))` scores each clip as if alone."""
    config, extractor = _backbone(family)
    torch.manual_seed(0)
    model = EmoForAudioClassification.from_backbone(AutoModel.from_config(config), ["a", "b", "c"],
                                                    pooling="attentive_stats").eval()
    clips = _clips(extractor.sampling_rate)
    with torch.no_grad():
        batched = model(**extractor(clips, sampling_rate=extractor.sampling_rate, padding=True,
                                    return_tensors="pt")).logits
        alone = torch.cat([model(**extractor([c], sampling_rate=extractor.sampling_rate,
                                             return_tensors="pt")).logits for c in clips])
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-4)
    assert (alone[0] - alone[1]).abs().max() > 1e-3  # the clips are told apart: the check has teeth


@pytest.mark.parametrize("family", FAMILIES)
def test_every_hidden_state_of_every_real_frame_equals_the_clip_alone(family):
    config, _ = _backbone(family)
    torch.manual_seed(0)
    backbone = AutoModel.from_config(config).eval()
    clips = [torch.from_numpy(c) for c in _clips(getattr(config, "sampling_rate", 16000), seed=1)]
    values = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
    mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(c), dtype=torch.long) for c in clips], batch_first=True)
    with torch.no_grad():
        out, frame_mask = encode(backbone, values, mask, output_hidden_states=True)
        stock = backbone(values, attention_mask=mask, output_hidden_states=True).last_hidden_state
        worst_stock = 0.0
        for row, clip in enumerate(clips):
            alone = backbone(clip[None], output_hidden_states=True)
            frames = alone.last_hidden_state.shape[1]
            assert int(frame_mask[row].sum()) == frames
            for mine, own in zip((*out.hidden_states, out.last_hidden_state),
                                 (*alone.hidden_states, alone.last_hidden_state)):
                torch.testing.assert_close(mine[row, :frames], own[0], rtol=0, atol=1e-4)
            worst_stock = max(worst_stock, (stock[row, :frames] - alone.last_hidden_state[0]).abs().max().item())
    needs_work = getattr(config, "feat_extract_norm", "layer") == "group" or config.model_type == "data2vec-audio"
    assert (worst_stock > 1e-3) == needs_work  # the stock masked forward is off exactly where we act


def test_unpadded_batch_and_no_mask_run_as_given():
    config, _ = _backbone("facebook/wav2vec2-base")
    backbone = AutoModel.from_config(config).eval()
    values = torch.randn(2, 4000)
    with torch.no_grad():
        plain = backbone(values).last_hidden_state
        for mask in (None, torch.ones(2, 4000, dtype=torch.long)):
            out, frame_mask = encode(backbone, values, mask)
            assert frame_mask is None and torch.equal(out.last_hidden_state, plain)


def test_left_padding_is_refused():
    mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    with pytest.raises(ValueError, match="padding on the right"):
        sample_lengths(mask)


def test_length_batches_sort_longest_first_and_keep_every_index_once():
    lengths = [5, 90, 7, 91, 50, 52, 6, 89]
    batches = length_batches(lengths, 3)
    assert [[lengths[i] for i in b] for b in batches] == [[91, 90, 89], [52, 50, 7], [6, 5]]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert length_batches([], 4) == []


def test_another_thread_meanwhile_runs_the_stock_layers():
    """The per-clip first convolution is this call's alone: a thread that runs the same backbone
    while a padded batch is inside it gets the stock result."""
    import threading

    config, _ = _backbone("facebook/wav2vec2-base")
    backbone = AutoModel.from_config(config).eval()
    other = torch.randn(1, 3000)
    with torch.no_grad():
        expected = backbone(other).last_hidden_state
    seen = []

    def meanwhile(_module, _args):
        if threading.current_thread() is not threading.main_thread():
            return
        thread = threading.Thread(target=lambda: seen.append(backbone(other).last_hidden_state))
        thread.start()
        thread.join()

    handle = backbone.encoder.register_forward_pre_hook(meanwhile)
    values, mask = torch.randn(2, 4000), torch.ones(2, 4000, dtype=torch.long)
    mask[0, 2500:] = 0
    try:
        with torch.no_grad():
            encode(backbone, values, mask)
    finally:
        handle.remove()
    assert len(seen) == 1
    torch.testing.assert_close(seen[0], expected, rtol=0, atol=1e-6)
