"""The one way hub_emo loads an SSL backbone: config, weights and preprocessor, by Hub id or folder.

Built-in families (wav2vec2, HuBERT, WavLM, data2vec-audio) load through transformers' Auto
classes. MERT (``model_type: "mert_model"``) ships remote code written for transformers 4.x
whose ``forward`` bypasses the hidden-state capture of transformers 5, so it returns no
hidden states there. MERT-v1 without its CQT branch is HuBERT with different switches and
the same parameter names, so its config is translated to a `HubertConfig` and its weights
load into transformers' own `HubertModel`: the repository's code is never executed, with or
without ``trust_remote_code``. Weights come from ``model.safetensors`` or, for older repos,
``pytorch_model.bin`` (transformers reads it with ``torch.load(weights_only=True)``: tensors
only, no pickled code).

Layer convention (every family, every path): ``hidden_states[0]`` is the input of the first
transformer layer and ``hidden_states[L]`` the output of layer L; for pre-norm encoders
(``do_stable_layer_norm: true``: MERT-v1-330M, wav2vec2-large-lv60, hubert-large, wavlm-large)
the last one is taken after the encoder's final LayerNorm, as transformers 4.x and MERT's own
code return it. transformers 5 returns it before that LayerNorm unless the config sets
``tie_last_hidden_states``; `reference_layers` sets it on every config this module hands out.

This file is copied as remote code with a saved hub_emo model: it imports only transformers.
"""

from __future__ import annotations

import logging
import math

from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, HubertConfig, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

MERT_MODEL_TYPE = "mert_model"
PREPROCESSOR_FILE = "preprocessor_config.json"

logger = logging.getLogger(__name__)

#: Per family, the published preprocessor a backbone without one gets (the repository it
#: copies, and its ``do_normalize``): WavLM and MERT-v1 feed raw waveforms, the rest normalise.
FAMILY_PREPROCESSORS = {
    "wav2vec2": ("facebook/wav2vec2-base", True),
    "hubert": ("facebook/hubert-base-ls960", True),
    "data2vec-audio": ("facebook/data2vec-audio-base", True),
    "wavlm": ("microsoft/wavlm-base-plus", False),
    MERT_MODEL_TYPE: ("m-a-p/MERT-v1-95M", False),
}

#: MERT config fields HuBERT has under the same name and meaning.
_MERT_SHARED = (
    "activation_dropout", "apply_spec_augment", "attention_dropout", "bos_token_id",
    "classifier_proj_size", "conv_bias", "conv_dim", "conv_kernel", "conv_stride",
    "do_stable_layer_norm", "eos_token_id", "feat_extract_activation", "feat_extract_norm",
    "feat_proj_dropout", "feat_proj_layer_norm", "final_dropout", "hidden_act", "hidden_dropout",
    "hidden_size", "initializer_range", "intermediate_size", "layer_norm_eps", "layerdrop",
    "mask_feature_length", "mask_feature_min_masks", "mask_feature_prob", "mask_time_length",
    "mask_time_min_masks", "mask_time_prob", "num_attention_heads", "num_conv_pos_embedding_groups",
    "num_conv_pos_embeddings", "num_feat_extract_layers", "num_hidden_layers", "pad_token_id",
    "vocab_size", "conv_pos_batch_norm",
)
#: Read and either honoured or proven irrelevant (see `hubert_config_from_mert`); never copied.
_MERT_CHECKED = ("feature_extractor_cqt", "feature_extractor_cqt_bins", "deepnorm", "attention_relax", "sample_rate")
#: Fields MERT's code never reads, with the reason. MERT's configs are converted from a
#: fairseq-era wav2vec2 config (MERT's ``hf_config/mert_large.json`` for the 330M model) and
#: `MERTConfig` keeps every field it does not know as a plain attribute.
_MERT_UNREAD = {
    **dict.fromkeys(
        ("mask_channel_length", "mask_channel_min_space", "mask_channel_other", "mask_channel_prob",
         "mask_channel_selection", "mask_time_min_space", "mask_time_other", "mask_time_selection"),
        "fairseq's SpecAugment options; MERT (and HuBERT in transformers 4.x and 5) masks with "
        "mask_time_*/mask_feature_* (prob, length, min_masks) only, and masking acts only in "
        "pretraining",
    ),
    "hidden_dropout_prob": "an old alias; MERT's layers read hidden_dropout",
    "feat_extract_dropout": "an old field; MERT's feature encoder has no dropout",
}
#: Bookkeeping that changes nothing in the network.
_IGNORED = (
    "_name_or_path", "architectures", "auto_map", "model_type", "transformers_version", "torch_dtype",
    "dtype", "tokenizer_class", "gradient_checkpointing", "ctc_loss_reduction",
    "ctc_zero_infinity", "use_weighted_layer_sum", "_commit_hash", "_attn_implementation_autoset",
    "id2label", "label2id", "return_dict", "output_hidden_states", "output_attentions",
)


