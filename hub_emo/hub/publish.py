"""Publish a trained model to a Hub (the local one by default, the real one via ``HF_ENDPOINT``).

``push_model`` uploads a model folder (or only its LoRA adapter) with a generated model
card in one commit. The card comes from ``model_cards/model_card.md`` through
huggingface_hub's ``ModelCard.from_template``, so its metadata (``library_name``,
``pipeline_tag``, ``base_model``, ``datasets``, ``metrics``, ``license``, ``model-index``)
is written and checked by huggingface_hub's own classes.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from huggingface_hub import CommitInfo, CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData

from hub_emo.paths import is_hub_id
from model_cards import template_path

#: Files of a model folder that belong on the Hub (weights in safetensors only).
PUSHED_SUFFIXES = (".json", ".safetensors", ".py")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
#: Metric keys of results.json -> (model-index metric type, readable name, args).
METRICS = {
    "accuracy": ("accuracy", "Accuracy (WA)", None),
    "balanced_accuracy": ("balanced_accuracy", "Balanced accuracy (UA)", None),
    "macro_f1": ("f1", "Macro F1", {"average": "macro"}),
    "f1": ("f1", "F1", None),
}
DEFAULT_LICENSE = "apache-2.0"


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: missing; {what}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def read_results(model_dir: str | os.PathLike) -> dict:
    """``results.json`` of a training run (cleaned by ``clean_results``), or ``{}``."""
    path = Path(model_dir) / "results.json"
    return clean_results(_read_json(path, "")) if path.is_file() else {}


def clean_results(raw: dict) -> dict:
    """Metric values, ``dataset``, ``strategy`` (and a few more) from a run's results dict.

    Trainer-style prefixes (``eval_``, ``test_``) are dropped; non-numeric or non-finite
    metric values are ignored rather than trusted. A cross-validated run adds ``std`` (per
    metric, over folds), ``cv_folds`` and ``selection`` (how the published fold was chosen).
    """
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = re.sub(r"^(eval|test)_", "", str(key))
        if name in METRICS:
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                out[name] = float(value)
        elif name in ("dataset", "strategy", "split", "license", "domain", "selection"):
            out[name] = value
        elif name == "std" and isinstance(value, dict):
            out[name] = {k: float(v) for k, v in value.items()
                         if k in METRICS and isinstance(v, (int, float)) and math.isfinite(v)}
        elif name == "cv_folds" and isinstance(value, int):
            out[name] = value
        elif name == "synthetic":
            out[name] = bool(value)
    return out


def eval_results_from(results: dict, dataset: str, split: str | None = None) -> list[EvalResult]:
    """``EvalResult`` entries (the card's ``model-index``) for the metrics found in ``results``."""
    entries = []
    for key, (metric_type, metric_name, metric_args) in METRICS.items():
        if key in results:
            entries.append(
                EvalResult(
                    task_type="audio-classification",
                    task_name="Emotion recognition",
                    dataset_type=dataset,
                    dataset_name=dataset,
                    dataset_split=split,
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=round(results[key], 6),
                    metric_args=metric_args,
                )
            )
    return entries


def layer_convention(backbone: dict) -> str:
    """How the card's layers are numbered: hub_emo's convention (see `hub_emo.modeling.backbones`)."""
    text = "Hidden state 0 is the first transformer layer's input and state L the output of layer L"
    if not backbone.get("do_stable_layer_norm"):
        return text + "."
    if backbone.get("tie_last_hidden_states"):
        return text + " (the last one after the encoder's final LayerNorm, as transformers 4.x and MERT give it)."
    return text + " (the last one before the encoder's final LayerNorm, transformers 5's default)."


def _describe(config: dict) -> dict:
    """What the card says about the architecture, from a hub_emo or a stock transformers config."""
    if config.get("model_type") == "hub_emo":
        backbone = config.get("backbone_config") or {}
        aggregation = config.get("aggregation", "weighted_sum")
        pooling = config.get("pooling", "mean")
        adapter = config.get("adapter", "none")
        head = config.get("head_hidden_sizes", [])
        source = config.get("backbone_name_or_path")
    else:  # a stock transformers audio classifier (e.g. Wav2Vec2ForSequenceClassification)
        backbone = config
        aggregation = "weighted_sum" if config.get("use_weighted_layer_sum") else "last"
        pooling, adapter = "mean", "none"
        head = [config["classifier_proj_size"]] if config.get("classifier_proj_size") else []
        source = config.get("_name_or_path")
    if aggregation == "weighted_sum":
        aggregation_text = "combined by a learned softmax-weighted sum over all layers"
    elif aggregation == "last":
        aggregation_text = "taken from the last layer"
    else:
        aggregation_text = f"taken from layer {aggregation}"
    if adapter == "lora":
        adapter_text = (
            f"LoRA (rank {config.get('lora_rank')}, alpha {config.get('lora_alpha')}) on "
            f"{', '.join(_lora_targets(config))}"
        )
    elif adapter == "bottleneck":
        adapter_text = (
            f"bottleneck adapters (reduction {config.get('bottleneck_reduction')}) after "
            f"{' and '.join(config.get('bottleneck_placement') or [])}"
        )
    else:
        adapter_text = "none"
    return {
        "backbone": source or backbone.get("model_type", "unknown"),
        "base_model": source if source and is_hub_id(source) else None,
        "backbone_type": backbone.get("model_type", "unknown"),
        "num_layers": backbone.get("num_hidden_layers", "?"),
        "hidden_size": backbone.get("hidden_size", "?"),
        "aggregation": aggregation,
        "aggregation_text": aggregation_text,
        "layer_convention": layer_convention(backbone),
        "pooling": pooling,
        "pooling_text": "mean-pooled" if pooling == "mean" else "pooled by attentive statistics",
        "adapter": adapter,
        "adapter_text": adapter_text,
        "head_hidden_sizes": list(head),
        "frozen": config.get("freeze_backbone", False),
    }


def _lora_targets(config: dict) -> list[str]:
    """The LoRA targets in force, as the model resolves them from its config (WavLM: feed-forward)."""
    from hub_emo.modeling.configuration_hub_emo import EmoConfig

    return EmoConfig.from_dict(config).lora_targets


def _labels(config: dict, source: str) -> list[tuple[int, str]]:
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise ValueError(f"{source}: config has no id2label; a classifier needs its label names")
    try:
        return sorted((int(k), str(v)) for k, v in id2label.items())
    except ValueError:
        raise ValueError(f"{source}: id2label keys must be integers") from None


def render_model_card(
    config: dict,
    repo_id: str,
    results: dict | None = None,
    eval_results: list[EvalResult] | None = None,
    adapter_only: bool = False,
    license: str | None = None,  # noqa: A002 - the Hub's field name
    sampling_rate: int = 16000,
    source: str = "config.json",
) -> ModelCard:
    """The model card for ``config`` (a ``config.json`` dict) and a run's ``results``.

    ``eval_results`` (huggingface_hub ``EvalResult``) replace the ones derived from
    ``results``. The card is rebuilt from its own text before returning, so metadata that
    huggingface_hub cannot read back fails here, not on the Hub.
    """
    results = dict(results or {})
    about = _describe(config)
    labels = _labels(config, source)
    datasets = results.get("dataset") or []
    datasets = [datasets] if isinstance(datasets, str) else [str(d) for d in datasets]
    if eval_results is None:
        eval_results = eval_results_from(results, datasets[0] if datasets else "unknown", results.get("split"))
    domain = str(results.get("domain") or "speech and music")
    metric_types = sorted({r.metric_type for r in eval_results}) or ["accuracy", "f1"]
    tags = ["audio-classification", "emotion-recognition", "hub_emo", about["backbone_type"]]
    if about["adapter"] != "none":
        tags.append(about["adapter"])
    card_data = ModelCardData(
        model_name=repo_id,
        library_name="peft" if adapter_only else "transformers",
        pipeline_tag="audio-classification",
        base_model=about["base_model"],
        datasets=datasets or None,
        metrics=metric_types,
        license=license or results.get("license") or DEFAULT_LICENSE,
        tags=tags,
        eval_results=eval_results or None,
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(template_path("model_card.md")),
        model_id=repo_id,
        labels=labels,
        label_names=[name for _, name in labels],
        domain_text=domain,
        results=eval_results,
        strategy_text=_strategy_text(results.get("strategy"), about),
        adapter_only=adapter_only,
        aggregation_repr=repr(about["aggregation"]),
        sampling_rate=sampling_rate,
        synthetic=bool(results.get("synthetic")),
        std={METRICS[k][1]: v for k, v in (results.get("std") or {}).items()},
        cv_folds=results.get("cv_folds"),
        selection=results.get("selection"),
        **{k: v for k, v in about.items() if k not in ("base_model",)},
    )
    return ModelCard(str(card))  # parse back: invalid metadata raises here


def _strategy_text(strategy: str | None, about: dict) -> str:
    """The card's sentence on how the model was trained and how it reads the backbone."""
    return (f"Strategy: `{strategy}`. " if strategy else "") + (
        "The backbone was frozen; " if about["frozen"] else "The backbone was fine-tuned; "
    ) + f"hidden states {about['aggregation_text']}; adapter: {about['adapter_text']}. " + about["layer_convention"]


def _weights_files(model_dir: Path) -> list[Path]:
    files = sorted(p for p in model_dir.iterdir() if p.is_file() and p.suffix in PUSHED_SUFFIXES)
    if not any(p.suffix == ".safetensors" for p in files):
        pickles = [p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES]
        hint = f" (found pickled weights {pickles}: re-save with safe_serialization=True)" if pickles else ""
        raise ValueError(f"{model_dir}: no .safetensors weights to push{hint}")
    return files


def sampling_rate_of_folder(model_dir: Path) -> int:
    """The rate a saved model is fed at: that of the preprocessor loading it gives
    (`hub_emo.modeling.backbones.load_preprocessor`: its ``preprocessor_config.json``, else its
    family's published one at the rate its config records), so the card states no other rate."""
    from hub_emo.modeling.backbones import load_config, load_preprocessor

    return int(load_preprocessor(model_dir, load_config(model_dir)).sampling_rate)


def push_model(
    model_dir: str | os.PathLike,
    repo_id: str,
    private: bool = False,
    adapter_only: bool = False,
    token: str | None = None,
    eval_results: list[EvalResult] | dict | None = None,
    license: str | None = None,  # noqa: A002
) -> CommitInfo:
    """Push a saved model folder (or only its LoRA adapter) with a model card, in one commit.

    ``eval_results`` may be ``EvalResult`` entries or a dict of metrics like ``results.json``;
    by default the folder's ``results.json`` is used. The token comes from ``token``, else
    ``HF_TOKEN`` or the saved login; it is never printed.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ValueError(f"{model_dir}: not a model folder")
    config_path = model_dir / "config.json"
    config = _read_json(config_path, "a model folder needs the config.json written by save_pretrained")
    results = read_results(model_dir)
    if isinstance(eval_results, dict):
        results.update(clean_results(eval_results))
        eval_results = None
    card = render_model_card(
        config, repo_id, results, eval_results, adapter_only, license, sampling_rate_of_folder(model_dir),
        str(config_path),
    )
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="hub_emo_push_") as tmp:
        if adapter_only:
            folder = _export_adapter(model_dir, config, Path(tmp))
            files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != "README.md")  # the card replaces peft's
            message = "Upload hub_emo LoRA adapter"
        else:
            files = _weights_files(model_dir)
            message = "Upload hub_emo model"
        operations = [CommitOperationAdd(path_in_repo=p.name, path_or_fileobj=str(p)) for p in files]
        operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=str(card).encode()))
        repo = api.create_repo(repo_id, private=private, exist_ok=True)
        return api.create_commit(repo.repo_id, operations, commit_message=message)


def push_training_run(results: dict, repo_id: str, private: bool = False) -> str:
    """Push the fold model a `hub_emo.training.train` run chose on validation (``best_fold``) with a
    card giving the cross-validated test scores (mean ± std over folds) and how the model was chosen.

    Training never pushes (it comes before the Hub stage); its caller does, with this.
    Returns the commit URL.
    """
    from hub_emo.metric import SUMMARY_METRICS

    eval_results = {k: results[k] for k in SUMMARY_METRICS if k in results}
    eval_results.update(
        dataset=results["dataset"], strategy=results["strategy"], domain=results["domain"],
        std={k: v for k, v in results.get("std", {}).items() if k in eval_results},
        cv_folds=len(results["folds"]), split=f"test, {len(results['folds'])}-fold cross-validation",
        selection=results["best_fold_chosen_by"],
    )
    info = push_model(results["best_model"], repo_id, private=private, eval_results=eval_results)
    return str(getattr(info, "commit_url", info))


def _export_adapter(model_dir: Path, config: dict, out: Path) -> Path:
    """The LoRA adapter + head of a hub_emo model, as a peft folder (``save_adapter``)."""
    if config.get("model_type") != "hub_emo" or config.get("adapter") != "lora":
        raise ValueError(
            f"{model_dir / 'config.json'}: --adapter-only needs a hub_emo model trained with "
            f"adapter='lora' (model_type={config.get('model_type')!r}, adapter={config.get('adapter')!r})"
        )
    from hub_emo import EmoForAudioClassification

    model = EmoForAudioClassification.from_pretrained(model_dir)
    model.save_adapter(out)
    if model.preprocessor is not None:  # the adapter's users preprocess as training did
        model.preprocessor.save_pretrained(out)
    return out
