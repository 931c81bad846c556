"""Running a backbone over clips as an accelerator pipeline, sharded across ranks.

DataLoader workers decode, resample, cut and pad clips (prefetched, in pinned memory on a
GPU) in order of length, so each batch holds near-equal lengths; the backbone runs each
padded batch once, every clip getting the features it gets alone
(`hub_emo.modeling.batched_forward`); each hidden state is pooled as it comes, in the
model's dtype, and every clip's record is written to the `Store` as soon as its batch is done.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from hub_emo.distributed import ranks

from . import shares
from .backbone import Backbone
from .store import Record, Store, frame_indices
from .window import Window, decodable, header_lengths, waveform

logger = logging.getLogger(__name__)

#: Longest stretch of a clip fed whole; longer clips are cut to their centre (or the window's
#: crop) this long, and their records are named after that cut. Attention cost grows with the
#: square of the length (WavLM's position bias alone is heads x T x T per layer: 60 s at
#: 50 frames/s is 3000 x 3000), so one very long clip would otherwise exhaust a device.
MAX_SECONDS = 60.0

#: Clips per pass by default, on any device. On a CPU the demo's 0.24 M-parameter stand-ins
#: extract 1.5-2x faster at 8 than one by one (the per-pass work of pooling and storing is
#: spread over 8 clips) and a wav2vec2-base-sized model the same within 5 %
#: (benchmarks/bench_extract_batch.py; docs/benchmarks.md).
BATCH_SIZE = 8


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


class _Clips:
    """Rows of a dataset decoded at the backbone's rate and cut by the window (run in workers)."""

    def __init__(self, rows, clips: list[str], window: Window, rate: int):
        self.rows, self.clips, self.window, self.rate = rows, clips, window, rate

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int):
        row = self.rows[int(index)]
        whole = waveform(row, self.rate)
        return self.clips[index], self.window.name(len(whole)), self.window.cut(whole, str(row["id"]))


class _Pad:
    """Collate: the feature extractor pads a batch on the right and returns its attention mask."""

    def __init__(self, feature_extractor, rate: int):
        self.feature_extractor, self.rate = feature_extractor, rate

    def __call__(self, items):
        clips, names, waves = zip(*items)
        inputs = self.feature_extractor(list(waves), sampling_rate=self.rate, padding=True,
                                        return_attention_mask=True, return_tensors="pt")
        return list(clips), list(names), [len(w) for w in waves], inputs["input_values"], inputs["attention_mask"]


def _loader(backbone: Backbone, dataset, clips, window, batch_size: int, device, num_workers: int,
            cap_seconds: float | None):
    """Batches of near-equal lengths (sorted by the files' headers), decoded by workers."""
    from torch.utils.data import DataLoader

    from hub_emo.modeling.batched_forward import length_batches

    rate = backbone.sampling_rate
    lengths = header_lengths(dataset, rate)
    if cap_seconds is not None:
        _cap_note(lengths, window, cap_seconds)
    if window.max_samples is not None:
        lengths = [min(n, window.max_samples) for n in lengths]
    workers = dict(num_workers=num_workers, prefetch_factor=4, persistent_workers=False,
                   worker_init_fn=_one_thread) if num_workers > 0 else {}
    return DataLoader(_Clips(decodable(dataset), clips, window, rate),
                      batch_sampler=length_batches(lengths, batch_size),
                      collate_fn=_Pad(backbone.feature_extractor, rate), pin_memory=device.type == "cuda", **workers)


def _one_thread(_worker: int) -> None:
    """Decoding workers leave the cores to the backbone."""
    import torch

    torch.set_num_threads(1)


def _to_host(tensor):
    """A copy on the host, started without waiting (pinned memory) when the tensor is on a GPU."""
    import torch

    if tensor.device.type == "cpu":
        return tensor
    return torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True).copy_(tensor, non_blocking=True)


def _summaries(backbone: Backbone, output, frame_mask, frames_cap: int, samples: list[int]) -> dict:
    """Per clip of a batch, on the way to the host: every hidden state's and the final output's
    mean over the clip's own frames (float32 sums), and up to ``frames_cap`` frames."""
    import torch

    from hub_emo.modeling.backbones import check_hidden_states
    from hub_emo.modeling.batched_forward import pool_layers

    hidden, last = output.hidden_states, output.last_hidden_state
    check_hidden_states(hidden, backbone.num_hidden_states, backbone.name)
    counts = backbone.model._get_feat_extract_output_lengths(torch.tensor(samples)).tolist()  # no device sync
    summary = {"pooled": _to_host(pool_layers(hidden, last, frame_mask, dtype=torch.float32)),
               "counts": counts, "samples": samples, "frames": None}
    if frames_cap:
        index = [torch.from_numpy(frame_indices(n, frames_cap)).to(last.device) for n in counts]
        picked = torch.cat([torch.stack([h[b, i] for h in hidden]) for b, i in enumerate(index)], dim=1)
        summary["frames"] = _to_host(picked.to(torch.float16))
        summary["splits"] = np.cumsum([len(i) for i in index])[:-1]
    if last.device.type == "cuda":
        summary["ready"] = torch.cuda.Event()
        summary["ready"].record()
    return summary


def _records(summary: dict) -> list[Record]:
    """The batch's records, once its copies to the host are done."""
    if "ready" in summary:
        summary["ready"].synchronize()
    pooled, samples, counts = summary["pooled"].numpy(), summary["samples"], summary["counts"]
    chosen = [None] * len(samples)
    if summary["frames"] is not None:
        chosen = np.split(summary["frames"].numpy(), summary["splits"], axis=1)
    return [Record(pooled[b].copy(), samples[b], counts[b], chosen[b]) for b in range(len(samples))]


