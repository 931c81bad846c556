"""Features stage: one way to turn a backbone into features, for probing, FAD and training.

Like s3prl's single Featurizer, this package turns a backbone into features: it loads one with
its feature extractor (`load_backbone`, through `hub_emo.modeling.backbones.load_model`, the
loader training uses too), names its content (`backbone_identity`: config, every weight,
extractor settings), runs it over clips (length-sorted padded batches, each clip as alone;
under torchrun / accelerate launch in shares of equal audio duration that rank 0 assigns, the
records then carried to the ranks that read them: `shares`) and caches one record per clip
and audio window fed (`Store`).
Probing, FAD and the frozen training strategies all read those records, so a clip runs
through a backbone once, whichever of them comes first.

    load_backbone(source, *, trust_remote_code=False, name=None) -> Backbone
    extract(backbone, dataset, window=Window(), *, frames_cap=0, ...) -> Extraction   # per-clip records
    extract_features(backbone, dataset, *, layers=None, frames_per_clip=32, cache=True,
                     ...) -> FeatureSet                                                # the analyses' view
"""

from __future__ import annotations

from .backbone import Backbone, backbone_identity, load_backbone
from .extract import Extraction, extract
from .feature_set import FeatureSet, extract_each, extract_features, resolve_layers
from .store import VERSION, Record, Store, frame_indices
from .window import CROPS, Window, decodable, waveform

__all__ = [
    "CROPS", "VERSION", "Backbone", "Extraction", "FeatureSet", "Record", "Store", "Window",
    "backbone_identity", "decodable", "extract", "extract_each", "extract_features", "frame_indices",
    "load_backbone", "resolve_layers", "waveform",
]