def hubert_config_from_mert(options: dict, name: str = "MERT") -> HubertConfig:
    """A `HubertConfig` that builds MERT-v1's network exactly, or a ValueError naming the field.

    * ``feature_extractor_cqt: true`` adds an nnAudio CQT branch HuBERT has no module for: refused.
    * ``deepnorm: true`` scales every residual by (2L)^¼: refused (no published MERT-v1 uses it).
    * ``attention_relax``: MERT divides the attention scores by c, subtracts the row maximum and
      multiplies by c again, i.e. subtracts c·max(s/c) = max(s) from each row; softmax is
      invariant to a per-row constant, so it equals stock attention up to rounding (and MERT's
      own code applies it only inside its deepnorm encoder). Accepted.
    * ``sample_rate`` is kept as ``sampling_rate`` so the model's rate travels with its config.
    * the fields of ``_MERT_UNREAD`` are dropped: MERT's code never reads them.
    """
    unknown = sorted(set(options) - set(_MERT_SHARED) - set(_MERT_CHECKED) - set(_MERT_UNREAD) - set(_IGNORED))
    if unknown:
        raise ValueError(f"{name}: MERT config field(s) {unknown} have no HuBERT equivalent; hub_emo cannot build it")
    if options.get("feature_extractor_cqt", False):
        raise ValueError(
            f"{name}: feature_extractor_cqt=true (MERT's nnAudio CQT input branch) is not supported; "
            "hub_emo loads MERT-v1 without remote code, and no published MERT-v1 checkpoint uses it"
        )
    if options.get("deepnorm", False):
        raise ValueError(
            f"{name}: deepnorm=true (DeepNet residual scaling) is not supported; no published MERT-v1 "
            "checkpoint uses it"
        )
    relax = options.get("attention_relax", -1.0)
    if relax is not None and not (isinstance(relax, (int, float)) and math.isfinite(relax)):
        raise ValueError(f"{name}: attention_relax must be a number, got {relax!r}")
    values = {key: options[key] for key in _MERT_SHARED if key in options}
    values["sampling_rate"] = int(options.get("sample_rate", 24000))
    values["mert_attention_relax"] = float(relax if relax is not None else -1.0)
    config = HubertConfig(**values)
    config._name_or_path = options.get("_name_or_path", "")
    return reference_layers(config)


def reference_layers(config: PretrainedConfig) -> PretrainedConfig:
    """``config`` with hidden state L as the reference implementations give it (see the module doc).

    Pre-norm encoders get ``tie_last_hidden_states=True``: transformers 5 then returns the last
    hidden state after the final LayerNorm, as transformers 4.x and MERT's code do. Post-norm
    encoders already do (their LayerNorm comes before the layers) and stay as they are, so their
    identity, and every feature cached for them, is unchanged. Saved with the config. An explicit
    ``tie_last_hidden_states: false`` is kept (e.g. to reload a model trained on transformers 5's
    own convention).
    """
    prenorm = getattr(config, "do_stable_layer_norm", False) and not getattr(config, "add_adapter", False)
    if prenorm and getattr(config, "tie_last_hidden_states", None) is None:
        config.tie_last_hidden_states = True
    return config


def config_from_dict(options: dict, trust_remote_code: bool = False) -> PretrainedConfig:
    """A backbone config from its ``config.json`` content (a MERT one becomes a `HubertConfig`)."""
    options = dict(options)
    model_type = options.get("model_type")
    if model_type is None:
        raise ValueError("backbone config has no 'model_type'")
    if model_type == MERT_MODEL_TYPE:
        return hubert_config_from_mert(options, options.get("_name_or_path") or "MERT")
    options.pop("model_type")
    if model_type in CONFIG_MAPPING:
        return reference_layers(CONFIG_MAPPING[model_type](**options))
    source = options.get("_name_or_path")
    if not (trust_remote_code and source):
        raise ValueError(
            f"backbone model_type {model_type!r} is not built into transformers; set "
            "backbone_trust_remote_code=True (and keep the backbone's '_name_or_path') to load "
            "its configuration class from its repository"
        )
    base = AutoConfig.from_pretrained(source, trust_remote_code=True)
    base.update({k: v for k, v in options.items() if not k.startswith("_")})
    return reference_layers(base)


