"""Tiny self-supervised backbones, pretrained here with wav2vec2's own objective.

No wav2vec2, HuBERT or MERT weights can be downloaded offline, and a random backbone
would make layerwise probing and transfer meaningless. So the demo pretrains two small
wav2vec2-architecture models, one on speech and one on music, with transformers'
`Wav2Vec2ForPreTraining`: masked time steps, a Gumbel-softmax quantizer, a contrastive
loss against sampled negatives plus the codebook diversity loss (Baevski et al. 2020).

They are TINY STAND-INS (about 0.24 M parameters, well under a minute of CPU each), not
wav2vec2/HuBERT (speech) or MERT (music); they only let the studies run end to end.
Each is saved as a plain `Wav2Vec2Model` folder (safetensors, ``layerdrop=0``) with its
`Wav2Vec2FeatureExtractor`, so `AutoModel.from_pretrained(path)` loads it like any Hub
checkpoint, plus ``pretraining.json`` with the loss curve.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

SAMPLING_RATE = 16000
LOG_FILE = "pretraining.json"

#: The stand-in architecture: 4 conv layers with wav2vec2's total stride of 320 (50
#: frames per second), a 4-layer, 64-wide transformer, 2 x 64 codevectors. About 0.24 M
#: parameters.
TINY_CONFIG = dict(
    hidden_size=64,
    num_hidden_layers=4,
    num_attention_heads=4,
    intermediate_size=128,
    conv_dim=(64, 64, 64, 64),
    conv_stride=(5, 4, 4, 4),
    conv_kernel=(10, 8, 4, 4),
    conv_bias=True,
    feat_extract_norm="layer",
    do_stable_layer_norm=True,
    num_conv_pos_embeddings=32,
    num_conv_pos_embedding_groups=4,
    num_codevector_groups=2,
    num_codevectors_per_group=64,
    codevector_dim=64,
    proj_codevector_dim=64,
    num_negatives=20,
    contrastive_logits_temperature=0.1,
    diversity_loss_weight=0.2,  # 0.1 (the paper) collapsed the codebook on a short run; 0.5 stalled music
    hidden_dropout=0.0,
    activation_dropout=0.0,
    attention_dropout=0.0,
    feat_proj_dropout=0.0,
    feat_quantizer_dropout=0.0,
    final_dropout=0.0,
    layerdrop=0.0,  # in training mode a dropped layer would vanish from hidden_states
    vocab_size=32,
)

#: Step counts: the default for `make demo`, and --quick. Both quick figures stay at chance
#: (it takes about 120 steps to leave it, see `pretrain_backbone`): 30 steps show the same as
#: 80 did, in 3/8 of the time.
PRESETS = {"default": dict(steps=360), "quick": dict(steps=30)}

STAND_IN_NOTE = (
    "Tiny stand-in backbone pretrained by hub_emo's demo on its generated corpus with "
    "wav2vec2's self-supervised objective. It is NOT wav2vec2, HuBERT or MERT: a few "
    "hundred thousand parameters trained for about a minute on CPU, so that the studies "
    "run offline. Results obtained with it say nothing about the real models."
)


@dataclass
class Pretrained:
    """A pretrained stand-in: its folder and its log (what ``pretraining.json`` holds)."""

    path: Path
    log: dict

    def summary(self) -> str:
        loss = self.log["curve"]["loss"]
        return (
            f"{self.path}: {self.log['settings']['domain']} backbone, {self.log['parameters']:,} parameters, "
            f"{len(loss)} steps, loss {loss[0]:.3f} -> {loss[-1]:.3f} ({self.log['elapsed_s']:.1f} s)"
        )


def backbone_config(**overrides):
    """The tiny `Wav2Vec2Config` (`TINY_CONFIG` with ``overrides``)."""
    from transformers import Wav2Vec2Config

    return Wav2Vec2Config(**{**TINY_CONFIG, **overrides})


def _audio_files(audio: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    from hub_emo.audio import audio_files

    if isinstance(audio, (str, os.PathLike)):
        root = Path(audio)
        if root.is_dir():
            files = audio_files(root)
        elif root.is_file():
            files = [root]
        else:
            raise ValueError(f"{root}: no such file or directory")
    else:
        files = [Path(p) for p in audio]
    if not files:
        raise ValueError(f"{audio}: no audio files to pretrain on")
    return files


def _gumbel_schedule(steps: int, start: float = 2.0, end: float = 0.5) -> np.ndarray:
    """Temperature per step: exponential decay from start to end over 3/4 of the run."""
    span = max(1, int(0.75 * steps))
    decay = (end / start) ** (1 / span)
    return np.maximum(end, start * decay ** np.arange(steps))


def _chance_loss(output, negatives: np.ndarray, mask: np.ndarray) -> float:
    """The contrastive loss of a model that has learnt nothing, per masked frame.

    ln(1 + distinct negatives): negatives that quantize to the positive's own code are
    excluded from the loss, so a shrinking codebook lowers the loss without any
    learning. Logged beside the loss so the curve can be read honestly.
    """
    import torch

    with torch.no_grad():
        q = output.projected_quantized_states
        b, t, d = q.shape
        negs = q.reshape(-1, d)[torch.from_numpy(negatives).long().reshape(-1)].reshape(b, t, -1, d)
        distinct = (negs != q[:, :, None, :]).any(-1).sum(-1)
        return float(torch.log1p(distinct.float())[torch.from_numpy(mask)].mean())


def pretrain_backbone(
    audio: str | os.PathLike | Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    domain: str,
    steps: int = PRESETS["default"]["steps"],
    seed: int = 0,
    batch_size: int = 4,
    crop_seconds: float = 2.0,
    learning_rate: float = 3e-3,
    warmup_fraction: float = 0.1,
    mask_time_prob: float = 0.3,
    mask_time_length: int = 2,
    gumbel_temperature: tuple[float, float] = (2.0, 0.5),
    config_overrides: dict | None = None,
    threads: int | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
) -> Pretrained:
    """Pretrain a tiny wav2vec2 on ``audio`` (a folder, a file, or a list of files).

    Each step takes ``batch_size`` random crops of ``crop_seconds``, masks spans of
    frames (``_compute_mask_indices``), samples negatives from the same clip's unmasked
    and masked frames (``_sample_negative_indices``) and minimises
    `Wav2Vec2ForPreTraining`'s contrastive + diversity loss (per masked frame) with AdamW,
    linear warm-up and decay, and an annealed Gumbel temperature. ``domain`` names what
    the audio is ("speech" or "music"), for the log and card. Deterministic for a seed
    and thread count. A folder already trained with the same settings is reused unless
    ``overwrite``. Returns the folder and the log.

    Settings that a tiny model learns with inside the budget (measured on the default
    corpus): the paper's masking (p=0.65, spans of 10, on 15-s crops) kept it at chance
    for hundreds of steps on 1-2 s clips; p=0.3 spans of 2 frames with lr 3e-3 leave
    chance after about 120 steps, and by step 360 speech is about 0.85 nats below it.
    The log keeps, beside the loss, ``contrastive_chance``: the loss of a model that
    learnt nothing, given how many negatives differ from the positive (negatives equal
    to it are excluded), so that a collapsing codebook is not mistaken for learning.
    """
    from hub_emo.audio import load
    from hub_emo.inference import feature_extractor_for

    out = Path(out_dir)
    files = _audio_files(audio)
    settings = _run_settings(
        files, domain=domain, steps=steps, seed=seed, batch_size=batch_size, crop_seconds=crop_seconds,
        learning_rate=learning_rate, warmup_fraction=warmup_fraction, mask_time_prob=mask_time_prob,
        mask_time_length=mask_time_length, gumbel_temperature=gumbel_temperature,
        config_overrides=config_overrides,
    )
    if not overwrite and (previous := _earlier_run(out, settings)) is not None:
        return previous

    started = time.perf_counter()
    waves = [load(f, SAMPLING_RATE)[0] for f in files]
    config = backbone_config(**(config_overrides or {}))
    extractor = feature_extractor_for(config)
    model, curve, used_threads = _train(settings, waves, config, extractor, threads, progress)
    return _save(out, model.wav2vec2, extractor, settings, curve, waves, started, used_threads)


def _run_settings(files, *, domain, steps, seed, batch_size, crop_seconds, learning_rate, warmup_fraction,
                  mask_time_prob, mask_time_length, gumbel_temperature, config_overrides) -> dict:
    """A run's settings as its log records them; invalid ones are refused."""
    if steps < 1 or batch_size < 1 or crop_seconds <= 0:
        raise ValueError(f"invalid pretraining settings: steps={steps}, batch_size={batch_size}, crop_seconds={crop_seconds}")
    settings = {
        "domain": domain, "steps": int(steps), "seed": int(seed), "batch_size": int(batch_size),
        "crop_seconds": float(crop_seconds), "learning_rate": float(learning_rate),
        "warmup_fraction": float(warmup_fraction), "mask_time_prob": float(mask_time_prob),
        "mask_time_length": int(mask_time_length),
        "gumbel_temperature": [float(t) for t in gumbel_temperature], "config": {**TINY_CONFIG, **(config_overrides or {})},
        "files": [str(f) for f in files],
    }
    return json.loads(json.dumps(settings))  # as it reads back from the log (tuples -> lists)


