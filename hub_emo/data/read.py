"""Read prepared datasets back (folder, Hub repo or object), checked against the schema, and
hash their clips' contents without decoding, for cache keys."""

from __future__ import annotations

import os
from pathlib import Path

from hub_emo.schema import dataset_features

#: Files by which `datasets.save_to_disk` folders are recognised (Dataset / DatasetDict).
_SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def load_prepared(source, config: str | None = None, split: str | None = None, *, concatenate: bool = False):
    """A prepared dataset, checked against the schema: from a folder (Parquet written by `write`,
    or `save_to_disk`), a Hub repo id, or a `Dataset`/`DatasetDict` as given.

    ``split`` picks one split; ``concatenate`` joins all splits into one `Dataset`. Otherwise a
    folder or repo with splits comes back as a `DatasetDict` (training's ``folds none`` reads them).
    """
    import datasets

    if isinstance(source, (datasets.Dataset, datasets.DatasetDict)):
        loaded, name = source, "<dataset>"
    else:
        name = str(source)
        path = Path(name)
        try:
            if any((path / marker).is_file() for marker in _SAVED_MARKERS):
                loaded = datasets.load_from_disk(name)
            elif path.is_dir():
                loaded = _load_prepared_folder(name, config, split)
            else:
                loaded = datasets.load_dataset(name, config, split=split)
        except Exception as error:  # noqa: BLE001 - one message naming the source
            raise ValueError(f"{name}: cannot load a prepared dataset ({error})") from error
    if isinstance(loaded, datasets.DatasetDict):
        if split is not None:
            if split not in loaded:
                raise ValueError(f"{name}: no split {split!r}; splits are {list(loaded)}")
            loaded = loaded[split]
        elif concatenate:
            loaded = datasets.concatenate_datasets(list(loaded.values()))
    parts = loaded.values() if isinstance(loaded, datasets.DatasetDict) else [loaded]
    for part in parts:
        missing = [c for c in dataset_features() if c not in part.column_names]
        if missing:
            raise ValueError(f"{name}: not a prepared hub_emo dataset; missing columns {missing}")
    return loaded


def _load_prepared_folder(folder: str, config: str | None, split: str | None):
    """A local folder's config (one split or all), cached under its files' absolute paths and mtimes.

    ``load_dataset(folder)`` keys its cache on the folder's base name, the config name and the
    card's *relative* ``data_files`` patterns only (``LocalDatasetModuleFactory.get_module`` hashes
    unresolved `DataFilesPatternsDict`s), so two prepared folders named alike with the same
    corpora, or one folder prepared again, share a cache entry and the second load returns the
    first one's rows. Files given explicitly are keyed on each file's path and mtime instead.
    """
    import datasets

    builder = datasets.load_dataset_builder(folder, config)
    files = {name: list(paths) for name, paths in (builder.config.data_files or {}).items()}
    if not files:
        raise ValueError("no data files")
    return datasets.load_dataset(builder.name, data_files=files, split=split)


def _clip_contents(dataset):
    """(id, content) per row without decoding: content is a hash of the audio bytes, or
    path + size + mtime for audio stored as a path."""
    import hashlib

    import datasets

    if "id" not in dataset.column_names or "audio" not in dataset.column_names:
        raise ValueError(f"dataset needs 'id' and 'audio' columns, has {dataset.column_names}")
    raw = dataset.select_columns(["id", "audio"]).cast_column("audio", datasets.Audio(decode=False))
    for batch in raw.iter(batch_size=256):
        for clip_id, item in zip(batch["id"], batch["audio"]):
            if item.get("bytes"):
                yield str(clip_id), hashlib.sha256(item["bytes"]).digest()
            else:
                path = item.get("path") or ""
                stat = os.stat(path) if path and os.path.exists(path) else None
                yield str(clip_id), f"{path}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}".encode()


def clip_fingerprints(dataset) -> list[str]:
    """One content hash per row (id and audio, no decoding): a per-clip cache key, so a clip
    cached once serves every split, fold and run that holds it."""
    import hashlib

    return [hashlib.sha256(clip_id.encode() + b"\0" + content).hexdigest()[:32]
            for clip_id, content in _clip_contents(dataset)]
