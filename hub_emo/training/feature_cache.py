"""Feature caching for frozen-backbone strategies: the backbone runs once per clip.

A frozen backbone without adapters (``baseline``, ``weighted_sum``) sees the same crop of a
clip in every epoch and runs in eval mode anyway, so its output never changes. With mean
pooling the head needs only each hidden state's mean over frames (a weighted sum of
per-layer means is the mean of the weighted sum), so
`EmoForAudioClassification.extract_layer_features` is computed once per clip and cached,
and every epoch after that trains the head on ``forward(layer_features=...)`` — the
s3prl/SUPERB recipe. The one change in what is learnt: the training crop is fixed (centre,
or the start with ``crop: start``) instead of a new random window per epoch.

Cache layout: ``hub_emo.paths.cache_dir("train_features", key)`` where ``key`` hashes the
backbone's config and every weight (so a LoRA stage 1 merged into the backbone gets its
own entry), the feature extractor's settings and the crop (length, mode). Inside, chunk
files ``chunk-<hash>.safetensors`` hold ``features`` (clips, hidden states + 1, hidden)
float32 with the clips' content hashes (`hub_emo.data.clip_fingerprints`: id + audio) in
the safetensors metadata. Clips are looked up one by one, so a clip extracted once serves
every split, fold, strategy (baseline and weighted_sum share entries) and later run.

Under ``torchrun`` / ``accelerate launch`` each rank extracts its share of the missing
clips (round robin) and writes its own chunk; after a barrier every rank reads them all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from hub_emo import paths
from hub_emo.data import clip_fingerprints

from . import data as train_data

logger = logging.getLogger(__name__)

#: Bump when the layout or the meaning of cached features changes.
CACHE_VERSION = 1
_VOLATILE = ("_name_or_path", "transformers_version", "_commit_hash", "layerdrop")


def extraction_crop(crop: str) -> str:
    """The fixed crop that stands for the per-epoch random one (deterministic crops stay)."""
    return "center" if crop == "random" else crop


class FeatureDataset:
    """Cached layer features and labels, indexed like the split they come from."""

    def __init__(self, features, labels):
        self.features = features
        self.labels = labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> dict:
        return {"layer_features": self.features[index], "labels": self.labels[index]}


def collate_features(rows: list[dict]) -> dict:
    import torch

    return {
        "layer_features": torch.stack([r["layer_features"] for r in rows]),
        "labels": torch.stack([r["labels"] for r in rows]),
    }


class FeatureCache:
    """Cached `extract_layer_features` of one model's backbone at one crop setting."""

    def __init__(self, model, feature_extractor, max_seconds: float | None, crop: str, batch_size: int = 8,
                 identity: str | None = None):
        if not model.accepts_layer_features:
            raise ValueError(
                f"feature caching needs a frozen backbone without adapters and mean pooling "
                f"(adapter={model.config.adapter!r}, pooling={model.config.pooling!r})"
            )
        self.model = model
        self.collator = train_data.AudioCollator(feature_extractor, max_seconds, crop)
        self.batch_size = max(1, int(batch_size))
        self.identity = identity or backbone_identity(model, feature_extractor)
        parts = {"version": CACHE_VERSION, "backbone": self.identity, "max_seconds": max_seconds, "crop": crop}
        self.key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]
        self.directory = paths.cache_dir("train_features", self.key)
        self.stats = {"clips": 0, "extracted": 0, "forward_passes": 0}

    # ------------------------------------------------------------------ reading
    def _chunks(self) -> list[Path]:
        return sorted(self.directory.glob("chunk-*.safetensors"))

    def _read(self, wanted: set[str]) -> dict:
        """Features (torch, per clip hash) of the wanted clips that some chunk holds."""
        from safetensors import safe_open

        found: dict = {}
        for chunk in self._chunks():
            with safe_open(str(chunk), framework="pt") as handle:
                clips = json.loads(handle.metadata()["clips"])
                rows = [i for i, c in enumerate(clips) if c in wanted and c not in found]
                if rows:
                    features = handle.get_tensor("features")
                    found.update({clips[i]: features[i] for i in rows})
        return found

    # ------------------------------------------------------------------ extraction
    def _extract(self, rows) -> tuple[np.ndarray, int]:
        """(clips, hidden states + 1, hidden) for decoded rows; clips of one cropped length share
        a batch, so nothing is ever padded (padding would shift group-norm backbones' features)."""
        import torch

        model = self.model
        device = next(model.parameters()).device
        out: list = [None] * len(rows)
        pending: dict[int, list] = {}
        passes = 0

        def flush(items) -> None:
            nonlocal passes
            inputs = self.collator.pad([wave for _, wave in items]).to(device)
            with torch.inference_mode():
                features = model.extract_layer_features(inputs["input_values"], inputs.get("attention_mask"))
            passes += 1
            for (position, _), row in zip(items, features.float().cpu().numpy()):
                out[position] = row

        was_training = model.training
        model.eval()
        try:
            for position, row in enumerate(rows):
                wave = self.collator.waveform(row)
                bucket = pending.setdefault(len(wave), [])
                bucket.append((position, wave))
                if len(bucket) >= self.batch_size:
                    flush(pending.pop(len(wave)))
                elif sum(map(len, pending.values())) >= 4 * self.batch_size:  # many odd lengths: bound memory
                    for length in list(pending):
                        flush(pending.pop(length))
            for length in list(pending):
                flush(pending.pop(length))
        finally:
            model.train(was_training)
        return np.stack(out), passes

    def _write(self, clips: list[str], features: np.ndarray) -> None:
        from safetensors.numpy import save_file

        name = hashlib.sha256("\n".join(clips).encode()).hexdigest()[:24]
        path = self.directory / f"chunk-{name}.safetensors"
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        save_file({"features": np.ascontiguousarray(features, dtype=np.float32)}, str(tmp),
                  metadata={"clips": json.dumps(clips)})
        os.replace(tmp, path)

    def features(self, dataset):
        """(rows, hidden states + 1, hidden) float32 tensor for a split, extracting only what is missing."""
        import torch
        from accelerate import PartialState

        state = PartialState()
        keys = clip_fingerprints(dataset)
        wanted = set(keys)
        found = self._read(wanted)
        missing = sorted(wanted - set(found))
        # Every rank has decided what is missing before any rank writes a chunk.
        state.wait_for_everyone()
        extracted = passes = 0
        if missing:
            mine = missing[state.process_index :: state.num_processes]
            if mine:
                position = {k: i for i, k in enumerate(keys)}  # one row per clip hash
                rows = train_data.rows_for_training(
                    dataset.select([position[k] for k in mine]), self.collator.rate
                )
                logger.info("extracting %d clips (%d cached) into %s", len(mine), len(found), self.directory)
                array, passes = self._extract(rows)
                self._write(mine, array)
                extracted = len(mine)
            state.wait_for_everyone()
            found.update(self._read(set(missing)))
        absent = wanted - set(found)
        if absent:
            raise RuntimeError(f"{self.directory}: {len(absent)} clips missing after extraction")
        self.stats["clips"] += len(keys)
        self.stats["extracted"] += extracted
        self.stats["forward_passes"] += passes
        return torch.stack([found[k] for k in keys]).float()

    def dataset(self, split) -> FeatureDataset:
        import torch

        labels = torch.tensor([int(v) for v in split["label"]], dtype=torch.long)
        return FeatureDataset(self.features(split), labels)


def backbone_identity(model, feature_extractor) -> str:
    """Hash of what decides a backbone's features: its config (less layer drop, which eval
    mode ignores), every weight, and the feature extractor's settings."""
    config = model.backbone.config.to_dict()
    for key in _VOLATILE:
        config.pop(key, None)
    extractor = feature_extractor.to_dict() if hasattr(feature_extractor, "to_dict") else {}
    blob = json.dumps({"config": config, "extractor": extractor}, sort_keys=True, default=str)
    return hashlib.sha256((blob + paths.weights_hash(model.backbone)).encode()).hexdigest()
