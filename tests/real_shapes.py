"""Backbone repositories at their published shape, with random weights, for the local Hub.

`tests/fixtures/backbones/<owner>__<name>/` holds each repository's published
``config.json`` and ``preprocessor_config.json`` (sources in SOURCES.md). `write_repo` writes
a folder as that repository ships it: the published files (reduced in depth and width only,
when asked) and random weights under the parameter names its checkpoint uses, in the format
it uses: ``pytorch_model.bin`` (a plain state dict saved with torch.save, weight-norm
parameters as ``weight_g``/``weight_v`` as transformers 4.x wrote them) for MERT and HuBERT,
``model.safetensors`` for the others.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "backbones"

REPO_IDS = (
    "facebook/wav2vec2-base",
    "facebook/hubert-base-ls960",
    "microsoft/wavlm-base-plus",
    "facebook/data2vec-audio-base",
    "m-a-p/MERT-v1-95M",
    "m-a-p/MERT-v1-330M",
)
#: Repositories whose published weights are a pickled state dict rather than safetensors.
BIN_REPOS = {"facebook/hubert-base-ls960", "m-a-p/MERT-v1-95M", "m-a-p/MERT-v1-330M"}

#: Depth and width only; the conv kernels and strides, norms, flags and rates stay as published.
TINY = {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 37, "num_hidden_layers": 2}


def published(repo_id: str) -> tuple[dict, dict]:
    folder = FIXTURES / repo_id.replace("/", "__")
    return (json.loads((folder / "config.json").read_text()),
            json.loads((folder / "preprocessor_config.json").read_text()))


def reduced(config: dict, size: dict | None) -> dict:
    if not size:
        return dict(config)
    out = dict(config, **size)
    out["conv_dim"] = [size["hidden_size"]] * len(config["conv_dim"])
    if "output_hidden_size" in out:
        out["output_hidden_size"] = size["hidden_size"]
    return out


def _legacy_weight_norm_names(state: dict) -> dict:
    """transformers 5's parametrised weight-norm names → the weight_g/weight_v of older checkpoints."""
    renamed = {}
    for key, value in state.items():
        key = key.replace("parametrizations.weight.original0", "weight_g")
        key = key.replace("parametrizations.weight.original1", "weight_v")
        renamed[key] = value
    return renamed


def random_state_dict(config: dict, seed: int = 0) -> dict:
    """Random weights for ``config`` (built with transformers' own classes; MERT as HuBERT)."""
    from transformers import AutoModel

    from hub_emo.modeling.backbones import config_from_dict

    torch.manual_seed(seed)
    model = AutoModel.from_config(config_from_dict(config))
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def write_repo(repo_id: str, folder: Path, size: dict | None = TINY, seed: int = 0) -> Path:
    """The repository's files in ``folder``: published configs (reduced by ``size``) + random weights."""
    config, preprocessor = published(repo_id)
    config = reduced(config, size)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    state = _legacy_weight_norm_names(random_state_dict(config, seed))
    if repo_id in BIN_REPOS:
        torch.save(state, folder / "pytorch_model.bin")
    else:
        from safetensors.torch import save_file

        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def publish(repo_id: str, folder: Path) -> None:
    """Upload ``folder`` to the Hub at HF_ENDPOINT under ``repo_id``."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="published shape, random weights")


def publish_all(root: Path, size: dict | None = TINY, repo_ids=REPO_IDS) -> dict[str, Path]:
    folders = {}
    for repo_id in repo_ids:
        folders[repo_id] = write_repo(repo_id, root / repo_id.replace("/", "__"), size)
        publish(repo_id, folders[repo_id])
    return folders


NO_HIDDEN_CONFIG = '''
from transformers import HubertConfig


class NoHiddenConfig(HubertConfig):
    model_type = "nohidden_ssl"
'''
#: Written for this test, after the pattern of remote code made for transformers 4.x: it
#: overrides forward and asks the encoder for hidden states, which transformers 5 records only
#: in the decorated top-level forward, so none come back.
NO_HIDDEN_MODEL = '''
from transformers import HubertModel
from transformers.modeling_outputs import BaseModelOutput

from .configuration_nohidden import NoHiddenConfig


class NoHiddenModel(HubertModel):
    config_class = NoHiddenConfig

    def forward(self, input_values, attention_mask=None, output_hidden_states=None, return_dict=None, **kwargs):
        features = self.feature_extractor(input_values).transpose(1, 2)
        hidden = self.feature_projection(features)
        out = self.encoder(hidden, attention_mask=None, output_hidden_states=output_hidden_states, return_dict=True)
        return BaseModelOutput(last_hidden_state=out[0], hidden_states=getattr(out, "hidden_states", None))
'''


def write_no_hidden_states_repo(folder: Path) -> Path:
    """A remote-code backbone that returns no hidden states under transformers 5 (as MERT's code does)."""
    config, preprocessor = published("facebook/hubert-base-ls960")
    config = reduced(config, TINY)
    state = random_state_dict(config)
    config.update(model_type="nohidden_ssl", architectures=["NoHiddenModel"],
                  auto_map={"AutoConfig": "configuration_nohidden.NoHiddenConfig",
                            "AutoModel": "modeling_nohidden.NoHiddenModel"})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    (folder / "configuration_nohidden.py").write_text(NO_HIDDEN_CONFIG)
    (folder / "modeling_nohidden.py").write_text(NO_HIDDEN_MODEL)
    from safetensors.torch import save_file

    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder
