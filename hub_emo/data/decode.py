"""Decode and check every clip (through `hub_emo.audio`) into a Dataset, in one or several processes.

A clip that fails is not dropped here: its ``ERROR_COLUMN`` says why, and `prepare` turns
it into a skip. The result is cached by a fingerprint of the rows, the schema and this code.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

from hub_emo import audio as audio_io

#: The column that carries a clip's decoding problem (None when it decoded).
ERROR_COLUMN = "_error"
#: The schema's columns a corpus record fills (``audio`` is made here).
FIELDS = ("id", "label", "domain", "corpus", "speaker", "native_label", "valence", "arousal", "fold")


def _fingerprint(rows: list[dict], schema) -> str:
    """What the decoded rows depend on: every row (each file's size and mtime included), the
    schema and the code that decodes and checks. Hashed directly: datasets' own fingerprint
    deep-copies and dill-pickles all rows, which costs as much as decoding a small corpus."""
    digest = hashlib.sha256()
    for source in (__file__, audio_io.__file__):
        digest.update(Path(source).read_bytes())
    digest.update(json.dumps(schema.to_dict(), sort_keys=True).encode())
    digest.update(json.dumps(rows, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:40]


def decode(rows: list[dict], schema, num_proc: int):
    """The rows as a Dataset (cached by `_fingerprint`), decoded in ``num_proc`` processes.

    Each process of a `ProcessPoolExecutor` writes its own contiguous share of the rows
    with ``from_generator`` and the shares are concatenated (memory-mapped, no copy).
    This is not ``from_generator(num_proc=...)``: that path starts a manager process,
    pickles the whole builder with every row for each job and polls its queue every 50 ms,
    about 0.1 s of fixed cost, as long as decoding a few hundred short WAV files in one
    process. A worker that dies breaks the pool, which `result()` reports (no hang).
    """
    import datasets

    fingerprint = _fingerprint(rows, schema)
    if num_proc == 1:
        return _decode_share(rows, schema, fingerprint)
    import multiprocessing
    import threading
    from concurrent.futures import ProcessPoolExecutor

    from datasets.utils.tqdm import tqdm

    bounds = [len(rows) * i // num_proc for i in range(num_proc + 1)]
    context = multiprocessing.get_context()
    progress = context.SimpleQueue()
    with tqdm(total=len(rows), unit=" clips", desc=f"Decoding ({num_proc} processes)") as bar:
        counter = threading.Thread(target=_count_progress, args=(progress, bar), daemon=True)
        counter.start()
        try:
            with ProcessPoolExecutor(num_proc, mp_context=context, initializer=_start_worker,
                                     initargs=(progress, datasets.config.HF_DATASETS_CACHE)) as pool:
                jobs = [pool.submit(_decode_job, rows[bounds[job]:bounds[job + 1]], schema,
                                    f"{fingerprint}-{job}-of-{num_proc}") for job in range(num_proc)]
                files = [job.result() for job in jobs]
        finally:
            progress.put(None)
            counter.join()
    shares = [datasets.Dataset.from_file(file) for share in files for file in share]
    return datasets.concatenate_datasets(shares)


def _count_progress(progress, bar) -> None:
    """In the parent: advance the one progress bar for every clip a worker reports."""
    while progress.get() is not None:
        bar.update(1)


def _decode_share(rows: list[dict], schema, fingerprint: str):
    import datasets

    return datasets.Dataset.from_generator(_encode, features=schema, gen_kwargs={"rows": rows},
                                           split="train", fingerprint=fingerprint)


_progress = None  # in a decoding worker: the queue that `_encode` reports each clip to


def _start_worker(progress, cache) -> None:
    global _progress
    import datasets

    datasets.config.HF_DATASETS_CACHE = cache  # as the parent has it (set at run time, too)
    datasets.disable_progress_bars()  # the parent shows one bar for all
    _progress = progress


def _decode_job(rows: list[dict], schema, fingerprint: str) -> list[str]:
    """One process's share: decode into the datasets cache; the Arrow files' paths."""
    return [f["filename"] for f in _decode_share(rows, schema, fingerprint).cache_files]


def _encode(rows: list[dict]):
    """Rows in the schema, audio validated and embedded; a failure fills ``_error`` instead."""
    for row in rows:
        example = {k: row[k] for k in FIELDS}
        example["audio"], example[ERROR_COLUMN] = None, None
        try:
            example["audio"] = _audio_bytes(row)
        except audio_io.AudioError as error:
            example[ERROR_COLUMN] = error.problem
        except Exception as error:  # noqa: BLE001 - a renderer's or reader's failure is a skip
            example[ERROR_COLUMN] = f"cannot read: {type(error).__name__}: {error}"
        if _progress is not None:
            _progress.put(1)
        yield example


def _audio_bytes(row: dict) -> dict:
    """The clip's original bytes after a full decode and check (rendered audio as FLAC)."""
    import soundfile as sf

    path = row["file"]
    if row["render"]:
        import dataset_scripts

        wave, rate = dataset_scripts.load(row["corpus"]).to_audio(path)
        wave = audio_io.conform(wave, rate, None, path)
        buffer = io.BytesIO()
        sf.write(buffer, wave, rate, format="FLAC")
        return {"bytes": buffer.getvalue(), "path": str(Path(row["name"]).with_suffix(".flac"))}
    audio_io.load(path)
    return {"bytes": Path(path).read_bytes(), "path": row["name"]}
