"""Robust inference: any input a user has, at any rate, any length.

The stock ``audio-classification`` pipeline wants a mono array at the model's rate (other
rates need torchaudio, which does not work with this torch) and rejects datasets'
AudioDecoder objects. `EmoAudioClassificationPipeline` accepts file paths, bytes,
``{"array"/"raw", "sampling_rate"}`` dicts, AudioDecoder objects and arrays with any number
of channels; it resamples with soxr (through `hub_emo.audio`) and cuts long recordings into
chunks whose class probabilities are averaged, weighted by chunk length.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import torch
from transformers import AudioClassificationPipeline

from hub_emo import audio
from hub_emo import modeling as _modeling  # noqa: F401 - registers hub_emo with the Auto classes

#: Chunk length for long recordings; emotion corpora have clips of a few seconds.
DEFAULT_CHUNK_SECONDS = 10.0


def feature_extractor_for(config, source: str | os.PathLike | None = None, trust_remote_code: bool = False):
    """The preprocessor of the backbone or model at ``source``, with an attention mask.

    ``config`` is an `EmoConfig` or a backbone config. A source without
    ``preprocessor_config.json`` (or ``source=None``) gets its family's published preprocessor
    (facebook/wav2vec2-base's for wav2vec2, microsoft/wavlm-base-plus's for WavLM, ...: WavLM
    and MERT do not normalise) at the rate the config records, and a log line says so; a
    preprocessor that cannot be fetched or read is a ValueError naming it.
    """
    from hub_emo.modeling.backbones import load_preprocessor

    return load_preprocessor(source, config, trust_remote_code=trust_remote_code)


def _channels_last(array: np.ndarray) -> np.ndarray:
    """Orient a 2-D array as (samples, channels): channels are the short axis."""
    if array.ndim == 2 and array.shape[0] < array.shape[1]:
        return array.T
    return array


def to_waveform(inputs, sampling_rate: int, name: str = "<input>") -> np.ndarray:
    """Any supported input → validated float32 mono at ``sampling_rate``."""
    if isinstance(inputs, (str, os.PathLike)):
        wave, _ = audio.load(inputs, sampling_rate)
        return wave
    if isinstance(inputs, bytes):
        import io

        import soundfile as sf

        try:
            data, sr = sf.read(io.BytesIO(inputs), dtype="float32", always_2d=True)
        except Exception as error:  # noqa: BLE001
            raise audio.AudioError(name, f"cannot decode audio bytes: {error}") from None
        return audio.conform(data, sr, sampling_rate, name)
    torchcodec = sys.modules.get("torchcodec")
    if torchcodec is not None and isinstance(inputs, torchcodec.decoders.AudioDecoder):
        samples = inputs.get_all_samples()
        return audio.conform(samples.data.numpy(), samples.sample_rate, sampling_rate, name, channels_last=False)
    if isinstance(inputs, dict):
        array = inputs.get("array", inputs.get("raw"))
        if array is None or "sampling_rate" not in inputs:
            raise ValueError(f"{name}: a dict input needs 'array' (or 'raw') and 'sampling_rate'")
        name = inputs.get("path") or name
        sr = int(inputs["sampling_rate"])
    else:
        array, sr = inputs, sampling_rate
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    array = np.asarray(array, dtype=np.float32)
    return audio.conform(_channels_last(array), sr, sampling_rate, name)


def chunk_bounds(num_samples: int, chunk: int, hop: int) -> list[tuple[int, int]]:
    """Start/end of chunks covering the signal; the last one is aligned to the end."""
    if num_samples <= chunk:
        return [(0, num_samples)]
    starts = list(range(0, num_samples - chunk + 1, hop))
    if starts[-1] + chunk < num_samples:
        starts.append(num_samples - chunk)
    return [(s, s + chunk) for s in starts]


class EmoAudioClassificationPipeline(AudioClassificationPipeline):
    """`audio-classification` for real recordings: paths, any rate, any channels, any length."""

    def _sanitize_parameters(
        self, top_k=None, function_to_apply=None, chunk_seconds=None, chunk_overlap=None, chunk_batch_size=None, **kwargs
    ):
        _, _, post = super()._sanitize_parameters(top_k=top_k, function_to_apply=function_to_apply)
        pre = {}
        if chunk_seconds is not None:
            pre["chunk_seconds"] = chunk_seconds
        if chunk_overlap is not None:
            pre["chunk_overlap"] = chunk_overlap
        fwd = {"chunk_batch_size": chunk_batch_size} if chunk_batch_size is not None else {}
        return pre, fwd, post

    def preprocess(self, inputs, chunk_seconds: float = DEFAULT_CHUNK_SECONDS, chunk_overlap: float = 0.0):
        if not chunk_seconds or chunk_seconds <= 0:
            raise ValueError(f"chunk_seconds must be positive, got {chunk_seconds}")
        if not 0.0 <= chunk_overlap < 1.0:
            raise ValueError(f"chunk_overlap must be in [0, 1), got {chunk_overlap}")
        sr = self.feature_extractor.sampling_rate
        wave = to_waveform(inputs, sr)
        chunk = max(1, int(round(chunk_seconds * sr)))
        hop = max(1, int(round(chunk * (1.0 - chunk_overlap))))
        bounds = chunk_bounds(len(wave), chunk, hop)
        pieces = [wave[s:e] for s, e in bounds]
        processed = self.feature_extractor(
            pieces, sampling_rate=sr, padding=True, return_attention_mask=True, return_tensors="pt"
        )
        if self.dtype is not None:
            processed["input_values"] = processed["input_values"].to(dtype=self.dtype)
        processed["chunk_lengths"] = torch.tensor([e - s for s, e in bounds], dtype=torch.float32)
        processed["chunk_starts"] = torch.tensor([s for s, _ in bounds], dtype=torch.long)
        return processed

    def _forward(self, model_inputs, chunk_batch_size: int = 8):
        lengths = model_inputs.pop("chunk_lengths")
        starts = model_inputs.pop("chunk_starts")
        values, mask = model_inputs["input_values"], model_inputs.get("attention_mask")
        logits = []
        for start in range(0, values.shape[0], chunk_batch_size):
            batch = {"input_values": values[start : start + chunk_batch_size]}
            if mask is not None:
                batch["attention_mask"] = mask[start : start + chunk_batch_size]
            logits.append(self.model(**batch).logits)
        return {"logits": torch.cat(logits), "chunk_lengths": lengths, "chunk_starts": starts}

    def postprocess(self, model_outputs, top_k=5, function_to_apply=None):
        logits = model_outputs["logits"].float()
        if function_to_apply == "sigmoid":
            probs = logits.sigmoid()
        elif function_to_apply == "none":
            probs = logits
        else:
            probs = logits.softmax(-1)
        weights = model_outputs["chunk_lengths"].to(probs.device)
        mean = (probs * weights[:, None]).sum(0) / weights.sum()
        scores, ids = mean.topk(top_k)
        id2label = self.model.config.id2label
        return [{"label": id2label[i], "score": s} for s, i in zip(scores.tolist(), ids.tolist())]

    def timeline(self, inputs, chunk_seconds: float = DEFAULT_CHUNK_SECONDS, chunk_overlap: float = 0.0) -> dict:
        """The recording's scores (exactly what ``__call__`` returns, every class) and each chunk's.

        ``{"scores": [{"label", "score"}, ...], "chunks": [{"start", "end", "scores": {label: p}}]}``,
        times in seconds: how the emotion moves through a long recording.
        """
        outputs = self.forward(self.preprocess(inputs, chunk_seconds=chunk_seconds, chunk_overlap=chunk_overlap))
        labels = self.model.config.id2label
        scores = self.postprocess(outputs, top_k=len(labels))
        sr = self.feature_extractor.sampling_rate
        probs = outputs["logits"].float().softmax(-1).tolist()
        chunks = [
            {"start": start / sr, "end": (start + length) / sr, "scores": {labels[i]: p for i, p in enumerate(row)}}
            for start, length, row in zip(
                outputs["chunk_starts"].tolist(), outputs["chunk_lengths"].tolist(), probs
            )
        ]
        return {"scores": scores, "chunks": chunks}


class _AudioClassificationPipeline(EmoAudioClassificationPipeline):
    """What ``transformers.pipeline("audio-classification")`` builds after ``hub_emo.register(pipeline=True)``.

    A hub_emo model gets hub_emo's preprocessing (hub_emo.audio's decoding, downmix and
    soxr resampling, as in data preparation and `hub-emo predict`), so both entry points
    score a file alike; the stock pipeline would decode and resample it with ffmpeg.
    Any other model keeps the stock pipeline's behaviour unchanged.
    """

    def _stock(self) -> bool:
        return getattr(self.model.config, "model_type", None) != "hub_emo"

    def _sanitize_parameters(self, **kwargs):
        if self._stock():
            return AudioClassificationPipeline._sanitize_parameters(self, **kwargs)
        return super()._sanitize_parameters(**kwargs)

    def preprocess(self, inputs, **kwargs):
        if self._stock():
            return AudioClassificationPipeline.preprocess(self, inputs, **kwargs)
        return super().preprocess(inputs, **kwargs)

    def _forward(self, model_inputs, **kwargs):
        if self._stock():
            return AudioClassificationPipeline._forward(self, model_inputs, **kwargs)
        return super()._forward(model_inputs, **kwargs)

    def postprocess(self, model_outputs, **kwargs):
        if self._stock():
            return AudioClassificationPipeline.postprocess(self, model_outputs, **kwargs)
        return super().postprocess(model_outputs, **kwargs)


def register_pipeline() -> None:
    """Make ``transformers.pipeline("audio-classification")`` take hub_emo's one inference path
    (asked for explicitly, through ``hub_emo.register(pipeline=True)``: importing never does it)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    task = "audio-classification"
    _, current, _ = PIPELINE_REGISTRY.check_task(task)
    if current["impl"] is _AudioClassificationPipeline:
        return
    PIPELINE_REGISTRY.supported_tasks.pop(task)  # replaced, not overwritten with a warning
    PIPELINE_REGISTRY.register_pipeline(
        task, _AudioClassificationPipeline, pt_model=current["pt"], default=current.get("default"),
        type=current.get("type"),
    )


def pipeline(model, **kwargs) -> EmoAudioClassificationPipeline:
    """``transformers.pipeline("audio-classification")`` with hub_emo's robust input handling."""
    from transformers import pipeline as hf_pipeline

    if isinstance(model, Path):
        model = str(model)
    return hf_pipeline(
        "audio-classification", model=model, pipeline_class=EmoAudioClassificationPipeline, **kwargs
    )


def predict(model, inputs, top_k: int | None = None, **kwargs) -> list[list[dict]]:
    """Class scores for each input (a path, array, dict or AudioDecoder)."""
    classifier = model if isinstance(model, AudioClassificationPipeline) else pipeline(model, **kwargs)
    return [classifier(item, top_k=top_k) for item in inputs]

