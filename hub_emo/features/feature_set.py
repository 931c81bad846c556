"""Hidden states of one backbone over one dataset, as the analyses read them: pooled per
layer and clip, and frame-level embeddings for FAD. Both come from the per-clip records of
`extract` (whole clips), so probing, FAD and training share one extraction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hub_emo.distributed import ranks

from .backbone import load_backbone
from .extract import extract

@dataclass
class FeatureSet:
    """Pooled (and optionally frame-level) hidden states of one model over one dataset."""

    name: str
    layers: list[int]
    ids: list[str]
    pooled: np.ndarray
    frames: dict[int, np.ndarray] | None = None
    frame_clip: np.ndarray | None = None
    frames_per_clip: int = 0
    num_hidden_states: int = 0
    cache_dir: Path | None = None
    from_cache: bool = False
    forward_passes: int = 0
    extracted: int = 0

    @property
    def dim(self) -> int:
        return int(self.pooled.shape[-1])

    def layer(self, layer: int) -> np.ndarray:
        """(clips, dims) pooled features of one hidden state."""
        return self.pooled[self._position(layer)]

    def layer_frames(self, layer: int) -> np.ndarray:
        if self.frames is None:
            raise ValueError(f"{self.name}: frame-level embeddings were not kept (frames_per_clip=0)")
        self._position(layer)
        return self.frames[layer]

    def _position(self, layer: int) -> int:
        try:
            return self.layers.index(layer)
        except ValueError:
            raise ValueError(
                f"{self.name}: layer {layer} was not extracted; available layers: {self.layers}"
            ) from None


def resolve_layers(layers, num_hidden_states: int | None, name: str) -> list[int] | None:
    """Sorted, unique hidden-state indices (negative counts from the end); a clear error for one
    that does not exist. ``None`` means all (or unknown until the first forward pass)."""
    if layers is None:
        return None if num_hidden_states is None else list(range(num_hidden_states))
    out = []
    for layer in layers:
        layer = int(layer)
        if num_hidden_states is not None:
            if layer < 0:
                layer += num_hidden_states
            if not 0 <= layer < num_hidden_states:
                raise ValueError(
                    f"{name}: layer {layer} does not exist; the model has hidden states "
                    f"0..{num_hidden_states - 1} (0 = the first layer's input)"
                )
        out.append(layer)
    return sorted(set(out))


def extract_each(backbones: dict, dataset, failed: dict, **options):
    """(name, FeatureSet) for each backbone that extracts; one that fails (cannot load, returns
    too few hidden states, ...) lands in ``failed`` as name -> message instead of ending the run,
    so the others' work is kept. Raises ValueError when none succeeds."""
    for name, source in backbones.items():
        try:
            extracted = extract_features(source, dataset, name=name, **options)
        except Exception as error:  # noqa: BLE001 - one model's failure must not discard the others'
            failed[name] = str(error) if isinstance(error, ValueError) else f"{type(error).__name__}: {error}"
            continue
        yield name, extracted
    if len(failed) == len(backbones):
        raise ValueError("; ".join(failed.values()))


def _check_options(frames_per_clip: int, dataset) -> list[str]:
    """The dataset's ids, after refusing options and datasets the analyses cannot use."""
    if frames_per_clip < 0:
        raise ValueError(f"frames_per_clip must be >= 0, got {frames_per_clip}")
    ids = [str(i) for i in dataset["id"]]
    if not ids:
        raise ValueError("the dataset has no rows")
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"dataset ids must be unique; repeated: {duplicates}")
    return ids


def _frames_by_layer(records, layers: list[int]) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """Per layer (frames, dims) of every clip in row order, and each frame's clip row. Each
    record's frames are released once copied, so the peak stays near one copy, not two."""
    counts = [r.frames.shape[1] for r in records]
    total, dims = sum(counts), records[0].frames.shape[-1]
    frames = {k: np.empty((total, dims), dtype=np.float16) for k in layers}
    start = 0
    for record, count in zip(records, counts):
        for k in layers:
            frames[k][start : start + count] = record.frames[k]
        record.frames = None
        start += count
    return frames, np.repeat(np.arange(len(records), dtype=np.int64), counts)


def _load_together(group, source, layers, *, trust_remote_code: bool, name: str | None):
    """The backbone, with ``layers`` checked before any extraction; a failure on any rank (a
    model that does not load on one host) raises on every rank, so none waits in `extract`."""
    backbone, error = None, None
    try:
        backbone = load_backbone(source, trust_remote_code=trust_remote_code, name=name)
        resolve_layers(layers, backbone.num_hidden_states, backbone.name)
    except Exception as failure:  # noqa: BLE001 - every rank must leave the model together
        error = failure
    what = name or (str(source) if isinstance(source, (str, Path)) else type(source).__name__)
    group.agree(error, f"model {what}: loading")
    return backbone


def extract_features(
    backbone,
    dataset,
    *,
    layers: Sequence[int] | None = None,
    frames_per_clip: int = 32,
    cache: bool = True,
    progress: bool = True,
    trust_remote_code: bool = False,
    name: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
) -> FeatureSet:
    """Hidden states of ``layers`` (default all), mean-pooled, for every whole clip of ``dataset``,
    cached.

    ``frames_per_clip=0`` keeps only pooled features (enough for probing); otherwise at most
    that many frames per clip, evenly spaced in time. Clips already in the cache (for this
    backbone, any layers) are read without running the model; ``cache=False`` extracts anyway
    and refreshes the entries. ``device`` defaults to this rank's GPU.
    """
    ids = _check_options(frames_per_clip, dataset)
    with ranks() as group:  # under torchrun: one group for loading and extracting
        backbone = _load_together(group, backbone, layers, trust_remote_code=trust_remote_code, name=name)
        done = extract(backbone, dataset, frames_cap=frames_per_clip, batch_size=batch_size, refresh=not cache,
                       device=device, progress=progress)
    num_states = done.records[0].num_hidden_states
    chosen = resolve_layers(layers, num_states, backbone.name)
    stacked = np.stack([r.mean[:num_states] for r in done.records], axis=1)  # (S, clips, D)
    result = FeatureSet(backbone.name, chosen, ids, np.ascontiguousarray(stacked[chosen]),
                        frames_per_clip=frames_per_clip, num_hidden_states=num_states,
                        cache_dir=done.directory, from_cache=done.missing == 0,
                        forward_passes=done.forward_passes, extracted=done.extracted)
    if frames_per_clip:
        result.frames, result.frame_clip = _frames_by_layer(done.records, chosen)
    return result
