"""A backbone ready for feature extraction: the encoder, its feature extractor, a name and
one content identity that every cached feature is keyed on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Config entries that do not change what an eval-mode encoder computes.
_VOLATILE_CONFIG = ("_name_or_path", "transformers_version", "_commit_hash", "layerdrop", "architectures",
                    "dtype", "torch_dtype", "_attn_implementation_autoset")
#: Feature-extractor entries that do not change an unpadded input.
_VOLATILE_EXTRACTOR = ("processor_class", "return_attention_mask", "padding_side")


@dataclass
class Backbone:
    """A loaded encoder, its feature extractor, a display name and a content identity."""

    name: str
    model: Any
    feature_extractor: Any
    identity: str

    def __post_init__(self):
        if not getattr(self.feature_extractor, "sampling_rate", None):
            raise ValueError(f"{self.name}: its feature extractor ({type(self.feature_extractor).__name__}) has no "
                             "sampling_rate; extraction feeds clips at the preprocessor's rate")

    @property
    def sampling_rate(self) -> int:
        """The rate its preprocessor takes (`hub_emo.modeling.backbones.load_preprocessor`'s, or the
        one given with the model): no other default, so a 24 kHz backbone is never fed 16 kHz."""
        return int(self.feature_extractor.sampling_rate)

    @property
    def num_hidden_states(self) -> int | None:
        """Layers + 1 (the CNN / embedding output), from the config when it says."""
        layers = getattr(self.model.config, "num_hidden_layers", None)
        return None if layers is None else int(layers) + 1


def weights_hash(model) -> str:
    """SHA-256 of a model's weights: cache keys follow the weights themselves, not a name that may
    point to other weights later (`hub_emo.modeling.backbones.weights_hash`)."""
    from hub_emo.modeling.backbones import weights_hash as sha256_of_weights

    return sha256_of_weights(model)


def backbone_identity(model, feature_extractor) -> str:
    """SHA-256 of what decides an encoder's features: its config (less what eval mode
    ignores), every weight, and the feature extractor's settings. A LoRA stage merged into
    the weights, another checkpoint under the same name or another rate: another identity."""
    config = model.config.to_dict()
    for key in _VOLATILE_CONFIG:
        config.pop(key, None)
    extractor = feature_extractor.to_dict() if hasattr(feature_extractor, "to_dict") else {}
    for key in _VOLATILE_EXTRACTOR:
        extractor.pop(key, None)
    blob = json.dumps({"config": config, "extractor": extractor}, sort_keys=True, default=str)
    return hashlib.sha256((blob + weights_hash(model)).encode()).hexdigest()


def _is_hub_emo(model) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) == "hub_emo"


def _prepare_model(model, name: str):
    """Unwrap a hub_emo classifier to its backbone; the reference layer convention, eval mode and
    no layer drop (also for a model object loaded elsewhere)."""
    from hub_emo.modeling.backbones import reference_layers

    if _is_hub_emo(model):
        if not hasattr(model, "backbone"):
            raise ValueError(f"{name}: a hub_emo model without a .backbone attribute")
        model = model.backbone
    reference_layers(model.config)
    if hasattr(model.config, "layerdrop"):
        model.config.layerdrop = 0.0
    for module in model.modules():  # some models copy layerdrop at construction
        if hasattr(module, "layerdrop") and isinstance(module.layerdrop, float):
            module.layerdrop = 0.0
    return model.eval()


def _load_folder(path: str, trust_remote_code: bool):
    """(model, feature extractor) of a folder or Hub id; the default extractor when it has none.

    A plain backbone loads through `hub_emo.modeling.backbones.load_model`, the loader training
    and `from_backbone` use; a hub_emo checkpoint through its Auto class.
    """
    from hub_emo.inference import feature_extractor_for
    from hub_emo.modeling import backbones

    config = backbones.load_config(path, trust_remote_code=trust_remote_code)
    if config.model_type != "hub_emo":
        model = backbones.load_model(path, config=config, trust_remote_code=trust_remote_code)
    else:
        from transformers import AutoModelForAudioClassification

        try:
            model = AutoModelForAudioClassification.from_pretrained(path, trust_remote_code=trust_remote_code)
        except Exception as error:  # noqa: BLE001
            raise ValueError(f"{path}: cannot load the model ({type(error).__name__}: {error})") from error
    return model, feature_extractor_for(config, path, trust_remote_code)


def load_backbone(source, *, trust_remote_code: bool = False, name: str | None = None) -> Backbone:
    """A backbone from a local folder or Hub id, a model object, or a (model, extractor) pair.

    A hub_emo checkpoint (model_type "hub_emo") gives its ``.backbone``. Without a
    preprocessor_config.json (a bare encoder checkpoint, or a model object alone) the feature
    extractor is `hub_emo.inference.feature_extractor_for`'s default, as training uses.
    Loading goes through `hub_emo.modeling.backbones` (MERT natively, without its remote code).
    """
    if isinstance(source, Backbone):
        return source
    from hub_emo.inference import feature_extractor_for

    extractor = None
    if isinstance(source, tuple):
        model, extractor = source
    elif hasattr(source, "config") and hasattr(source, "forward"):
        model = source
    else:
        path = str(source)
        name = name or Path(path).name or path
        model, extractor = _load_folder(path, trust_remote_code)
    name = name or getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
    if extractor is None:
        extractor = feature_extractor_for(model.config)
    model = _prepare_model(model, name)
    return Backbone(name=str(name), model=model, feature_extractor=extractor,
                    identity=backbone_identity(model, extractor))
