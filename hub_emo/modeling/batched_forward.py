"""Padded batches in which every clip gets the output it gets alone, and the per-layer pooling
and length grouping that the model, extraction and evaluation share.

Copied as remote code beside ``modeling_hub_emo.py``: imports only torch and transformers.

Why a padded batch is exact here. In every wav2vec2-family encoder a valid output frame of
the convolutional feature encoder reads only valid samples (the frame counts are the ones
``_get_feat_extract_output_lengths`` gives), the projection works frame by frame, and the
transformer zeroes padded frames before its positional convolution and masks them out of
attention. What remains is the normalisation of a group-norm encoder
(``feat_extract_norm="group"``: wav2vec2-base, HuBERT-base, WavLM-base, MERT-95M): only its
first convolution carries a GroupNorm, whose statistics run over time, so that one layer
runs clip by clip on each clip's own samples. Layer-norm encoders normalise per frame. And
data2vec-audio stacks several positional convolutions: their output at padded frames would
reach real frames through the next one, so padded frames are zeroed between them, as the
convolution's own zero padding is for a clip alone.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import torch


def sample_lengths(attention_mask: torch.Tensor) -> torch.Tensor:
    """Each row's count of real samples; the padding must be on the right, as feature
    extractors put it (a left-padded mask would shift every frame)."""
    lengths = attention_mask.long().sum(-1)
    positions = torch.arange(attention_mask.shape[-1], device=attention_mask.device)
    if not torch.equal(attention_mask.bool(), positions < lengths.unsqueeze(-1)):
        raise ValueError("attention_mask must mark a prefix of each row (padding on the right)")
    return lengths


def is_group_norm(backbone) -> bool:
    return getattr(backbone.config, "feat_extract_norm", None) == "group"


def _first_conv_per_clip(backbone, lengths: torch.Tensor) -> list:
    """The feature encoder's first layer (convolution, GroupNorm, activation) run on each clip's
    own samples, its padded output frames zero: a (module, forward) replacement."""
    layer = backbone.feature_extractor.conv_layers[0]
    conv = layer.conv
    kernel, stride = conv.kernel_size[0], conv.stride[0]
    samples = lengths.tolist()
    counts = [max(0, (int(n) - kernel) // stride + 1) for n in samples]

    def forward(hidden_states: torch.Tensor) -> torch.Tensor:
        frames = (hidden_states.shape[-1] - kernel) // stride + 1
        out = hidden_states.new_zeros(hidden_states.shape[0], conv.out_channels, frames)
        for row, (length, count) in enumerate(zip(samples, counts)):
            if count:
                out[row, :, :count] = type(layer).forward(layer, hidden_states[row : row + 1, :, :length])[0]
        return out

    return [(layer, forward)]


def _stacked_positional_convs(backbone) -> list:
    """data2vec-audio's stack of positional convolutions (padding leaks through it); [] for one."""
    layers = getattr(getattr(getattr(backbone, "encoder", None), "pos_conv_embed", None), "layers", None)
    return list(layers) if layers is not None and len(layers) >= 2 else []


def _positional_convs_masked(backbone, frame_mask: torch.Tensor) -> list:
    """Stacked positional convolutions (data2vec-audio) whose outputs are zero at padded frames:
    (module, forward) replacements, none for a single convolution."""
    layers = _stacked_positional_convs(backbone)
    if not layers:
        return []
    keep = frame_mask.unsqueeze(1)  # the layers work on (batch, channels, frames)

    def masked(layer):
        return lambda hidden_states: type(layer).forward(layer, hidden_states) * keep.to(hidden_states.dtype)

    return [(layer, masked(layer)) for layer in layers]


_PATCHING = threading.Lock()


@contextmanager
def _patched(replacements: list):
    """While active, each module runs its replacement forward in this thread only: another
    thread's call meanwhile runs the stock forward, and another padded batch waits."""
    owner = threading.get_ident()

    def dispatch(module, forward):
        def call(*args):
            return forward(*args) if threading.get_ident() == owner else type(module).forward(module, *args)
        return call

    with _PATCHING:
        for module, forward in replacements:
            module.forward = dispatch(module, forward)
        try:
            yield
        finally:
            for module, _ in replacements:
                del module.forward


def frame_mask_of(backbone, attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, frames) bool: the encoder frames each clip really has."""
    frames = int(backbone._get_feat_extract_output_lengths(torch.tensor(attention_mask.shape[-1])))
    return backbone._get_feature_vector_attention_mask(frames, attention_mask).bool()


def encode(backbone, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None,
           output_hidden_states: bool = False, output_attentions: bool = False):
    """(backbone output, frame mask or None) for a right-padded batch: every clip's real frames
    as when it runs alone. Without a mask the batch is taken as it is (no padding)."""
    flags = dict(output_hidden_states=output_hidden_states, output_attentions=output_attentions, return_dict=True)
    if attention_mask is None:
        return backbone(input_values, **flags), None
    if not is_group_norm(backbone) and not _stacked_positional_convs(backbone):
        # The stock masked forward already gives each clip its own frames (padded frames are zeroed
        # before the one positional convolution, attention is masked); no data-dependent step, so
        # torch.compile(fullgraph=True) traces it.
        attention_mask = attention_mask.to(input_values.device, non_blocking=True)
        out = backbone(input_values, attention_mask=attention_mask, **flags)
        if not hasattr(backbone, "_get_feature_vector_attention_mask"):  # not a transformers audio encoder
            if not bool(attention_mask.all()):
                raise ValueError(f"{type(backbone).__name__} cannot map a padding mask to its frames: "
                                 "give its clips unpadded (batch size 1)")
            return out, None
        return out, frame_mask_of(backbone, attention_mask)
    lengths = sample_lengths(attention_mask.cpu())  # no device sync when the caller keeps the mask on the host
    if int(lengths.min()) == input_values.shape[-1]:  # nothing padded
        return backbone(input_values, **flags), None
    attention_mask = attention_mask.to(input_values.device, non_blocking=True)
    frame_mask = frame_mask_of(backbone, attention_mask)
    replacements = _positional_convs_masked(backbone, frame_mask)
    if is_group_norm(backbone):
        replacements += _first_conv_per_clip(backbone, lengths)
    with _patched(replacements):
        out = backbone(input_values, attention_mask=attention_mask, **flags)
    return out, frame_mask


def masked_mean(frames: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the frames (dim 1) the mask marks as real (all frames without a mask)."""
    if mask is None:
        return frames.mean(dim=1)
    mask = mask.to(frames.dtype).unsqueeze(-1)
    return (frames * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def pool_layers(hidden_states, last: torch.Tensor, frame_mask: torch.Tensor | None, dtype=None) -> torch.Tensor:
    """(batch, hidden states + 1, hidden): the masked mean of every hidden state, then of the
    backbone's final output; one layer at a time (each in ``dtype`` when given, e.g. float32
    sums of a bfloat16 model's states), so no stack of every state is made."""
    return torch.stack([masked_mean(h if dtype is None else h.to(dtype), frame_mask) for h in (*hidden_states, last)],
                       dim=1)


def length_batches(lengths, batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of at most ``batch_size`` near-equal lengths: sorted
    longest first (an out-of-memory batch shows at once), then cut in order."""
    order = sorted(range(len(lengths)), key=lambda i: (-int(lengths[i]), i))
    return [order[start : start + batch_size] for start in range(0, len(order), max(1, int(batch_size)))]
