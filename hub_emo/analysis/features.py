"""Every hidden state of every clip, in one forward pass, cached on disk.

Probing 13 or 25 layers and FAD on any of them read the same extraction: one forward
pass per clip (batch of one, so no padding ever reaches a frame or a mean), all hidden
states kept, then

* ``pooled``: (layers, clips, dims) float32, the mean (or max) over each clip's frames;
* ``frames``: per layer, (frames, dims) float16 frame-level embeddings for FAD, at most
  ``frames_per_clip`` per clip, evenly spaced in time (a stated cap keeps a RAVDESS-size
  cache near a gigabyte), with ``frame_clip`` giving each frame's clip row.

The cache lives under ``hub_emo.paths.cache_dir("features", key)``; the key hashes the
model identity (config + a hash of every weight), the layer set, the pooling, the target
rate and a fingerprint of the dataset's ids and audio (bytes, or path + size + mtime).
Labels are not part of it: one extraction serves every label set. Files are safetensors
and JSON; ``meta.json`` is written last and marks an entry complete.

Under ``torchrun`` / ``accelerate launch`` each rank extracts ``dataset.shard(world,
rank, contiguous=True)``, writes its shard into the cache entry, and rank 0 assembles the
shards in order after a barrier.

Entry points::

    load_backbone(source, *, trust_remote_code=False, name=None) -> Backbone
    extract_features(backbone, dataset, *, layers=None, pooling="mean",
                     frames_per_clip=32, cache=True, progress=True,
                     trust_remote_code=False, name=None, device=None) -> FeatureSet
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hub_emo import audio, paths
from hub_emo.data import dataset_fingerprint

#: Bump when the cache layout or the extraction changes meaning.
CACHE_VERSION = 1
POOLINGS = ("mean", "max")


@dataclass
class Backbone:
    """A loaded encoder, its feature extractor, a display name and a content identity."""

    name: str
    model: Any
    feature_extractor: Any
    identity: str

    @property
    def sampling_rate(self) -> int:
        return int(getattr(self.feature_extractor, "sampling_rate", 16000))

    @property
    def num_hidden_states(self) -> int | None:
        """Layers + 1 (the CNN / embedding output), from the config when it says."""
        layers = getattr(self.model.config, "num_hidden_layers", None)
        return None if layers is None else int(layers) + 1


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
    info: dict = field(default_factory=dict)

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


def _is_hub_emo(model) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) == "hub_emo"


def _model_identity(model, feature_extractor) -> str:
    config = model.config.to_dict()
    for volatile in ("_name_or_path", "transformers_version", "_commit_hash"):
        config.pop(volatile, None)
    extractor = feature_extractor.to_dict() if hasattr(feature_extractor, "to_dict") else {}
    blob = json.dumps({"config": config, "extractor": extractor}, sort_keys=True, default=str)
    return hashlib.sha256((blob + paths.weights_hash(model)).encode()).hexdigest()


def _prepare_model(model, name: str):
    """Unwrap a hub_emo classifier to its backbone; force eval mode and no layer drop."""
    if _is_hub_emo(model):
        if not hasattr(model, "backbone"):
            raise ValueError(f"{name}: a hub_emo model without a .backbone attribute")
        model = model.backbone
    if hasattr(model.config, "layerdrop"):
        model.config.layerdrop = 0.0
    for module in model.modules():  # some models copy layerdrop at construction
        if hasattr(module, "layerdrop") and isinstance(module.layerdrop, float):
            module.layerdrop = 0.0
    return model.eval()


def load_backbone(
    source, *, trust_remote_code: bool = False, name: str | None = None
) -> Backbone:
    """A backbone from a local folder or Hub id, a model object, or a (model, extractor) pair.

    A hub_emo checkpoint (model_type "hub_emo") gives its ``.backbone``. A bare model
    object without an extractor gets a default normalising Wav2Vec2FeatureExtractor at the
    rate its config records (16 kHz unless it says). Loading goes through
    `hub_emo.modeling.backbones` (MERT natively, without its remote code).
    """
    if isinstance(source, Backbone):
        return source
    from transformers import Wav2Vec2FeatureExtractor

    from hub_emo.modeling import backbones

    extractor = None
    if isinstance(source, tuple):
        model, extractor = source
    elif hasattr(source, "config") and hasattr(source, "forward"):
        model = source
    else:
        path = str(source)
        name = name or Path(path).name or path
        try:
            config = backbones.load_config(path, trust_remote_code=trust_remote_code)
        except Exception as error:  # noqa: BLE001 - name the source in one clear message
            raise ValueError(f"{path}: cannot load a model config ({error})") from error
        if config.model_type == "hub_emo":
            from transformers import AutoModelForAudioClassification

            model = AutoModelForAudioClassification.from_pretrained(path, trust_remote_code=trust_remote_code)
        else:
            if hasattr(config, "layerdrop"):
                config.layerdrop = 0.0
            model = backbones.load_model(path, config=config, trust_remote_code=trust_remote_code)
        try:
            extractor = backbones.load_feature_extractor(path, trust_remote_code=trust_remote_code)
        except Exception as error:  # noqa: BLE001
            raise ValueError(f"{path}: no usable feature extractor (preprocessor_config.json): {error}") from error
    name = name or getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
    if extractor is None:
        extractor = Wav2Vec2FeatureExtractor(sampling_rate=backbones.sampling_rate_of(model.config),
                                             do_normalize=True, return_attention_mask=True)
    model = _prepare_model(model, name)
    return Backbone(name=str(name), model=model, feature_extractor=extractor,
                    identity=_model_identity(model, extractor))


def _distributed():
    """(world size, rank, barrier): an initialised torch.distributed group, or one started
    (gloo: only barriers cross processes) when torchrun / accelerate launch set WORLD_SIZE > 1."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available():
            return 1, 0, lambda: None
        dist.init_process_group(backend="gloo")
    return dist.get_world_size(), dist.get_rank(), dist.barrier


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


