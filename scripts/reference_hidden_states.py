"""Build the reference hidden-state fixtures with the reference implementations themselves.

Each case is a tiny checkpoint (depth and width reduced; norms, conv stack, flags and rates as
published) built, saved and run by the implementation its real repository was made with, in a
throwaway venv under /tmp (transformers 4.24.0, as MERT's published configs record, CPU torch):

* ``mert-v1-95m``: MERT's own ``MERTConfig``/``MERTModel`` on the published MERT-v1-95M config
  (post-norm);
* ``mert-v1-330m``: the same code on MERT's 330M conversion input ``hf_config/mert_large.json``
  (pre-norm, ``attention_relax`` 32, the old masking fields), loaded as MERT's conversion script
  loads it (``MERTConfig.from_pretrained``);
* ``wav2vec2-prenorm``, ``hubert-prenorm``, ``wavlm-prenorm``: transformers 4.24's own models with
  the switches of wav2vec2-large-lv60, hubert-large and wavlm-large (``do_stable_layer_norm``).

For each, ``tests/fixtures/reference/<case>/`` receives the ``config.json`` the reference saved,
``weights.safetensors`` (the tensors of the ``pytorch_model.bin`` it saved, same names: weight
norm as ``weight_g``/``weight_v``; the repository keeps no pickle, tests write the .bin back) and
``hidden_states.safetensors`` (a fixed input and every hidden state it returns for it).
``--full-configs`` also writes MERT-v1-330M's full-size config as the conversion produces it
(tests/fixtures/backbones/m-a-p__MERT-v1-330M/config.json).

MERT's code is not part of this repository. The script takes it from the public repository
``github.com/yizhilll/MERT`` at commit ``MERT_COMMIT`` (files below, SHA-256 checked): it downloads
them into the ``--mert`` folder, or, offline, expects them there already (e.g. ``git show
157dcbf:scripts/mert_hf/modeling_MERT.py > /tmp/mert_src/modeling_MERT.py`` in a clone).

    python scripts/reference_hidden_states.py [--venv /tmp/hub_emo_reference] [--mert /tmp/mert_src]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "reference"
MERT_REPO = "https://raw.githubusercontent.com/yizhilll/MERT"
MERT_COMMIT = "157dcbf62084dddcae5ab5111a1d1ac5a24e7c15"
MERT_FILES = {  # name: (path in the MERT repository, SHA-256)
    "configuration_MERT.py": ("scripts/mert_hf/configuration_MERT.py",
                              "e5954aa92e4fe9f9221e251fb1ad92ca5cd91a19e72a559373035bb00d4a294f"),
    "modeling_MERT.py": ("scripts/mert_hf/modeling_MERT.py",
                         "43c8a04bf6580dac2d30ba7d5cb5f71e146ed93d83fb0952c1c288d81c92f6c4"),
    "mert_large.json": ("scripts/hf_config/mert_large.json",
                        "e4f54cd825bb6044cbda4542b3bbf55bd0b12c3f82f76dfddee3dff0bd558955"),
}
REFERENCE_PACKAGES = ("transformers==4.24.0", "nnAudio==0.3.4", "numpy<2", "safetensors")

#: Depth and width only (hidden 16, 2 heads, 2 layers, 16 conv channels).
SIZE = {"hidden_size": 16, "num_attention_heads": 2, "intermediate_size": 20, "num_hidden_layers": 2}
#: The switches that make the large (pre-norm) checkpoints of each family what they are.
PRENORM = {
    "wav2vec2-prenorm": ("Wav2Vec2Config", "Wav2Vec2Model", {"feat_extract_norm": "layer", "conv_bias": True}),
    "hubert-prenorm": ("HubertConfig", "HubertModel", {"feat_extract_norm": "layer", "conv_bias": True}),
    "wavlm-prenorm": ("WavLMConfig", "WavLMModel", {"feat_extract_norm": "layer", "conv_bias": False}),
}
SECONDS = 0.3


# ------------------------------------------------------------------ outside: sources and venv
def mert_sources(folder: Path) -> Path:
    """MERT's files in ``folder``, downloaded at the pinned commit unless already there; hashes checked."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (path, digest) in MERT_FILES.items():
        target = folder / name
        if not target.exists():
            url = f"{MERT_REPO}/{MERT_COMMIT}/{path}"
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    target.write_bytes(response.read())
            except OSError as error:
                sys.exit(f"{target}: missing and {url} unreachable ({error}); put MERT's {path} "
                         f"at commit {MERT_COMMIT} there")
        got = hashlib.sha256(target.read_bytes()).hexdigest()
        if got != digest:
            sys.exit(f"{target}: SHA-256 {got} is not that of {path} at commit {MERT_COMMIT} ({digest})")
    (folder / "__init__.py").touch()
    return folder


