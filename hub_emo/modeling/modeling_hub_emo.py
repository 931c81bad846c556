"""`EmoForAudioClassification`: SSL backbone → layer aggregation → pooling → head.

Copied as remote code by ``save_pretrained``: imports only torch, transformers, peft and
its sibling files (relative imports), never the rest of hub_emo.
"""

from __future__ import annotations

import copy
import logging
import os
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, PretrainedConfig, PreTrainedModel
from transformers import initialization as init
from transformers.models.auto.configuration_auto import CONFIG_MAPPING
from transformers.utils import ModelOutput

from .adapters import (
    BottleneckAdapter,
    BottleneckAdapters,
    ZeroInitLinear,
    encoder_layers_of,
    init_lora,
    inject_lora,
    lora_config,
    lora_key_mapping,
    make_adapters_trainable_under_checkpointing,
    merge_lora,
)
from .backbones import check_hidden_states, load_model, load_preprocessor, preprocessor_file, public_source
from .batched_forward import encode, is_group_norm, pool_layers
from .configuration_hub_emo import EmoConfig
from .heads import AttentiveStatsPooling, EmoHead, LayerWeights, MeanPooling

logger = logging.getLogger(__name__)

#: `from_pretrained` arguments that decide which config it builds (where it is, and the adapter).
_CONFIG_LOADING_KWARGS = (
    "cache_dir", "force_download", "proxies", "token", "local_files_only", "revision", "subfolder",
    "adapter", "lora_target_modules",
)


@dataclass
class EmoClassifierOutput(ModelOutput):
    """Logits, the loss when labels were given, and what the model looked at.

    ``layer_weights`` are the softmax weights over hidden states (weighted sum only);
    ``hidden_states`` and ``attentions`` (one (batch, heads, frames, frames) map per layer)
    are the backbone's, returned when asked for.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    layer_weights: torch.FloatTensor | None = None


class EmoPreTrainedModel(PreTrainedModel):
    config_class = EmoConfig
    base_model_prefix = "backbone"  # the attribute holding the SSL encoder: model.base_model
    main_input_name = "input_values"
    supports_gradient_checkpointing = True

    def _init_weights(self, module):
        """hub_emo's own modules; the backbone's are initialised by the backbone's `_init_weights`.

        Runs on construction and on every weight a checkpoint lacks (transformers' init functions
        skip loaded ones), so adapters start as no-ops and the standardiser's statistics are the
        identity also when the model is loaded from a plain backbone or built on the meta device.
        """
        if isinstance(module, LayerWeights):
            init.zeros_(module.weights)
        elif isinstance(module, ZeroInitLinear):
            init.zeros_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    @classmethod
    def is_custom_code(cls) -> bool:
        """False, for weight initialisation's sake. For custom code transformers skips every module
        whose own weights are all loaded, a guard for remote code that writes weights in place; a
        module without weights of its own counts as loaded, so the native backbone's module-level
        inits (the positional convolution's zero bias, the feature projection's uniform init)
        would never run on a checkpoint lacking them. This file's `_init_weights` uses
        transformers' init functions, which skip loaded weights themselves."""
        return False

    def initialize_weights(self):
        """As transformers', then peft's init for LoRA layers: they sit inside the backbone, whose
        own `_init_weights` would give their zero-start B a random normal init."""
        super().initialize_weights()
        backbone = getattr(self, "backbone", None)
        if backbone is not None and self.config.adapter == "lora":
            with torch.no_grad():
                init_lora(backbone, init)


