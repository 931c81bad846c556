"""Running a backbone over clips: equal-length batches (never padded), sharded across ranks,
every clip's record written to the `Store` as soon as its batch is done."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from hub_emo.distributed import ranks

from . import shares
from .backbone import Backbone
from .store import Record, Store, frame_indices
from .window import Window, decodable, waveform

#: Clips waiting for a batch of their length, in batches: bounds memory when lengths vary.
_PENDING_BATCHES = 4


@dataclass
class Extraction:
    """What a call found and did (this process's share under torchrun)."""

    records: list[Record]
    directory: object
    clips: int = 0
    missing: int = 0
    extracted: int = 0
    forward_passes: int = 0


def default_device(device=None):
    """The given device, else this rank's GPU when there is one, else the CPU."""
    import torch

    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device("cpu")


def _summarise(backbone: Backbone, output, frames_cap: int, samples: list[int]) -> list[Record]:
    """Per clip of a batch: means and maxima of every hidden state and the final output, frames."""
    import torch

    from hub_emo.modeling.backbones import check_hidden_states

    hidden = getattr(output, "hidden_states", None)
    check_hidden_states(hidden, backbone.num_hidden_states, backbone.name)
    states = torch.stack([*hidden, output.last_hidden_state]).float()  # (S + 1, B, T, D)
    means, maxima = states.mean(2).cpu().numpy(), states.amax(2).cpu().numpy()
    length = states.shape[2]
    chosen = None
    if frames_cap:
        index = torch.from_numpy(frame_indices(length, frames_cap)).to(states.device)
        chosen = states[:-1, :, index].to(torch.float16).cpu().numpy()  # (S, B, F, D)
    return [Record(means[:, b], maxima[:, b], samples[b], length, None if chosen is None else chosen[:, b])
            for b in range(states.shape[1])]


def _forward(backbone: Backbone, waves: list[np.ndarray], frames_cap: int, device) -> list[Record]:
    """One pass over clips of one length: no padding, so no mask and no frame that is not the clip's."""
    import torch

    inputs = backbone.feature_extractor(waves, sampling_rate=backbone.sampling_rate, return_tensors="pt")
    with torch.inference_mode():
        output = backbone.model(inputs["input_values"].to(device), output_hidden_states=True, return_dict=True)
    return _summarise(backbone, output, frames_cap, [len(w) for w in waves])


def _batches(rows, clips: list[str], window: Window, rate: int, batch_size: int):
    """(clips, windows fed, waves) of equal length, at most ``batch_size`` each."""
    pending: dict[int, list] = {}
    for clip, row in zip(clips, rows):
        whole = waveform(row, rate)
        wave = window.cut(whole, str(row["id"]))
        bucket = pending.setdefault(len(wave), [])
        bucket.append((clip, window.name(len(whole)), wave))
        if len(bucket) >= batch_size:
            yield zip(*pending.pop(len(wave)))
        elif sum(map(len, pending.values())) >= _PENDING_BATCHES * batch_size:
            for length in list(pending):
                yield zip(*pending.pop(length))
    for length in list(pending):
        yield zip(*pending.pop(length))


def _run(backbone, dataset, clips, window, store, frames_cap, batch_size, device, bar) -> int:
    """Extract the rows of ``dataset`` (fingerprints ``clips``) into the store; returns forward passes."""
    passes = 0
    model = backbone.model
    was_training = model.training
    model.eval()
    try:
        for batch_clips, names, waves in _batches(decodable(dataset), clips, window, backbone.sampling_rate,
                                                  batch_size):
            for clip, name, record in zip(batch_clips, names, _forward(backbone, list(waves), frames_cap, device)):
                store.write(clip, name, record, frames_cap)
            passes += 1
            bar.update(len(batch_clips))
    finally:
        model.train(was_training)
    return passes


def extract(backbone: Backbone, dataset, window: Window = Window(), *, frames_cap: int = 0,
            batch_size: int | None = None, refresh: bool = False, device=None, progress: bool = False,
            records: str = "all") -> Extraction:
    """Every row's record through ``window``, from the cache or extracted once.

    Under torchrun rank 0 decides which clips are missing and splits them into shares of
    equal audio duration; each rank extracts its share, and the records reach the ranks
    that read them through the process group (`hub_emo.features.shares`): every rank with
    ``records="all"``; with ``"none"`` rank 0's store holds every record and nothing is
    loaded. A failure on any rank raises on every rank. ``refresh`` extracts every clip again. ``batch_size`` (clips of
    one length per pass) defaults to 1 on a CPU, where a batch of 2 s clips ran 1.5×
    slower through a wav2vec2 conv stack than the clips one by one, and 8 elsewhere.
    """
    from hub_emo.data import clip_fingerprints

    store = Store(backbone.identity)
    clips = clip_fingerprints(dataset)
    with ranks() as group:
        decision = shares.plan(group, store, dataset, clips, window, frames_cap, refresh)
        result = Extraction([], store.directory, clips=len(clips), missing=len(decision.missing))
        rows = decision.shares[group.rank]
        error = None
        try:
            if rows:
                result.forward_passes = _run_share(backbone, dataset, clips, rows, window, store, frames_cap,
                                                   batch_size, device, progress, group)
                result.extracted = len(rows)
        except Exception as failure:  # noqa: BLE001 - every rank leaves the model together
            error = failure
        group.agree(error, f"{backbone.name}: feature extraction")
        result.records = shares.deliver(group, store, clips, window, frames_cap, decision, records)
    return result


def _run_share(backbone, dataset, clips, rows, window, store, frames_cap, batch_size, device, progress,
               group) -> int:
    """Extract this rank's ``rows`` into the store; returns forward passes."""
    from hub_emo.progress import bar

    desc = f"{backbone.name} features" + (f" [rank {group.rank}/{group.world}]" if group.world > 1 else "")
    device = default_device(device) if device is None or isinstance(device, str) else device
    backbone.model.to(device)
    batch_size = batch_size or (1 if device.type == "cpu" else 8)
    with bar(total=len(rows), desc=desc, unit="clip", disable=not progress) as progress_bar:
        return _run(backbone, dataset.select(rows), [clips[r] for r in rows], window, store, frames_cap,
                    batch_size, device, progress_bar)