def _earlier_run(out: Path, settings: dict) -> Pretrained | None:
    """The run already in ``out``, if it was trained with exactly these settings."""
    log_path = out / LOG_FILE
    if log_path.is_file():
        previous = json.loads(log_path.read_text())
        if previous.get("settings") == settings and (out / "model.safetensors").is_file():
            return Pretrained(out, previous)
    return None


def _train(settings: dict, waves: list[np.ndarray], config, extractor, threads: int | None, progress):
    """Run the steps; returns (the `Wav2Vec2ForPreTraining` model, its curve, the threads used).

    Torch's thread count and numpy's global RNG (the two transformers helpers draw from it)
    are seeded for the run and restored after it.
    """
    import torch
    from transformers import Wav2Vec2ForPreTraining

    from hub_emo.progress import bar

    steps, seed = settings["steps"], settings["seed"]
    old_threads = torch.get_num_threads()
    np_state = np.random.get_state()
    shown = bar(total=steps, desc=f"pretrain {settings['domain']} backbone", unit="step")
    try:
        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(seed)
        np.random.seed(seed)
        rng = np.random.default_rng(seed)
        model = Wav2Vec2ForPreTraining(config)
        model.train()
        optimizer, scheduler = _optimizer(model, settings)
        temperatures = _gumbel_schedule(steps, *settings["gumbel_temperature"])
        curve = {key: [] for key in ("loss", "contrastive_loss", "diversity_loss", "perplexity", "contrastive_chance")}
        for step in range(steps):
            model.set_gumbel_temperature(float(temperatures[step]))
            output, mask, negatives = _forward(model, extractor, _crops(waves, rng, settings), settings)
            masked = float(mask.sum())
            loss = output.loss / masked
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            _record(curve, loss, output, masked, negatives, mask)
            shown.update()
            shown.set_postfix(loss=f"{curve['loss'][-1]:.3f}", refresh=False)
            if progress:
                progress(step + 1, steps, float(loss))
    finally:
        shown.close()
        torch.set_num_threads(old_threads)
        np.random.set_state(np_state)
    return model, curve, threads or old_threads