def load_config(source, *, trust_remote_code: bool = False, revision: str | None = None) -> PretrainedConfig:
    """The config of a Hub id or folder; MERT's is translated without reading its code.

    Raises a ValueError naming ``source`` (and, for MERT, the field it cannot build).
    """
    source = str(source)
    try:
        options, _ = PretrainedConfig.get_config_dict(source, revision=revision)
        if options.get("model_type") == MERT_MODEL_TYPE:
            options["_name_or_path"] = source
            return hubert_config_from_mert(options, source)
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code, revision=revision)
    except Exception as error:  # noqa: BLE001 - one message that names the source
        raise ValueError(f"cannot load backbone {source!r}: cannot load a model config ({error})") from error
    return reference_layers(config)


def load_model(source, *, config=None, trust_remote_code: bool = False, revision: str | None = None):
    """The pretrained encoder of a Hub id or folder: the one loader behind training, `from_backbone`
    and feature extraction, so MERT's translation, the layer convention and the weight checks
    hold on every path.

    ``config`` overrides the repository's own. A weight the model needs and the checkpoint lacks
    is refused; a checkpoint tensor the model does not use is logged by name (a warning).
    """
    source = str(source)
    config = reference_layers(config) if config is not None else load_config(
        source, trust_remote_code=trust_remote_code, revision=revision)
    if not hasattr(config, "num_hidden_layers"):
        raise ValueError(f"cannot load backbone {source!r}: a {config.model_type!r} model is not an SSL audio encoder")
    try:
        if getattr(config, "mert_attention_relax", None) is not None:
            from transformers import HubertModel

            model, info = HubertModel.from_pretrained(source, config=config, revision=revision,
                                                      output_loading_info=True)
        else:
            model, info = AutoModel.from_pretrained(source, config=config, trust_remote_code=trust_remote_code,
                                                    revision=revision, output_loading_info=True)
    except Exception as error:  # noqa: BLE001 - one message that names the source
        raise ValueError(f"cannot load backbone {source!r}: {type(error).__name__}: {error}") from error
    check_loading_info(source, info)
    return model


def check_loading_info(source: str, info: dict) -> None:
    """Refuse weights the checkpoint lacks; name the tensors it holds that the model does not use.

    ``masked_spec_embed`` only serves pretraining-time masking and may be absent.
    """
    missing = [k for k in info.get("missing_keys", ()) if not k.endswith("masked_spec_embed")]
    if missing:
        raise ValueError(f"cannot load backbone {source!r}: the checkpoint lacks {len(missing)} of the "
                         f"model's weights, e.g. {sorted(missing)[:3]}")
    unused = sorted(info.get("unexpected_keys", ()))
    if unused:
        logger.warning("backbone %s: %d checkpoint tensor(s) the model does not use, ignored: %s",
                       source, len(unused), ", ".join(unused))


def sampling_rate_of(config, default: int = 16000) -> int:
    """The rate a backbone was pretrained at, when its config records it (MERT: 24 kHz)."""
    backbone = getattr(config, "backbone_config", config)
    return int(getattr(backbone, "sampling_rate", None) or default)


def load_feature_extractor(source, *, trust_remote_code: bool = False, revision: str | None = None):
    """The preprocessor of a Hub id or folder (its ``preprocessor_config.json``).

    A MERT repository's preprocessor is a plain `Wav2Vec2FeatureExtractor`; it is read without
    remote code, and its rate must agree with the config's.
    """
    from transformers import Wav2Vec2FeatureExtractor

    source = str(source)
    options, _ = PretrainedConfig.get_config_dict(source, revision=revision)
    if options.get("model_type") != MERT_MODEL_TYPE:
        return AutoFeatureExtractor.from_pretrained(source, trust_remote_code=trust_remote_code, revision=revision)
    extractor = Wav2Vec2FeatureExtractor.from_pretrained(source, revision=revision)
    rate = options.get("sample_rate")
    if rate is not None and int(rate) != int(extractor.sampling_rate):
        raise ValueError(
            f"{source}: preprocessor sampling_rate {extractor.sampling_rate} disagrees with the config's "
            f"sample_rate {rate}"
        )
    return extractor


def family_of(config) -> str:
    """The family name a backbone config belongs to (a MERT config translated to HuBERT stays MERT)."""
    backbone = getattr(config, "backbone_config", config)
    if getattr(backbone, "mert_attention_relax", None) is not None:
        return MERT_MODEL_TYPE
    return str(getattr(backbone, "model_type", ""))