def reference_python(venv: Path) -> Path:
    """The venv's python, created with CPU torch and the old transformers when it is not there."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *REFERENCE_PACKAGES], check=True)
    return python


# ------------------------------------------------------------------ inside: the reference venv
def _reduced(options: dict) -> dict:
    return dict(options, **SIZE, conv_dim=[SIZE["hidden_size"]] * len(options["conv_dim"]), layerdrop=0.0)


def _perturbed(model, seed: int):
    """Every parameter moved off its initial value (LayerNorms included), so each one shows."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, parameter in sorted(model.named_parameters()):
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)
    return model.eval()


def _build(case: str, mert: Path):
    """(model, rate) for one case, built by the reference implementation."""
    import transformers

    if case.startswith("mert"):
        sys.path.insert(0, str(mert.parent))
        package = mert.name
        config_module = __import__(f"{package}.configuration_MERT", fromlist=["MERTConfig"])
        model_module = __import__(f"{package}.modeling_MERT", fromlist=["MERTModel"])
        if case == "mert-v1-95m":
            options = json.loads((ROOT / "tests/fixtures/backbones/m-a-p__MERT-v1-95M/config.json").read_text())
            config = config_module.MERTConfig(**_reduced(options))
        else:
            config = config_module.MERTConfig.from_pretrained(str(mert / "mert_large.json"))
            config.update(_reduced(config.to_dict()))
        config.auto_map = {"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"}
        return model_module.MERTModel(config), int(config.sample_rate)
    config_class, model_class, switches = PRENORM[case]
    config = getattr(transformers, config_class)(**_reduced({"conv_dim": [512] * 7}), do_stable_layer_norm=True,
                                                 **switches)
    return getattr(transformers, model_class)(config), 16000


def build_case(case: str, mert: Path, out: Path, seed: int) -> None:
    import numpy as np
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model, rate = _build(case, mert)
    model = _perturbed(model, seed)
    folder = out / case
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as saved:
        model.save_pretrained(saved)  # transformers 4.24: config.json + pytorch_model.bin, the repos' format
        state = torch.load(Path(saved) / "pytorch_model.bin", weights_only=True)
        (folder / "config.json").write_text((Path(saved) / "config.json").read_text())
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "weights.safetensors"),
              metadata={"format": "pt", "saved_as": "pytorch_model.bin"})
    wave = np.random.default_rng(seed).standard_normal(int(SECONDS * rate)).astype(np.float32)
    inputs = torch.from_numpy(wave)[None]
    with torch.no_grad():
        output = model(inputs, output_hidden_states=True)
    tensors = {"input_values": inputs, "last_hidden_state": output.last_hidden_state}
    tensors.update({f"hidden_state_{i:02d}": h for i, h in enumerate(output.hidden_states)})
    save_file({k: v.clone().contiguous() for k, v in tensors.items()}, str(folder / "hidden_states.safetensors"))
    print(f"{case}: {len(state)} tensors, {len(output.hidden_states)} hidden states of "
          f"{tuple(output.hidden_states[0].shape)}")


def full_330m_config(mert: Path) -> None:
    """MERT-v1-330M's config.json as MERT's conversion writes it from ``mert_large.json``."""
    sys.path.insert(0, str(mert.parent))
    config_module = __import__(f"{mert.name}.configuration_MERT", fromlist=["MERTConfig"])
    config = config_module.MERTConfig.from_pretrained(str(mert / "mert_large.json"))
    config._name_or_path = "m-a-p/MERT-v1-330M"
    config.architectures = ["MERTModel"]
    config.auto_map = {"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"}
    config.torch_dtype = "float32"  # what save_pretrained records for a float32 model
    target = ROOT / "tests/fixtures/backbones/m-a-p__MERT-v1-330M/config.json"
    config.to_json_file(str(target))
    print(f"wrote {target}")


def inside(options) -> None:
    import nnAudio
    import torch
    import transformers

    out, mert = Path(options.out), Path(options.mert)
    for seed, case in enumerate(("mert-v1-95m", "mert-v1-330m", *PRENORM)):
        build_case(case, mert, out, seed)
    if options.full_configs:
        full_330m_config(mert)
    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "nnAudio": getattr(nnAudio, "__version__", "installed"), "mert_commit": MERT_COMMIT,
                "mert_files": {name: digest for name, (_, digest) in MERT_FILES.items()}}
    (out / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", default="/tmp/hub_emo_reference", help="throwaway venv (created when absent)")
    parser.add_argument("--mert", default="/tmp/mert_src", help="folder for MERT's files (downloaded when absent)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--full-configs", action="store_true", help="also write the full-size 330M config")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.inside:
        inside(options)
        return
    mert = mert_sources(Path(options.mert))
    python = reference_python(Path(options.venv))
    argv = [str(python), __file__, "--inside", "--mert", str(mert), "--out", options.out]
    subprocess.run(argv + (["--full-configs"] if options.full_configs else []), check=True)


if __name__ == "__main__":
    main()