def _frame_indices(length: int, cap: int) -> np.ndarray:
    if length <= cap:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, cap).round().astype(np.int64))


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


def _device(device: str | None):
    """The given device, else this rank's GPU when there is one, else the CPU."""
    import torch

    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device("cpu")


def _extract_rows(backbone: Backbone, dataset, layers, pooling, frames_per_clip, progress, desc, device):
    """Run the model over a dataset; returns (layers, pooled, frames, frame_clip, passes)."""
    import datasets
    import torch

    from hub_emo.progress import bar

    from hub_emo.modeling.backbones import check_hidden_states

    rate = backbone.sampling_rate
    backbone.model.to(device)
    rows = dataset.select_columns(["id", "audio"]).cast_column("audio", datasets.Audio())
    pooled: list[np.ndarray] = []
    frames: dict[int, list[np.ndarray]] = {}
    frame_clip: list[np.ndarray] = []
    passes = 0
    with torch.inference_mode():
        for row, item in enumerate(bar(rows, total=len(rows), desc=desc, unit="clip", disable=not progress)):
            samples = item["audio"].get_all_samples()
            wave = audio.prepare(samples.data.numpy(), int(samples.sample_rate), rate,
                                 source=f"clip {item['id']!r}", channels_last=False)
            inputs = backbone.feature_extractor(wave, sampling_rate=rate, return_tensors="pt")
            inputs.pop("attention_mask", None)  # batch of one: nothing is padded
            output = backbone.model(**inputs.to(device), output_hidden_states=True)
            passes += 1
            hidden = getattr(output, "hidden_states", None)
            check_hidden_states(hidden, backbone.num_hidden_states, backbone.name)
            if layers is None:
                layers = list(range(len(hidden)))
            elif max(layers) >= len(hidden):
                raise ValueError(
                    f"{backbone.name}: layer {max(layers)} does not exist; the model returned "
                    f"{len(hidden)} hidden states (0..{len(hidden) - 1})"
                )
            states = torch.stack([hidden[k][0] for k in layers]).float().cpu()  # (L, T, D)
            pooled.append((states.mean(1) if pooling == "mean" else states.amax(1)).numpy())
            if frames_per_clip:
                index = _frame_indices(states.shape[1], frames_per_clip)
                chosen = states[:, torch.from_numpy(index)].to(torch.float16).numpy()
                for position, layer in enumerate(layers):
                    frames.setdefault(layer, []).append(chosen[position])
                frame_clip.append(np.full(len(index), row, dtype=np.int64))
    if not pooled:
        raise ValueError("the dataset (or this rank's shard) has no rows")
    stacked = np.stack(pooled, axis=1)
    if frames_per_clip:
        return (layers, stacked, {k: np.concatenate(v) for k, v in frames.items()},
                np.concatenate(frame_clip), passes)
    return layers, stacked, None, None, passes


def _save(path: Path, tensors: dict[str, np.ndarray]) -> None:
    from safetensors.numpy import save_file

    tmp = path.with_suffix(f".tmp{os.getpid()}")
    save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(tmp))
    os.replace(tmp, path)