def _run(backbone, dataset, clips, window, store, frames_cap, loader_options, device, bar) -> int:
    """Extract the rows of ``dataset`` (fingerprints ``clips``) into the store; returns forward passes.

    A batch's records are finished while the next batch runs (its copies to the host need not
    stall the device), and written by a thread, so file writes overlap the forward passes too."""
    import torch

    from hub_emo.modeling.batched_forward import encode

    model, passes, previous, writes = backbone.model, 0, None, []
    dtype = next(model.parameters()).dtype
    was_training = model.training
    model.eval()

    def finish(batch):
        clips_, names, summary = batch
        for clip, name, record in zip(clips_, names, _records(summary)):
            writes.append(writer.submit(store.write, clip, name, record, frames_cap))
        bar.update(len(clips_))

    try:
        with ThreadPoolExecutor(max_workers=1) as writer:
            for batch_clips, names, samples, values, mask in _loader(backbone, dataset, clips, window,
                                                                       device=device, **loader_options):
                with torch.inference_mode():
                    output, frame_mask = encode(model, values.to(device, dtype=dtype, non_blocking=True), mask, True)
                    current = (batch_clips, names, _summaries(backbone, output, frame_mask, frames_cap, samples))
                del output, frame_mask
                if previous is not None:
                    finish(previous)
                previous, passes = current, passes + 1
            if previous is not None:
                finish(previous)
            for done in writes:
                done.result()  # a failed write raises here
    finally:
        model.train(was_training)
    return passes


def _workers(num_workers: int | None, device, world: int) -> int:
    """The decoding processes: as asked, else none on a CPU (the backbone takes the cores), else
    up to 8 of this rank's cores. Decoding and resampling 48 kHz audio to 16 kHz costs about
    2 ms of CPU per second of audio, of the order of a wav2vec2-base forward on a large GPU."""
    if num_workers is not None:
        return max(0, int(num_workers))
    if device.type == "cpu":
        return 0
    return max(1, min(8, (os.cpu_count() or 2) // max(1, world) - 1))


def _cap_note(lengths: list[int], window: Window, max_seconds: float) -> None:
    longer = sum(n > window.max_samples for n in lengths)
    if longer:
        logger.warning("%d clip(s) longer than the %g s cap are cut to %g s (%s crop) for extraction; "
                       "pass max_seconds=None to feed them whole", longer, max_seconds, max_seconds, window.crop)


def extract(backbone: Backbone, dataset, window: Window = Window(), *, frames_cap: int = 0,
            batch_size: int | None = None, refresh: bool = False, device=None, progress: bool = False,
            records: str = "all", max_seconds: float | None = MAX_SECONDS,
            num_workers: int | None = None) -> Extraction:
    """Every row's record through ``window``, from the cache or extracted once.

    Under torchrun rank 0 decides which clips are missing and splits them into shares of
    equal audio duration; each rank extracts its share, and the records reach the ranks
    that read them through the process group (`hub_emo.features.shares`): every rank with
    ``records="all"``; with ``"none"`` rank 0's store holds every record and nothing is
    loaded. A failure on any rank raises on every rank. ``refresh`` extracts every clip
    again. ``batch_size`` (clips per pass, near-equal lengths) defaults to `BATCH_SIZE`
    (8) on every device. ``max_seconds``
    caps what is fed of a clip (`MAX_SECONDS`; None: no cap). ``num_workers`` decoding
    processes default to 0 on a CPU (the backbone takes the cores) and up to 8 elsewhere.
    """
    from hub_emo.data import clip_fingerprints

    user_window = window
    window = window.capped(None if max_seconds is None else int(round(max_seconds * backbone.sampling_rate)))
    store = Store(backbone.identity)
    clips = clip_fingerprints(dataset)
    options = dict(batch_size=batch_size, num_workers=num_workers,
                   cap_seconds=max_seconds if window != user_window else None)
    with ranks() as group:
        decision = shares.plan(group, store, dataset, clips, window, frames_cap, refresh)
        result = Extraction([], store.directory, clips=len(clips), missing=len(decision.missing))
        rows = decision.shares[group.rank]
        error = None
        try:
            if rows:
                result.forward_passes = _run_share(backbone, dataset, clips, rows, window, store, frames_cap,
                                                   options, device, progress, group)
                result.extracted = len(rows)
        except Exception as failure:  # noqa: BLE001 - every rank leaves the model together
            error = failure
        group.agree(error, f"{backbone.name}: feature extraction")
        result.records = shares.deliver(group, store, clips, window, frames_cap, decision, records)
    return result


def _run_share(backbone, dataset, clips, rows, window, store, frames_cap, options, device, progress,
               group) -> int:
    """Extract this rank's ``rows`` into the store; returns forward passes."""
    from hub_emo.progress import bar

    desc = f"{backbone.name} features" + (f" [rank {group.rank}/{group.world}]" if group.world > 1 else "")
    device = default_device(device) if device is None or isinstance(device, str) else device
    backbone.model.to(device)
    loader_options = dict(batch_size=options["batch_size"] or BATCH_SIZE,
                          num_workers=_workers(options["num_workers"], device, group.world),
                          cap_seconds=options["cap_seconds"])
    with bar(total=len(rows), desc=desc, unit="clip", disable=not progress) as progress_bar:
        return _run(backbone, dataset.select(rows), [clips[r] for r in rows], window, store, frames_cap,
                    loader_options, device, progress_bar)