def _optimizer(model, settings: dict):
    """AdamW with a linear warm-up over ``warmup_fraction`` of the steps, then a linear decay to 0."""
    import torch

    steps = settings["steps"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings["learning_rate"], weight_decay=0.01)
    warmup = max(1, int(settings["warmup_fraction"] * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    return optimizer, scheduler


def _crops(waves: list[np.ndarray], rng: np.random.Generator, settings: dict) -> list[np.ndarray]:
    """``batch_size`` random crops of ``crop_seconds`` from random clips (a shorter clip whole)."""
    crop = int(settings["crop_seconds"] * SAMPLING_RATE)
    batch = []
    for i in rng.integers(0, len(waves), settings["batch_size"]):
        wave = waves[i]
        start = int(rng.integers(0, max(1, wave.size - crop + 1)))
        batch.append(wave[start : start + crop])
    return batch


def _forward(model, extractor, batch: list[np.ndarray], settings: dict):
    """The masked forward pass: (output, frame mask, sampled negatives) for one batch of crops."""
    import torch
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices, _sample_negative_indices

    inputs = extractor(batch, sampling_rate=SAMPLING_RATE, padding=True, return_tensors="pt")
    shape = (len(batch), int(model._get_feat_extract_output_lengths(inputs.input_values.shape[1])))
    attention = inputs.get("attention_mask")  # None for a backbone without one: every frame is audio
    frame_mask = (torch.ones(shape, dtype=torch.long) if attention is None
                  else model._get_feature_vector_attention_mask(shape[1], attention))
    mask = _compute_mask_indices(
        shape, settings["mask_time_prob"], settings["mask_time_length"], attention_mask=frame_mask, min_masks=2
    )
    negatives = _sample_negative_indices(shape, model.config.num_negatives, mask_time_indices=frame_mask.numpy())
    output = model(
        inputs.input_values,
        attention_mask=attention,
        mask_time_indices=torch.from_numpy(mask),
        sampled_negative_indices=torch.from_numpy(negatives),
    )
    return output, mask, negatives


def _record(curve: dict[str, list], loss, output, masked: float, negatives: np.ndarray, mask: np.ndarray) -> None:
    curve["loss"].append(round(loss.item(), 5))
    curve["contrastive_loss"].append(round(output.contrastive_loss.item() / masked, 5))
    curve["diversity_loss"].append(round(output.diversity_loss.item() / masked, 5))
    curve["perplexity"].append(round(output.codevector_perplexity.item(), 3))
    curve["contrastive_chance"].append(round(_chance_loss(output, negatives, mask), 5))


def _save(out: Path, backbone, extractor, settings: dict, curve: dict, waves: list[np.ndarray], started: float,
          threads: int) -> Pretrained:
    """Write the plain `Wav2Vec2Model` folder, its feature extractor, the log and a README."""
    out.mkdir(parents=True, exist_ok=True)
    backbone.config.layerdrop = 0.0
    backbone.config.architectures = ["Wav2Vec2Model"]
    backbone.save_pretrained(out)
    extractor.save_pretrained(out)
    seconds = sum(w.size for w in waves) / SAMPLING_RATE
    log = {
        "note": STAND_IN_NOTE,
        "objective": "Wav2Vec2ForPreTraining: contrastive (masked frames vs sampled negatives) + "
                     f"{backbone.config.diversity_loss_weight} x codebook diversity, per masked frame",
        "settings": settings,
        "audio_seconds": round(seconds, 1),
        "parameters": sum(p.numel() for p in backbone.parameters()),
        "elapsed_s": round(time.perf_counter() - started, 2),
        "threads": threads,
        "curve": curve,
    }
    (out / LOG_FILE).write_text(json.dumps(log, indent=1) + "\n")
    domain, loss = settings["domain"], curve["loss"]
    (out / "README.md").write_text(
        f"# Tiny {domain} SSL backbone (hub_emo demo stand-in)\n\n{STAND_IN_NOTE}\n\n"
        f"Pretrained for {settings['steps']} steps on {len(waves)} {domain} clips ({seconds:.0f} s); "
        f"loss {loss[0]:.3f} -> {loss[-1]:.3f}. See `{LOG_FILE}`.\n"
    )
    return Pretrained(out, log)
