#!/usr/bin/env bash
# hub_emo in a researcher's environment: a fresh venv that already holds another torch build.
#
# Installs TORCH (default torch==2.14.1: a CUDA 13 build, where the lock pins the 2.13.0 CPU one)
# into a new venv, then hub_emo from this checkout with plain `pip install`, and checks that
#   1. pip's plan (--dry-run --report) installs no torch,
#   2. the torch distribution afterwards is the same files (version, RECORD hash, inode, mtime),
#   3. a tiny hub_emo model (LoRA) trains one transformers.Trainer step with that torch.
# Prints one line per check and exits non-zero on the first failure.
#
#   scripts/install_beside_torch.sh [TORCH_REQUIREMENT] [VENV_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH="${1:-torch==2.14.1}"
VENV="${2:-$(mktemp -d -t hub_emo_beside_torch.XXXXXX)/venv}"
PYTHON="${PYTHON:-python3}"

"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
echo "[1/4] $TORCH into $VENV"
"${PIP[@]}" install "$TORCH"

fingerprint() {
  "$VENV/bin/python" - <<'PY'
import hashlib, importlib.metadata as metadata, os
dist = metadata.distribution("torch")
record = dist.locate_file(f"torch-{dist.version}.dist-info/RECORD")
stat = os.stat(record)
print(dist.version, hashlib.sha256(open(record, "rb").read()).hexdigest()[:16], stat.st_ino, stat.st_mtime_ns)
PY
}
before="$(fingerprint)"

echo "[2/4] pip's plan for hub_emo"
report="$(dirname "$VENV")/report.json"
"${PIP[@]}" install --dry-run --report "$report" . >/dev/null
"$VENV/bin/python" - "$report" <<'PY'
import json, sys
planned = [item["metadata"]["name"].lower() for item in json.load(open(sys.argv[1]))["install"]]
assert "torch" not in planned, f"pip would replace torch: {planned}"
print(f"      installs {len(planned)} packages, torch not among them")
PY

echo "[3/4] pip install hub_emo"
"${PIP[@]}" install .
after="$(fingerprint)"
[ "$before" = "$after" ] || { echo "torch changed: $before -> $after" >&2; exit 1; }
echo "      torch kept: $after (version, RECORD sha256, inode, mtime)"

echo "[4/4] one training step"
cd "$(dirname "$VENV")"  # not the checkout: the installed hub_emo must be the one imported
"$VENV/bin/python" - <<'PY'
import math, tempfile

import numpy as np
import torch
from transformers import Trainer, TrainingArguments, Wav2Vec2Config, Wav2Vec2Model

import hub_emo
from hub_emo import EmoForAudioClassification

folder = tempfile.mkdtemp() + "/tiny-backbone"
tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, conv_dim=(32,) * 3,
            conv_stride=(4,) * 3, conv_kernel=(8,) * 3, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
torch.manual_seed(0)
Wav2Vec2Model(Wav2Vec2Config(**tiny)).save_pretrained(folder)
model = EmoForAudioClassification.from_backbone(folder, labels=["calm", "angry"], adapter="lora")
extractor = model.preprocessor
rng = np.random.default_rng(0)
rows = [{"wave": rng.standard_normal(8000 - 800 * i).astype("float32") * 0.1, "labels": i % 2} for i in range(4)]


def collate(batch):
    inputs = extractor([b["wave"] for b in batch], sampling_rate=16000, padding=True, return_tensors="pt")
    return {**inputs, "labels": torch.tensor([b["labels"] for b in batch])}


before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
args = TrainingArguments(output_dir=tempfile.mkdtemp(), max_steps=1, per_device_train_batch_size=4, use_cpu=True,
                         report_to=[], remove_unused_columns=False, learning_rate=1e-2, disable_tqdm=True)
out = Trainer(model=model, args=args, train_dataset=rows, data_collator=collate).train()
changed = sum(not torch.equal(before[n], p) for n, p in model.named_parameters() if n in before)
assert out.global_step == 1 and math.isfinite(out.training_loss) and changed == len(before) > 0
print(f"      torch {torch.__version__} (CUDA build: {torch.version.cuda}), hub_emo from {hub_emo.__file__}: "
      f"1 step, loss {out.training_loss:.4f}, {changed} LoRA matrices updated")
PY
echo "ok: hub_emo installed beside $TORCH and trains"
