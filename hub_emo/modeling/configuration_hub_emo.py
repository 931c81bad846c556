"""`EmoConfig`: the single source of truth for a hub_emo emotion classifier.

SSL backbone → layer aggregation → pooling → head, with optional adapters inside the
backbone. Every knob is a constructor argument, saved in ``config.json``; the model reads
nothing else. This file is copied as remote code: it imports only transformers.
"""

from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from .backbones import config_from_dict, reference_layers

AGGREGATIONS = ("last", "weighted_sum")
POOLINGS = ("mean", "attentive_stats")
ADAPTERS = ("none", "lora", "bottleneck")
BOTTLENECK_PLACEMENTS = ("attention", "feed_forward")
ACTIVATIONS = ("relu", "gelu", "tanh")

#: LoRA targets when none are given. WavLM's attention passes q/k/v weights straight to
#: F.multi_head_attention_forward, bypassing the modules, so LoRA on any attention projection would
#: train nothing there: it gets the feed-forward layers instead.
DEFAULT_LORA_TARGETS = {"wavlm": ["intermediate_dense", "output_dense"]}
LORA_TARGETS_FALLBACK = ["q_proj", "v_proj"]
BYPASSED_LORA_TARGETS = {"wavlm": {"q_proj", "k_proj", "v_proj", "out_proj"}}


def _backbone_config_from(value, trust_remote_code: bool):
    """Turn a config object, a dict, or None into a backbone config object."""
    if value is None:
        return CONFIG_MAPPING["wav2vec2"]()
    if isinstance(value, PretrainedConfig):
        return reference_layers(value)
    if not isinstance(value, dict):
        raise TypeError(
            f"backbone_config must be a transformers config or its dict, got {type(value).__name__}"
        )
    return config_from_dict(value, trust_remote_code)


