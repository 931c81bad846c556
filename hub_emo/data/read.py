"""Read prepared datasets back (folder, Hub repo or object), checked against the schema, and
hash their clips' contents without decoding, for cache keys (once per dataset: kept by its
fingerprint)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

from hub_emo.schema import dataset_features

#: Files by which `datasets.save_to_disk` folders are recognised (Dataset / DatasetDict).
_SAVED_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
#: Datasets whose clip fingerprints are kept (a few MB for RAVDESS-sized datasets).
_KEPT = 32
_kept: OrderedDict[str, tuple[str, ...]] = OrderedDict()
#: Selections made with `select_rows`: their fingerprint -> (the dataset, the rows taken).
_selected_from: OrderedDict[str, tuple] = OrderedDict()
_hashed = 0
_lock = threading.Lock()


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
    """(id, content, from bytes) per row without decoding: content is a hash of the audio bytes,
    or path + size + mtime for audio stored as a path."""
    import hashlib

    import datasets

    global _hashed
    if "id" not in dataset.column_names or "audio" not in dataset.column_names:
        raise ValueError(f"dataset needs 'id' and 'audio' columns, has {dataset.column_names}")
    raw = dataset.select_columns(["id", "audio"]).cast_column("audio", datasets.Audio(decode=False))
    for batch in raw.iter(batch_size=256):
        for clip_id, item in zip(batch["id"], batch["audio"]):
            if item.get("bytes"):
                with _lock:
                    _hashed += 1
                yield str(clip_id), hashlib.sha256(item["bytes"]).digest(), True
            else:
                path = item.get("path") or ""
                stat = os.stat(path) if path and os.path.exists(path) else None
                stamp = f"{path}|{stat.st_size if stat else -1}|{stat.st_mtime_ns if stat else -1}"
                yield str(clip_id), stamp.encode(), False


def clip_fingerprints(dataset) -> list[str]:
    """One content hash per row (id and audio, no decoding): a per-clip cache key, so a clip
    cached once serves every split, fold and run that holds it.

    The keys of a dataset whose audio is all embedded are kept, by the dataset's own
    fingerprint (``datasets``' hash of its content and transforms; a `select` or `map` gives
    another), for the `_KEPT` most recent datasets: a second call over it reads no audio, nor
    does a call over rows taken from it with `select_rows` (a training split), which get the
    kept keys of their rows. Audio stored as paths is stat'ed on every call, so a file
    rewritten in place gets a new key.
    """
    kept_as = getattr(dataset, "_fingerprint", None)
    with _lock:
        if kept_as in _kept:
            _kept.move_to_end(kept_as)
            return list(_kept[kept_as])
        parent = _selected_from.get(kept_as)
    if parent is not None:  # the parent's keys, just computed or kept, are this selection's
        whole, rows = clip_fingerprints(parent[0]), parent[1]
        keys = [whole[i] for i in rows]
        with _lock:
            embedded = getattr(parent[0], "_fingerprint", None) in _kept
        return _keep(kept_as, keys) if embedded else keys
    return _hash_clips(dataset, kept_as)


def _hash_clips(dataset, kept_as: str | None) -> list[str]:
    import hashlib

    keys, embedded = [], True
    for clip_id, content, from_bytes in _clip_contents(dataset):
        keys.append(hashlib.sha256(clip_id.encode() + b"\0" + content).hexdigest()[:32])
        embedded = embedded and from_bytes
    return _keep(kept_as, keys) if kept_as and embedded else keys


def _keep(kept_as: str, keys: list[str]) -> list[str]:
    with _lock:
        _kept[kept_as] = tuple(keys)
        while len(_kept) > _KEPT:
            _kept.popitem(last=False)
    return keys


def select_rows(dataset, rows: list[int]):
    """``dataset.select(rows)``, remembered as rows of ``dataset``: its clips' keys come from
    ``dataset``'s (`clip_fingerprints`), so the splits of one dataset hash its audio once."""
    chosen = dataset.select(rows)
    kept_as = getattr(chosen, "_fingerprint", None)
    if kept_as:
        with _lock:
            _selected_from[kept_as] = (dataset, tuple(rows))
            while len(_selected_from) > 4 * _KEPT:
                _selected_from.popitem(last=False)
    return chosen


def clips_hashed() -> int:
    """How many embedded clips this process has hashed for `clip_fingerprints` (a count that
    shows a dataset's second extraction reading no audio)."""
    with _lock:
        return _hashed
