"""Frozen-backbone strategies train on cached features: the backbone runs once per clip.

A frozen backbone without adapters (``baseline``, ``weighted_sum``) sees the same crop of a
clip in every epoch and runs in eval mode anyway, so its output never changes. With mean
pooling the head needs only each hidden state's mean over frames (a weighted sum of
per-layer means is the mean of the weighted sum), plus the mean of the backbone's final
output, which is what `EmoForAudioClassification.extract_layer_features` returns and
``forward(layer_features=...)`` takes: the s3prl/SUPERB recipe. The one change in what is
learnt: the training crop is fixed (centre, or the start with ``crop: start``) instead of a
new random window per epoch.

The features are `hub_emo.features` records, the cache probing and FAD read too: keyed by
the backbone's identity (config, every weight, so a LoRA stage 1 merged into the backbone
gets its own), the clip and the window fed. A crop that covers a clip reads the record of
the whole clip, so training after ``hub-emo probe`` on the same backbone and data extracts
nothing.
"""

from __future__ import annotations

from hub_emo import features


def extraction_crop(crop: str) -> str:
    """The fixed crop that stands for the per-epoch random one (deterministic crops stay)."""
    return "center" if crop == "random" else crop


class FeatureDataset:
    """Cached layer features and labels, indexed like the split they come from."""

    def __init__(self, layer_features, labels):
        self.features = layer_features
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
    """`extract_layer_features` of one model's backbone through one window, from `hub_emo.features`."""

    def __init__(self, model, feature_extractor, max_seconds: float | None, crop: str, batch_size: int = 8,
                 identity: str | None = None):
        if not model.accepts_layer_features:
            raise ValueError(
                f"feature caching needs a frozen backbone without adapters and mean pooling "
                f"(adapter={model.config.adapter!r}, pooling={model.config.pooling!r})"
            )
        self.model = model
        self.backbone = features.Backbone(
            str(model.config.backbone_name_or_path or model.config.backbone_config.model_type), model.backbone,
            feature_extractor, identity or features.backbone_identity(model.backbone, feature_extractor))
        self.window = features.Window.of(max_seconds, self.backbone.sampling_rate, crop)
        self.batch_size = max(1, int(batch_size))
        self.directory = features.Store(self.backbone.identity).directory
        self.stats = {"clips": 0, "extracted": 0, "forward_passes": 0}

    def features(self, dataset):
        """(rows, hidden states + 1, hidden) tensor in the model's dtype (the records are float32;
        a bfloat16 head would refuse them) for a split, extracting only what is missing."""
        import numpy as np
        import torch

        done = features.extract(self.backbone, dataset, self.window, batch_size=self.batch_size,
                                device=next(self.model.parameters()).device)
        self.stats["clips"] += done.clips
        self.stats["extracted"] += done.extracted
        self.stats["forward_passes"] += done.forward_passes
        return torch.from_numpy(np.stack([r.mean for r in done.records])).to(self.model.dtype)

    def dataset(self, split) -> FeatureDataset:
        import torch

        labels = torch.tensor([int(v) for v in split["label"]], dtype=torch.long)
        return FeatureDataset(self.features(split), labels)