def _load(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def _pack(pooled, frames, frame_clip, layers) -> dict[str, np.ndarray]:
    tensors = {"pooled": pooled}
    if frames is not None:
        tensors["frame_clip"] = frame_clip
        tensors.update({f"frames.{k}": frames[k] for k in layers})
    return tensors


def extract_features(
    backbone,
    dataset,
    *,
    layers: Sequence[int] | None = None,
    pooling: str = "mean",
    frames_per_clip: int = 32,
    cache: bool = True,
    progress: bool = True,
    trust_remote_code: bool = False,
    name: str | None = None,
    device: str | None = None,
) -> FeatureSet:
    """Hidden states of ``layers`` (default all) for every clip of ``dataset``, cached.

    ``device`` defaults to this rank's GPU when there is one (the model is moved there).

    ``frames_per_clip=0`` keeps only pooled features (enough for probing). A cached entry
    with the same key and frame cap is read without running the model; ``cache=False``
    extracts anyway (and refreshes the entry).
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; choose from {POOLINGS}")
    if frames_per_clip < 0:
        raise ValueError(f"frames_per_clip must be >= 0, got {frames_per_clip}")
    backbone = load_backbone(backbone, trust_remote_code=trust_remote_code, name=name)
    layers = resolve_layers(layers, backbone.num_hidden_states, backbone.name)
    ids = [str(i) for i in dataset["id"]]
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"dataset ids must be unique; repeated: {duplicates}")
    key_parts = {
        "version": CACHE_VERSION,
        "model": backbone.identity,
        "layers": layers if layers is not None else "all",
        "pooling": pooling,
        "sampling_rate": backbone.sampling_rate,
        "data": dataset_fingerprint(dataset),
    }
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True).encode()).hexdigest()[:32]
    directory = paths.cache_dir("features", key)
    meta_path = directory / "meta.json"
    frames_path = directory / f"frames-cap{frames_per_clip}.safetensors"
    world, rank, barrier = _distributed()

    def read_entry() -> FeatureSet | None:
        if not meta_path.is_file():
            return None
        meta = json.loads(meta_path.read_text())
        if frames_per_clip and not frames_path.is_file():
            return None
        tensors = _load(directory / "pooled.safetensors")
        result = FeatureSet(backbone.name, meta["layers"], meta["ids"], tensors["pooled"],
                            num_hidden_states=meta["num_hidden_states"], cache_dir=directory,
                            from_cache=True, frames_per_clip=frames_per_clip, info=key_parts)
        if frames_per_clip:
            stored = _load(frames_path)
            result.frame_clip = stored["frame_clip"]
            result.frames = {k: stored[f"frames.{k}"] for k in result.layers}
        return result

    hit = read_entry() if cache else None
    if hit is not None:
        return hit
    shard = dataset.shard(world, rank, contiguous=True) if world > 1 else dataset
    desc = f"{backbone.name} hidden states" + (f" [rank {rank}/{world}]" if world > 1 else "")
    got_layers, pooled, frames, frame_clip, passes = _extract_rows(
        backbone, shard, layers, pooling, frames_per_clip, progress, desc, _device(device))
    num_states = backbone.num_hidden_states or (max(got_layers) + 1)
    if world > 1:
        _save(directory / f"shard-{rank:05d}-of-{world:05d}.safetensors",
              _pack(pooled, frames, frame_clip, got_layers))
        barrier()
        if rank == 0:
            parts = [_load(directory / f"shard-{r:05d}-of-{world:05d}.safetensors") for r in range(world)]
            offsets = np.cumsum([0] + [p["pooled"].shape[1] for p in parts[:-1]])
            pooled = np.concatenate([p["pooled"] for p in parts], axis=1)
            if frames_per_clip:
                frame_clip = np.concatenate([p["frame_clip"] + o for p, o in zip(parts, offsets)])
                frames = {k: np.concatenate([p[f"frames.{k}"] for p in parts]) for k in got_layers}
    if rank == 0:
        if frames_per_clip:
            _save(frames_path, {"frame_clip": frame_clip, **{f"frames.{k}": frames[k] for k in got_layers}})
        _save(directory / "pooled.safetensors", {"pooled": pooled})
        meta = {"name": backbone.name, "layers": got_layers, "ids": ids, "pooling": pooling,
                "num_hidden_states": num_states, "key": key_parts}
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, meta_path)
        for r in range(world if world > 1 else 0):
            (directory / f"shard-{r:05d}-of-{world:05d}.safetensors").unlink(missing_ok=True)
    if world > 1:
        barrier()
        result = read_entry()  # every rank reads what rank 0 assembled
        result.from_cache = False
        result.forward_passes = passes
        return result
    return FeatureSet(backbone.name, got_layers, ids, pooled, frames, frame_clip, frames_per_clip,
                      num_states, directory, False, passes, key_parts)