class EmoForAudioClassification(EmoPreTrainedModel):
    """Emotion classifier over any wav2vec2-family SSL encoder; see `EmoConfig` for every option."""

    # Attention runs inside the backbone: every implementation may be asked for, and the
    # backbone's own class accepts it or refuses with its own error (WavLM: eager only).
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True

    # forward takes **kwargs (for peft); the Trainer must not rescale the loss for it.
    accepts_loss_kwargs = False

    def __init__(self, config: EmoConfig):
        super().__init__(config)
        self.backbone = AutoModel.from_config(
            config.backbone_config, trust_remote_code=config.backbone_trust_remote_code
        )
        hidden = config.backbone_config.hidden_size
        if config.aggregation == "weighted_sum":
            self.layer_weights = LayerWeights(config.num_hidden_states)
        if config.pooling == "attentive_stats":
            self.pooling = AttentiveStatsPooling(hidden, config.attention_pool_size)
            pooled_size = 2 * hidden
        else:
            self.pooling = MeanPooling()
            pooled_size = hidden
        self.head = EmoHead(
            pooled_size,
            config.head_hidden_sizes,
            config.num_labels,
            config.head_activation,
            config.head_dropout,
            config.head_standardize,
        )
        # Adapters exist before weight initialisation, which gives them their no-op start
        # (LoRA's zero B, the bottleneck's zero up-projection) here and on loading alike.
        if config.adapter == "lora":
            inject_lora(self.backbone, config)
        elif config.adapter == "bottleneck":
            self.bottleneck = BottleneckAdapters(
                self.backbone, hidden, config.bottleneck_reduction, config.bottleneck_placement
            )
        if config.adapter != "none":
            make_adapters_trainable_under_checkpointing(self.backbone)
        # device_map="auto" keeps each transformer layer whole (residual, attention and the
        # adapters hooked onto it); post_init adds the backbone's own list.
        self._no_split_modules = sorted({type(layer).__name__ for layer in encoder_layers_of(
            getattr(self.backbone, "encoder", None))})
        self.post_init()
        self.apply_freezing()

    # ------------------------------------------------------------------ construction
    #: The backbone's preprocessor, saved with the model (`from_backbone` keeps it, `from_pretrained`
    #: reads it back), so a saved or pushed model loads with ``pipeline`` / ``AutoFeatureExtractor``.
    preprocessor = None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """As transformers' method. Loading replaces the parameters, so freezing is applied again;
        a LoRA model also loads weights saved without LoRA (a plain backbone, or ``adapter="none"``);
        and the folder's preprocessor comes along (a model saved without one gets none)."""
        if "key_mapping" not in kwargs and pretrained_model_name_or_path is not None:
            config = cls._config_for_loading(pretrained_model_name_or_path, kwargs)
            if getattr(config, "adapter", None) == "lora":
                kwargs["key_mapping"] = lora_key_mapping(config.lora_targets)
        loaded = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        # With output_loading_info=True transformers returns (model, loading_info).
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model.apply_freezing()
        if isinstance(pretrained_model_name_or_path, (str, os.PathLike)):
            model.preprocessor = cls._saved_preprocessor(str(pretrained_model_name_or_path), model.config, kwargs)
        return loaded

    @staticmethod
    def _saved_preprocessor(source: str, config, kwargs: dict):
        """The preprocessor saved beside a model, or None (a model saved without one)."""
        hub = {k: kwargs[k] for k in ("cache_dir", "token", "local_files_only") if k in kwargs}
        revision = kwargs.get("revision")
        try:
            if preprocessor_file(source, revision, **hub) is not None:
                return load_preprocessor(source, config, revision=revision, **hub)
        except ValueError as error:  # the weights loaded (e.g. offline, cached without it): say what is missing
            logger.warning("%s; this model will be saved without a preprocessor", error)
        return None

    @classmethod
    def _config_for_loading(cls, path, kwargs: dict):
        """The config `from_pretrained` will build, as far as the adapter is concerned."""
        config = kwargs.get("config")
        if isinstance(config, PretrainedConfig):
            return config
        if isinstance(config, (str, os.PathLike)):
            path = config
        options = {key: kwargs[key] for key in _CONFIG_LOADING_KWARGS if key in kwargs}
        return cls.config_class.from_pretrained(path, **options)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """As transformers' method, plus the preprocessor (``preprocessor_config.json``); ``push_to_hub``
        saves through here, so it pushes the preprocessor too."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if self.preprocessor is not None and kwargs.get("is_main_process", True):
            self.preprocessor.save_pretrained(save_directory)

    @classmethod
    def from_backbone(
        cls,
        backbone: str | os.PathLike | PreTrainedModel,
        labels=None,
        *,
        trust_remote_code: bool = False,
        revision: str | None = None,
        feature_extractor=None,
        **config_options,
    ) -> "EmoForAudioClassification":
        """A new classifier on a pretrained backbone (Hub id, folder, or loaded model).

        ``labels`` is a list of class names or an ``id2label`` dict; ``config_options`` are
        any `EmoConfig` arguments (aggregation, adapter, pooling, ...). The model keeps the
        backbone's preprocessor (``feature_extractor``, else the one at the backbone's source, else
        its family's published one) and saves it beside itself.
        """
        if isinstance(backbone, PreTrainedModel):
            pretrained = backbone
            source = backbone.config.name_or_path or None
        else:
            source = str(backbone)
            pretrained = load_model(source, trust_remote_code=trust_remote_code, revision=revision)
        if labels is not None:
            id2label = dict(labels) if isinstance(labels, dict) else dict(enumerate(labels))
            config_options["id2label"] = {int(k): str(v) for k, v in id2label.items()}
            config_options["label2id"] = {v: k for k, v in config_options["id2label"].items()}
        backbone_config = copy.deepcopy(pretrained.config)
        recorded = public_source(source, pretrained)
        if backbone_config.model_type in CONFIG_MAPPING:  # remote code needs the path to its repository
            backbone_config._name_or_path = recorded or ""
        config = EmoConfig(
            backbone_config=backbone_config,
            backbone_name_or_path=recorded,
            backbone_trust_remote_code=trust_remote_code,
            **config_options,
        )
        model = cls(config)
        model.load_backbone_weights(pretrained.state_dict())
        if feature_extractor is None:  # a loaded model's own folder, if it still exists, else its family's
            where = source if not isinstance(backbone, PreTrainedModel) or os.path.isdir(source or "") else None
            feature_extractor = load_preprocessor(where, pretrained.config, trust_remote_code=trust_remote_code,
                                                  revision=revision)
        model.preprocessor = feature_extractor
        return model

    def load_backbone_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a plain backbone's weights, also when LoRA has wrapped some of its layers."""
        own = self.backbone.state_dict()
        mapped = {}
        for key, value in state_dict.items():
            if key in own:
                mapped[key] = value
                continue
            module, _, param = key.rpartition(".")
            wrapped = f"{module}.base_layer.{param}"
            if wrapped not in own:
                raise ValueError(f"backbone weight {key!r} has no place in {type(self.backbone).__name__}")
            mapped[wrapped] = value
        missing = [k for k in own if k not in mapped and "lora_" not in k]
        if missing:
            raise ValueError(f"backbone checkpoint lacks {len(missing)} weights, e.g. {missing[:3]}")
        self.backbone.load_state_dict(mapped, strict=False)

    # ------------------------------------------------------------------ training set-up
    def apply_freezing(self) -> None:
        """Set requires_grad as the config says: adapters, layer weights and head always train."""
        cfg = self.config
        for name, param in self.backbone.named_parameters():
            param.requires_grad = not cfg.freeze_backbone or "lora_" in name
        encoder = getattr(self.backbone, "feature_extractor", None)
        if encoder is not None and (cfg.freeze_feature_encoder or cfg.freeze_backbone):
            # _freeze_parameters also stops the encoder from marking its output as needing
            # grad, which would otherwise backpropagate through the whole frozen stack.
            if hasattr(encoder, "_freeze_parameters"):
                encoder._freeze_parameters()
            else:
                encoder.requires_grad_(False)

    def train(self, mode: bool = True):
        """As nn.Module.train, but a fully frozen backbone stays in eval mode.

        Nothing in it learns, so its dropout and SpecAugment would only add noise to the
        features the head sees (s3prl keeps a frozen upstream in eval mode too).
        """
        super().train(mode)
        if mode and not self.backbone_needs_grad:
            self.backbone.eval()
        return self

    @property
    def backbone_needs_grad(self) -> bool:
        """False when nothing inside or after the backbone's layers trains through it."""
        return not self.config.freeze_backbone or self.config.adapter != "none"

    # ------------------------------------------------------------------ forward
    def _frame_mask(self, frames: torch.Tensor, attention_mask: torch.Tensor | None):
        if attention_mask is None:
            return None
        return self.backbone._get_feature_vector_attention_mask(frames.shape[1], attention_mask)

    @property
    def num_layer_features(self) -> int:
        """Rows of `extract_layer_features`: every hidden state, then the backbone's final output."""
        return self.config.num_hidden_states + 1

    def layer_weight_shares(self) -> list[float] | None:
        """Each hidden state's share of the weighted sum (the softmax of the learned weights), for
        reports and plots; None without a weighted sum."""
        module = getattr(self, "layer_weights", None)
        if module is None:
            return None
        with torch.no_grad():
            return torch.softmax(module.weights.detach().float(), dim=0).tolist()

    @property
    def accepts_layer_features(self) -> bool:
        """Whether `forward(layer_features=...)` is exact: mean pooling, and nothing in the
        backbone trains (its features would otherwise change every step)."""
        return self.config.pooling == "mean" and not self.backbone_needs_grad

    def _encode(self, input_values, attention_mask, need_all: bool, output_attentions: bool = False):
        """Run the backbone: (hidden_states or None, last_hidden_state, frame mask, attentions or None).

        Outside training each clip of a right-padded batch gets the output it gets alone
        (`batched_forward.encode`: a group-norm backbone's first GroupNorm runs per clip, the
        rest is masked), so logits never depend on the batch. A group-norm backbone
        (``feat_extract_norm="group"``: wav2vec2-base, HuBERT-base) that trains keeps the zero-
        padded batch without a mask, as it was pretrained and as transformers' recipe does.
        """
        grad = nullcontext() if self.backbone_needs_grad else torch.no_grad()
        with grad:
            if is_group_norm(self.backbone) and self.backbone.training:
                out = self.backbone(input_values, output_hidden_states=need_all,
                                    output_attentions=output_attentions, return_dict=True)
                frame_mask = self._frame_mask(out.last_hidden_state, attention_mask)
            else:
                out, frame_mask = encode(self.backbone, input_values, attention_mask, need_all,
                                         output_attentions=output_attentions)
        hidden_states = out.hidden_states
        if need_all:
            name = self.config.backbone_name_or_path or self.config.backbone_config.model_type
            check_hidden_states(hidden_states, self.config.num_hidden_states, repr(name))
        return hidden_states, out.last_hidden_state, frame_mask, getattr(out, "attentions", None)

    def extract_layer_features(
        self, input_values: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(batch, num_hidden_states + 1, hidden): the masked mean of every hidden state, then of
        the backbone's final output (state L: for pre-norm models both are taken after the final
        LayerNorm, see `backbones.reference_layers`). ``forward(layer_features=...)``
        takes them instead of audio; with mean pooling the result is the same, since a
        weighted sum of per-layer means is the mean of the weighted sum. A frozen backbone's
        features can thus be computed once per clip and cached (as s3prl/SUPERB do).
        """
        hidden_states, last, frame_mask, _ = self._encode(input_values, attention_mask, need_all=True)
        return pool_layers(hidden_states, last, frame_mask)

    def _check_layer_features(self, layer_features: torch.Tensor) -> None:
        cfg = self.config
        if cfg.pooling != "mean":
            raise ValueError(
                f"layer_features are per-layer means; pooling={cfg.pooling!r} needs the frames, give input_values"
            )
        if self.backbone_needs_grad:
            raise ValueError(
                f"layer_features need a frozen backbone without adapters (this one has adapter={cfg.adapter!r}, "
                f"freeze_backbone={cfg.freeze_backbone}): its features change as it trains, give input_values"
            )
        expected = (self.num_layer_features, cfg.backbone_config.hidden_size)
        if layer_features.dim() != 3 or tuple(layer_features.shape[1:]) != expected:
            raise ValueError(
                f"layer_features must be (batch, {expected[0]}, {expected[1]}) as extract_layer_features "
                f"returns, got {tuple(layer_features.shape)}"
            )

    def _aggregate_pooled(self, layer_features: torch.Tensor):
        """Pooled features and layer weights from (batch, num_hidden_states + 1, hidden)."""
        cfg = self.config
        if cfg.aggregation == "weighted_sum":
            return self.layer_weights(layer_features[:, : cfg.num_hidden_states])
        if cfg.aggregation == "last":
            return layer_features[:, -1], None
        return layer_features[:, cfg.layer_index], None

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        layer_features: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        **kwargs,
    ) -> EmoClassifierOutput | tuple:
        """Classify a batch of raw waveforms (batch, samples) at the backbone's rate, or their
        cached ``layer_features`` (see `extract_layer_features`; frozen backbone, mean pooling).

        ``attention_mask`` (1 = real sample) masks padding in pooling; it reaches the backbone
        unless the backbone was pretrained without masks (``feat_extract_norm="group"``, e.g.
        wav2vec2-base), which expects zero padding instead, as transformers documents.
        ``output_hidden_states``, ``output_attentions`` and ``return_dict`` default to the
        config's, as in every transformers model.
        """
        cfg = self.config
        output_hidden_states = cfg.output_hidden_states if output_hidden_states is None else output_hidden_states
        output_attentions = cfg.output_attentions if output_attentions is None else output_attentions
        hidden_states = weights = attentions = None
        if layer_features is not None:
            if input_values is not None:
                raise ValueError("give input_values or layer_features, not both")
            self._check_layer_features(layer_features)
            pooled, weights = self._aggregate_pooled(layer_features)
        elif input_values is None:
            raise ValueError("forward needs input_values (or layer_features)")
        else:
            need_all = cfg.aggregates_layers or bool(output_hidden_states)
            hidden_states, last, frame_mask, attentions = self._encode(
                input_values, attention_mask, need_all, output_attentions
            )
            if cfg.pooling == "mean" and cfg.aggregates_layers:
                # Pool each layer, then aggregate: the very computation of the cached path.
                pooled, weights = self._aggregate_pooled(pool_layers(hidden_states, last, frame_mask))
            else:
                if cfg.aggregation == "weighted_sum":
                    frames, weights = self.layer_weights(torch.stack(hidden_states, dim=1))
                elif cfg.aggregation == "last":
                    frames = last
                else:
                    frames = hidden_states[cfg.layer_index]
                pooled = self.pooling(frames, frame_mask)
        logits = self.head(pooled)
        output = EmoClassifierOutput(
            loss=None if labels is None else self._loss(logits, labels),
            logits=logits,
            hidden_states=hidden_states if output_hidden_states else None,
            attentions=attentions if output_attentions else None,
            layer_weights=weights,
        )
        return output if (cfg.return_dict if return_dict is None else return_dict) else output.to_tuple()

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = None
        if self.config.class_weights is not None:
            weight = torch.tensor(self.config.class_weights, dtype=logits.dtype, device=logits.device)
        return nn.functional.cross_entropy(logits.view(-1, self.config.num_labels), labels.view(-1), weight=weight)

    # ------------------------------------------------------------------ adapters
    def merge_and_unload(self) -> "EmoForAudioClassification":
        """Fold LoRA into the backbone weights for inference; the config becomes adapter='none'."""
        if self.config.adapter != "lora":
            raise ValueError(f"merge_and_unload needs a LoRA model, this one has adapter={self.config.adapter!r}")
        merge_lora(self.backbone)
        self.config.adapter = "none"
        self.apply_freezing()
        return self

    def adapter_modules_to_save(self) -> list[str]:
        """Modules that train beside LoRA and so belong in an adapter-only export."""
        names = ["head"]
        if self.config.aggregation == "weighted_sum":
            names.append("layer_weights")
        if self.config.pooling == "attentive_stats":
            names.append("pooling")
        return names

    def save_adapter(self, save_directory: str | os.PathLike) -> None:
        """Write a small peft folder (LoRA + head) that `PeftModel.from_pretrained` loads.

        The base for it is this model's architecture without the adapter: e.g.
        ``EmoForAudioClassification.from_backbone(backbone, labels, adapter="none", ...)``.
        """
        if self.config.adapter != "lora":
            raise ValueError(
                f"an adapter-only export needs adapter='lora'; this model has adapter={self.config.adapter!r}"
            )
        from peft import get_peft_model

        base_config = copy.deepcopy(self.config)
        base_config.adapter = "none"
        base = type(self)(base_config)
        peft_model = get_peft_model(base, lora_config(self.config, self.adapter_modules_to_save()))
        target = peft_model.state_dict()
        state = {}
        for key, value in self.state_dict().items():
            top = key.split(".", 1)[0]
            if top in self.adapter_modules_to_save():
                rest = key.split(".", 1)[1]
                state[f"base_model.model.{top}.modules_to_save.default.{rest}"] = value
            elif "lora_" in key:
                state[f"base_model.model.{key}"] = value
        unknown = [k for k in state if k not in target]
        if unknown:
            raise RuntimeError(f"adapter export does not match peft's layout: {unknown[:3]}")
        peft_model.load_state_dict(state, strict=False)
        peft_model.peft_config["default"].base_model_name_or_path = self.config.backbone_name_or_path
        peft_model.save_pretrained(str(save_directory), safe_serialization=True)


__all__ = ["EmoForAudioClassification", "EmoPreTrainedModel", "EmoClassifierOutput", "BottleneckAdapter"]