class EmoConfig(PretrainedConfig):
    r"""Configuration of [`EmoForAudioClassification`].

    Args:
        backbone_config (`PretrainedConfig` or `dict`, *optional*):
            The SSL encoder's own configuration (wav2vec2, HuBERT, WavLM, data2vec-audio; MERT's
            ``mert_model`` config becomes the `HubertConfig` that builds it, see `backbones`).
            Defaults to a wav2vec2-base-shaped config.
        backbone_name_or_path (`str`, *optional*):
            Where the backbone's weights came from (Hub id or folder); recorded for model cards.
        backbone_trust_remote_code (`bool`, defaults to `False`):
            Allow a backbone whose code lives in its repository. MERT does not need it: it loads
            natively, and its repository's code is never run.
        aggregation (`str` or `int`, defaults to `"weighted_sum"`):
            How hidden states become one sequence: `"last"` (the last layer), an integer layer
            index into the hidden states (0 = the first transformer layer's input: the projected
            CNN features plus their positional-convolution embedding, LayerNorm-ed in post-norm
            models; L = the last transformer layer; negative counts from the end), or `"weighted_sum"` (learned
            softmax weights over all L + 1 hidden states, as SUPERB/s3prl do).
        pooling (`str`, defaults to `"mean"`):
            `"mean"` (masked mean over frames) or `"attentive_stats"` (attentive statistics
            pooling: attention-weighted mean and standard deviation).
        attention_pool_size (`int`, defaults to 128): hidden size of the attentive pooling scorer.
        head_hidden_sizes (`list[int]`, defaults to `[128, 16]`):
            Hidden sizes of the MLP head; `[]` gives a linear head. The default has the sizes
            of the paper group's probe head (768→128→16→C); unlike that probe, this head also
            standardises its input (`head_standardize`) and uses dropout (`head_dropout`).
        head_standardize (`bool`, defaults to `True`):
            Standardise each pooled dimension with running statistics (BatchNorm without
            affine parameters) before the MLP, as probes standardise their features: SSL
            hidden states have large per-dimension offsets next to small between-clip
            differences, and without it the head may not learn at all.
        head_activation (`str`, defaults to `"relu"`): `"relu"`, `"gelu"` or `"tanh"`.
        head_dropout (`float`, defaults to 0.1): dropout before each head layer.
        adapter (`str`, defaults to `"none"`): `"none"`, `"lora"` (via peft) or `"bottleneck"`.
        lora_rank (`int`, defaults to 16), lora_alpha (`int`, defaults to 32),
        lora_dropout (`float`, defaults to 0.05),
        lora_target_modules (`list[str]`, *optional*):
            LoRA settings (rank 16 as in peft-ser); module names are matched inside the backbone.
            Default: `["q_proj", "v_proj"]`, or for WavLM (whose attention bypasses its q/k/v
            modules) `["intermediate_dense", "output_dense"]`.
        bottleneck_reduction (`int`, defaults to 16):
            Bottleneck adapter width = hidden_size // reduction (Houlsby/Pfeiffer adapters).
        bottleneck_placement (`list[str]`, defaults to `["feed_forward"]`):
            Where residual bottleneck adapters sit in every transformer layer: after the
            feed-forward block only (Pfeiffer et al. 2021, the default: half the cost, similar
            accuracy) or also after attention (`["attention", "feed_forward"]`, Houlsby et al. 2019).
        freeze_backbone (`bool`, defaults to `True`):
            Freeze every backbone weight (adapters stay trainable). With no adapter, the backbone
            then runs without gradients, which halves step time and memory, and stays in eval
            mode while training (no dropout or SpecAugment on features nothing learns from).
        freeze_feature_encoder (`bool`, defaults to `True`):
            Freeze the convolutional feature encoder (the field's default for full fine-tuning).
        class_weights (`list[float]`, *optional*): per-class weights of the cross-entropy loss.
        id2label / label2id / num_labels: the classes, as in every transformers config.
    """

    model_type = "hub_emo"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(AutoConfig, model_type="wav2vec2", optional=True)
    }
    keys_to_ignore_at_inference = ["hidden_states", "attentions", "layer_weights"]

    def __init__(
        self,
        backbone_config=None,
        backbone_name_or_path: str | None = None,
        backbone_trust_remote_code: bool = False,
        aggregation: str | int = "weighted_sum",
        pooling: str = "mean",
        attention_pool_size: int = 128,
        head_hidden_sizes=(128, 16),
        head_standardize: bool = True,
        head_activation: str = "relu",
        head_dropout: float = 0.1,
        adapter: str = "none",
        lora_rank: int = 16,
        lora_alpha: int = 32,
        lora_dropout: float = 0.05,
        lora_target_modules=None,
        bottleneck_reduction: int = 16,
        bottleneck_placement=("feed_forward",),
        freeze_backbone: bool = True,
        freeze_feature_encoder: bool = True,
        class_weights=None,
        **kwargs,
    ):
        self.backbone_trust_remote_code = bool(backbone_trust_remote_code)
        self.backbone_config = _backbone_config_from(backbone_config, self.backbone_trust_remote_code)
        self.backbone_name_or_path = backbone_name_or_path
        self.aggregation = aggregation
        self.pooling = pooling
        self.attention_pool_size = int(attention_pool_size)
        self.head_hidden_sizes = [int(s) for s in head_hidden_sizes]
        self.head_standardize = bool(head_standardize)
        self.head_activation = head_activation
        self.head_dropout = float(head_dropout)
        self.adapter = adapter
        self.lora_rank = int(lora_rank)
        self.lora_alpha = int(lora_alpha)
        self.lora_dropout = float(lora_dropout)
        self.lora_target_modules = None if lora_target_modules is None else list(lora_target_modules)
        self.bottleneck_reduction = int(bottleneck_reduction)
        self.bottleneck_placement = list(bottleneck_placement)
        self.freeze_backbone = bool(freeze_backbone)
        self.freeze_feature_encoder = bool(freeze_feature_encoder)
        self.class_weights = None if class_weights is None else [float(w) for w in class_weights]
        super().__init__(**kwargs)
        self._validate()
        if self.aggregates_layers or self.layers_train:
            # Layer drop removes hidden states in training mode: a weighted sum then sees
            # fewer layers and a layer index silently shifts. Where the layers hold trainable
            # weights (adapters, full fine-tuning), a dropped layer's weights get no gradient
            # in that step, which DDP without find_unused_parameters (hub_emo's trainer, and
            # transformers' under gradient checkpointing) stops on.
            self.backbone_config.layerdrop = 0.0

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """As transformers' method; a bare backbone's config (another ``model_type``) becomes the
        ``backbone_config`` of a default hub_emo config, so ``from_pretrained`` on a backbone folder
        builds a classifier on it (its weights then load under ``backbone``)."""
        model_type = config_dict.get("model_type")
        if model_type is not None and model_type != cls.model_type:
            config_dict = {"backbone_config": dict(config_dict)}
        return super().from_dict(config_dict, **kwargs)

    @property
    def num_hidden_states(self) -> int:
        """Hidden states the backbone returns: the CNN/projection output plus one per layer."""
        return int(self.backbone_config.num_hidden_layers) + 1

    @property
    def lora_targets(self) -> list[str]:
        """The LoRA target module names in force (the explicit ones, or the backbone's default)."""
        if self.lora_target_modules is not None:
            return list(self.lora_target_modules)
        return list(DEFAULT_LORA_TARGETS.get(self.backbone_config.model_type, LORA_TARGETS_FALLBACK))

    @property
    def layers_train(self) -> bool:
        """Whether the backbone's transformer layers hold weights that train (adapters or full fine-tuning)."""
        return self.adapter != "none" or not self.freeze_backbone

    @property
    def aggregates_layers(self) -> bool:
        return self.aggregation != "last"

    @property
    def layer_index(self) -> int | None:
        """The hidden-state index the model reads, or None for a weighted sum."""
        if self.aggregation == "weighted_sum":
            return None
        if self.aggregation == "last":
            return self.num_hidden_states - 1
        return self.aggregation % self.num_hidden_states

    def _validate(self):
        for attr in ("hidden_size", "num_hidden_layers"):
            if not hasattr(self.backbone_config, attr):
                raise ValueError(
                    f"backbone {self.backbone_config.model_type!r} has no {attr!r}: hub_emo needs an "
                    "encoder that returns hidden states of one size per layer"
                )
        if isinstance(self.aggregation, bool) or not isinstance(self.aggregation, (str, int)):
            raise ValueError(f"aggregation must be one of {AGGREGATIONS} or a layer index, got {self.aggregation!r}")
        if isinstance(self.aggregation, str):
            if self.aggregation.lstrip("-").isdigit():
                self.aggregation = int(self.aggregation)
            elif self.aggregation not in AGGREGATIONS:
                raise ValueError(
                    f"unknown aggregation {self.aggregation!r}; use one of {AGGREGATIONS} or a layer index"
                )
        if isinstance(self.aggregation, int):
            n = self.num_hidden_states
            if not -n <= self.aggregation < n:
                raise ValueError(
                    f"layer index {self.aggregation} out of range: the backbone has {n} hidden "
                    f"states (0 = the first layer's input, {n - 1} = last layer)"
                )
        if self.aggregates_layers and getattr(self.backbone_config, "add_adapter", False):
            out = getattr(self.backbone_config, "output_hidden_size", self.backbone_config.hidden_size)
            if out != self.backbone_config.hidden_size:
                raise ValueError(
                    "the backbone's add_adapter changes the last hidden size "
                    f"({self.backbone_config.hidden_size} → {out}), so its hidden states cannot be "
                    "aggregated; use aggregation='last' or a backbone without add_adapter"
                )
        checks = (
            ("pooling", self.pooling, POOLINGS),
            ("adapter", self.adapter, ADAPTERS),
            ("head_activation", self.head_activation, ACTIVATIONS),
        )
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; use one of {allowed}")
        bad = [p for p in self.bottleneck_placement if p not in BOTTLENECK_PLACEMENTS]
        if bad or (self.adapter == "bottleneck" and not self.bottleneck_placement):
            raise ValueError(
                f"bottleneck_placement must be a non-empty subset of {BOTTLENECK_PLACEMENTS}, got {self.bottleneck_placement}"
            )
        bypassed = BYPASSED_LORA_TARGETS.get(self.backbone_config.model_type, set()) & set(self.lora_targets)
        if self.adapter == "lora" and bypassed:
            raise ValueError(
                f"LoRA on {sorted(bypassed)} would train nothing in {self.backbone_config.model_type}: its "
                "attention reads those weights directly, bypassing the modules; target "
                f"{DEFAULT_LORA_TARGETS[self.backbone_config.model_type]} instead"
            )
        if self.bottleneck_reduction < 1 or self.lora_rank < 1:
            raise ValueError("bottleneck_reduction and lora_rank must be positive")
        if self.class_weights is not None and len(self.class_weights) != self.num_labels:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} values for {self.num_labels} labels"
            )