def default_preprocessor(config, name: str = "the backbone"):
    """The published preprocessor of ``config``'s family, for a backbone that ships none (logged).

    Its rate is the one the config records (MERT: 24 kHz). An attention mask is always returned:
    hub_emo's model takes it, and a padded batch then scores each clip as if alone.
    """
    from transformers import Wav2Vec2FeatureExtractor

    family = family_of(config)
    if family not in FAMILY_PREPROCESSORS:
        raise ValueError(
            f"{name}: has no {PREPROCESSOR_FILE}, and hub_emo knows no published preprocessor for its family "
            f"{family!r} (known: {', '.join(FAMILY_PREPROCESSORS)}); save the right one next to its config"
        )
    repo, normalize = FAMILY_PREPROCESSORS[family]
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=sampling_rate_of(config), padding_value=0.0, do_normalize=normalize,
        return_attention_mask=True,
    )
    logger.warning("%s: no %s; using the %s family's published preprocessor (as %s: do_normalize=%s, "
                   "sampling_rate=%d)", name, PREPROCESSOR_FILE, family, repo, normalize, extractor.sampling_rate)
    return extractor


def preprocessor_file(source: str, revision: str | None, **hub) -> str | None:
    """The path of ``source``'s preprocessor file; None only when the folder or repository has none."""
    import os

    if os.path.isdir(source):
        path = os.path.join(source, PREPROCESSOR_FILE)
        return path if os.path.isfile(path) else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    try:
        return hf_hub_download(source, PREPROCESSOR_FILE, revision=revision, **hub)
    except RemoteEntryNotFoundError:  # the Hub answered: no such file
        return None
    except Exception as error:  # noqa: BLE001 - unreachable, offline, no such repo: name it, never a default
        raise ValueError(f"{source}: cannot fetch its {PREPROCESSOR_FILE} ({type(error).__name__}: {error})") from error


def load_preprocessor(source, config, *, trust_remote_code: bool = False, revision: str | None = None, **hub):
    """The preprocessor of the backbone or model at ``source`` (a Hub id or folder), with an attention mask.

    A source without ``preprocessor_config.json`` gets its family's published default (logged); one
    whose file cannot be fetched or read is an error naming it: never a silent default, which
    would change the features (WavLM and MERT do not normalise). ``source=None``: the default.
    ``hub``: ``cache_dir``, ``token``, ``local_files_only`` for the download.
    """
    if source is None:
        return default_preprocessor(config)
    source = str(source)
    found = preprocessor_file(source, revision, **hub)
    if found is None:
        return default_preprocessor(config, source)
    try:
        extractor = load_feature_extractor(source, trust_remote_code=trust_remote_code, revision=revision)
    except Exception as error:  # noqa: BLE001
        raise ValueError(f"{source}: cannot load its preprocessor {PREPROCESSOR_FILE} ({error})") from error
    extractor.return_attention_mask = True
    return extractor


def weights_hash(model) -> str:
    """SHA-256 of every tensor of a model's state dict (names, shapes, bytes)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(flat.numpy().data)
    return digest.hexdigest()


def public_source(source, model=None) -> str | None:
    """How a saved config or result names a backbone or dataset: a Hub id as given; a local folder by
    its name and, with ``model``, the SHA-256 of its weights (``name@sha256:<16 hex>``), never by
    its path on this machine (which would be published with the model)."""
    import os

    if source is None:
        return None
    text = str(source)
    if not os.path.exists(text):
        return text
    name = os.path.basename(os.path.abspath(text))
    return name if model is None else f"{name}@sha256:{weights_hash(model)[:16]}"


class BackboneOutputError(ValueError):
    """A backbone returned fewer hidden states than its config promises."""


def check_hidden_states(hidden_states, expected: int | None, name: str) -> None:
    """Fail with one message naming the model and the likely cause unless all hidden states came back."""
    got = 0 if hidden_states is None else len(hidden_states)
    if expected is None and got:
        return
    if got == expected:
        return
    if got == 0:
        cause = (
            "its forward returned no hidden_states for output_hidden_states=True; remote code written "
            "for transformers 4.x (e.g. MERT's) bypasses transformers 5's hidden-state capture. Load it "
            "without trust_remote_code (hub_emo builds MERT from transformers' HuBERT) or use a built-in family"
        )
    else:
        cause = "layers were skipped (layerdrop > 0 in training mode?) or its code drops layers"
    expected_text = "some" if expected is None else str(expected)
    raise BackboneOutputError(
        f"backbone {name}: returned {got} hidden states, expected {expected_text} "
        f"(the CNN/projection output + one per layer): {cause}"
    )


__all__ = [
    "BackboneOutputError", "check_hidden_states",
    "MERT_MODEL_TYPE", "check_loading_info", "config_from_dict", "hubert_config_from_mert", "load_config",
    "load_model", "reference_layers", "load_feature_extractor", "sampling_rate_of", "FAMILY_PREPROCESSORS",
    "default_preprocessor", "family_of", "load_preprocessor", "preprocessor_file", "public_source", "weights_hash",
]
