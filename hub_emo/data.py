"""Prepare emotion corpora into the one schema: find, validate, decode, write, report.

The corpus modules in `dataset_scripts` only yield records and skips; everything else
happens here, once, for every corpus:

1. collect: run each module's ``records(root, **options)``, drop duplicate ids and
   non-canonical labels, sort by id (a second run gives the same dataset);
2. decode: every clip is read and checked through `hub_emo.audio` (corrupt, empty,
   silent, NaN ...), in ``num_proc`` processes, and its original bytes are embedded
   (audio stays at its own rate; ``Audio(sampling_rate=...)`` resamples on decode);
3. report: whatever was left out is a (corpus, file, reason) row of the skip report
   (``strict=True`` makes the first one an error naming the file);
4. write (optional): Parquet shards per corpus, the skip report and a dataset card with
   one ``configs:`` entry per corpus and per domain, into a temporary folder beside the
   target that replaces it only when everything is written; then, optionally, push.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
import logging
import math
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from hub_emo import audio as audio_io
from hub_emo.schema import (DOMAINS, EMOTIONS, NO_LABEL, LabelSet, apply_label_set, count_unlabelled, features,
                            get_label_set)

logger = logging.getLogger(__name__)

#: Name of the skip report written beside the data.
SKIP_REPORT = "skipped.tsv"
#: Default Parquet shard size (bytes of Arrow data per shard).
MAX_SHARD_BYTES = 500 << 20
_ERROR = "_error"
_FIELDS = ("id", "label", "domain", "corpus", "speaker", "native_label", "valence", "arousal", "fold")


class PrepareError(ValueError):
    """A corpus that cannot be prepared as asked (strict mode, nothing left, bad options)."""


@dataclass(frozen=True)
class Skipped:
    """One clip or metadata row left out: which corpus, which file, why."""

    corpus: str
    file: str
    reason: str

    def __str__(self) -> str:
        return f"{self.corpus}: {self.file}: {self.reason}"


@dataclass
class Prepared:
    """What `prepare_with_report` made: the dataset, what it left out, where it wrote."""

    dataset: Any
    skipped: list[Skipped] = field(default_factory=list)
    corpora: tuple[str, ...] = ()
    out: Path | None = None
    url: str | None = None

    def counts(self) -> dict[str, int]:
        """Clips per corpus."""
        datasets = self.dataset.values() if hasattr(self.dataset, "values") else [self.dataset]
        counts: Counter = Counter()
        for ds in datasets:
            counts.update(ds["corpus"][:])
        return {name: counts[name] for name in self.corpora}

    def summary(self) -> str:
        counts = self.counts()
        parts = ", ".join(f"{name} {n}" for name, n in counts.items())
        line = f"prepared {sum(counts.values())} clips ({parts}); skipped {len(self.skipped)}"
        datasets = self.dataset.values() if hasattr(self.dataset, "values") else [self.dataset]
        unlabelled = sum(count_unlabelled(ds) for ds in datasets)
        if unlabelled:
            line += f"; {unlabelled} kept with no canonical class (label -1)"
        if self.skipped and self.out is not None:
            line += f" (see {self.out / SKIP_REPORT})"
        elif self.skipped:
            line += " (first: " + str(self.skipped[0]) + ")"
        if self.out is not None:
            line += f"; wrote {self.out}"
        if self.url:
            line += f"; pushed {self.url}"
        return line


def prepare(names: str | Sequence[str], root: str | os.PathLike | Mapping[str, Any], **options):
    """Prepare one or several corpora as a `datasets.Dataset` in the shared schema.

    See `prepare_with_report` for the options; this returns only the dataset (a
    `DatasetDict` keyed by corpus with ``by_config=True``) and logs the summary line.
    """
    result = prepare_with_report(names, root, **options)
    logger.warning(result.summary())
    return result.dataset


def prepare_with_report(
    names: str | Sequence[str],
    root: str | os.PathLike | Mapping[str, Any],
    *,
    label_set: str | LabelSet | Sequence[str] | None = None,
    strict: bool = False,
    num_proc: int | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    push_to_hub: str | None = None,
    private: bool = False,
    by_config: bool = False,
    corpus_options: Mapping[str, Mapping[str, Any]] | None = None,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    **options,
) -> Prepared:
    """Prepare corpora, and report what was skipped.

    ``root`` is one folder for every corpus (RAVDESS speech and song share one) or a
    mapping corpus -> folder. ``options`` go to every corpus whose ``records`` accepts
    them; ``corpus_options[name]`` to that corpus only (e.g. EMOPIA's ``audio_dir``).
    ``label_set`` keeps and relabels the rows of a `hub_emo.schema` label set. ``strict``
    turns any skip into a `PrepareError` naming the file. ``out`` writes Parquet + card +
    skip report (an existing non-empty folder only with ``overwrite``); ``push_to_hub``
    uploads that folder to a dataset repo on ``HF_ENDPOINT``.
    """
    import datasets

    import dataset_scripts

    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise PrepareError("no corpus named")
    duplicates = sorted(n for n, c in Counter(names).items() if c > 1)
    if duplicates:
        raise PrepareError(f"corpus named twice: {', '.join(duplicates)}")
    modules = {name: dataset_scripts.load(name) for name in names}
    strays = sorted(set(corpus_options or {}) - set(names))
    if strays:
        raise PrepareError(f"options given for corpora not being prepared: {', '.join(strays)}")
    if out is not None:
        _check_target(Path(out), overwrite)
    label_set = get_label_set(label_set) if label_set is not None else None

    rows: list[dict] = []
    skipped: list[Skipped] = []
    for name, module in modules.items():
        corpus_root = root[name] if isinstance(root, Mapping) else root
        kwargs = _options_for(module, options, (corpus_options or {}).get(name, {}))
        found, left_out = _collect(module, Path(corpus_root), kwargs)
        if strict and left_out:
            raise PrepareError(_strict_message(left_out))
        rows.extend(found)
        skipped.extend(left_out)
    if not rows:
        raise PrepareError(_nothing_message(names, skipped))

    schema = features()
    schema[_ERROR] = datasets.Value("string")
    import datasets.features._torchcodec  # noqa: F401  - import once here, not in every worker

    num_proc = max(1, min(int(num_proc or 1), len(rows)))
    dataset = _decode(rows, schema, num_proc)
    errors = dataset[_ERROR][:]  # one list: iterating the lazy Column formats row by row
    failed = [
        Skipped(row["corpus"], row["file"], error)
        for row, error in zip(rows, errors)
        if error is not None
    ]
    if strict and failed:
        raise PrepareError(_strict_message(failed))
    skipped.extend(failed)
    if failed:
        dataset = dataset.filter(lambda e: e is None, input_columns=_ERROR)
    dataset = dataset.remove_columns(_ERROR)
    if label_set is not None:
        dataset = apply_label_set(dataset, label_set)
        if len(dataset) == 0:
            raise PrepareError(f"label set {label_set.name!r} keeps none of the {len(rows)} clips")

    parts = _split_by_corpus(dataset, names)
    result = Prepared(dataset=dataset, skipped=skipped, corpora=names)
    if by_config:
        result.dataset = datasets.DatasetDict(parts)

    if out is not None or push_to_hub:
        with tempfile.TemporaryDirectory(prefix="hub_emo_prepare_") as scratch:
            target = Path(out) if out is not None else Path(scratch, "dataset")
            write(parts, modules, skipped, target, label_set=label_set,
                  overwrite=overwrite, max_shard_bytes=max_shard_bytes,
                  roots={n: (root[n] if isinstance(root, Mapping) else root) for n in names})
            if out is not None:
                result.out = target.resolve()
            if push_to_hub:
                result.url = push(target, push_to_hub, private=private)
    return result


# -- collect ---------------------------------------------------------------------------


def _options_for(module, common: Mapping[str, Any], own: Mapping[str, Any]) -> dict:
    """The common options ``records`` accepts, plus this corpus's own (unknown ones fail)."""
    params = inspect.signature(module.records).parameters
    accepted = {k: v for k, v in common.items() if k in params}
    unknown = [k for k in own if k not in params]
    if unknown:
        raise PrepareError(
            f"{module.NAME}: unknown option(s) {unknown}; records() takes {list(params)[1:]}"
        )
    return {**accepted, **own}


def _collect(module, root: Path, options: Mapping[str, Any]) -> tuple[list[dict], list[Skipped]]:
    """Records of one corpus, sorted by id, with duplicates and bad labels turned into skips."""
    import dataset_scripts

    if not root.is_dir():
        raise PrepareError(f"{root}: corpus root of {module.NAME} is not a folder")
    render = getattr(module, "to_audio", None) is not None
    by_id: dict[str, dict] = {}
    skipped: list[Skipped] = []
    for item in module.records(root, **options):
        if isinstance(item, dataset_scripts.Skip):
            skipped.append(Skipped(module.NAME, item.file, item.reason))
            continue
        path = Path(item["audio"])
        if item["label"] is not None and item["label"] not in EMOTIONS:
            skipped.append(Skipped(module.NAME, str(path), f"label {item['label']!r} is not canonical"))
        elif item["id"] in by_id:
            first = by_id[item["id"]]["file"]
            skipped.append(Skipped(module.NAME, str(path), f"duplicate id {item['id']!r} (also {first})"))
        else:
            try:
                stat = path.stat()
                stamp = [stat.st_size, stat.st_mtime_ns]
            except OSError as error:
                skipped.append(Skipped(module.NAME, str(path), f"unreadable: {error.strerror}"))
                continue
            try:
                name = path.relative_to(root).as_posix()
            except ValueError:
                name = path.name
            by_id[item["id"]] = {
                **{k: item.get(k) for k in _FIELDS},
                "label": NO_LABEL if item["label"] is None else item["label"],
                "corpus": module.NAME,
                "domain": module.DOMAIN,
                "file": str(path),
                "name": name,
                "render": render and path.suffix.lower() not in dataset_scripts.AUDIO_EXTENSIONS,
                "stamp": stamp,  # part of the cache fingerprint: an edited file is re-read
            }
    return [by_id[k] for k in sorted(by_id)], skipped


# -- decode ----------------------------------------------------------------------------


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


def _decode(rows: list[dict], schema, num_proc: int):
    """The rows as a Dataset (cached by `_fingerprint`), decoded in ``num_proc`` processes.

    Each process writes its own contiguous share of the rows with ``from_generator`` and
    the shares are concatenated (memory-mapped, no copy). This is not
    ``from_generator(num_proc=...)``: that path starts a manager process, pickles the whole
    builder with every row for each job and polls its queue every 50 ms, about 0.1 s of fixed
    cost, as long as decoding a few hundred short WAV files in one process.
    """
    import datasets
    from datasets.utils.tqdm import tqdm

    fingerprint = _fingerprint(rows, schema)
    if num_proc == 1:
        return _decode_share(rows, schema, fingerprint)
    import multiprocessing

    bounds = [len(rows) * i // num_proc for i in range(num_proc + 1)]
    context = multiprocessing.get_context()
    queue = context.SimpleQueue()
    workers = [
        context.Process(target=_decode_worker, daemon=True,
                        args=(job, rows[bounds[job]:bounds[job + 1]], schema,
                              f"{fingerprint}-{job}-of-{num_proc}", queue, datasets.config.HF_DATASETS_CACHE))
        for job in range(num_proc)
    ]
    for worker in workers:
        worker.start()
    files: dict[int, list[str]] = {}
    try:
        with tqdm(total=len(rows), unit=" clips", desc=f"Decoding ({num_proc} processes)") as bar:
            while len(files) < num_proc:
                kind, job, content = _next_message(queue, workers)
                if kind == "progress":
                    bar.update(content)
                elif kind == "done":
                    files[job] = content
                else:
                    raise RuntimeError(f"decoding worker {job} failed:\n{content}")
    finally:
        for worker in workers:
            worker.join(timeout=5)
            if worker.is_alive():
                worker.terminate()
    shares = [datasets.Dataset.from_file(file) for job in range(num_proc) for file in files[job]]
    return datasets.concatenate_datasets(shares)


def _next_message(queue, workers) -> tuple:
    """The next worker message; a worker that died without a word is an error, not a hang."""
    from multiprocessing.connection import wait

    while True:
        if not queue.empty():
            return queue.get()
        ready = wait([queue._reader] + [w.sentinel for w in workers])
        if queue._reader not in ready and queue.empty():
            dead = [w for w in workers if w.sentinel in ready and w.exitcode not in (0, None)]
            if dead:
                raise RuntimeError(f"a decoding worker died (exit code {dead[0].exitcode})")
            if all(not w.is_alive() for w in workers) and queue.empty():
                raise RuntimeError("decoding workers exited before reporting their results")


def _decode_share(rows: list[dict], schema, fingerprint: str):
    import datasets

    return datasets.Dataset.from_generator(_encode, features=schema, gen_kwargs={"rows": rows},
                                           split="train", fingerprint=fingerprint)


_progress = None  # in a decoding worker: the queue that `_encode` reports each clip to


def _decode_worker(job: int, rows: list[dict], schema, fingerprint: str, queue, cache) -> None:
    """One process's share: decode into the datasets cache, report the Arrow files' paths."""
    global _progress
    import traceback

    import datasets

    try:
        datasets.config.HF_DATASETS_CACHE = cache  # as the parent has it (set at run time, too)
        datasets.disable_progress_bars()  # the parent shows one bar for all
        _progress = queue
        share = _decode_share(rows, schema, fingerprint)
        queue.put(("done", job, [f["filename"] for f in share.cache_files]))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        queue.put(("error", job, traceback.format_exc()))


def _encode(rows: list[dict]):
    """Rows in the schema, audio validated and embedded; a failure fills ``_error`` instead."""
    for row in rows:
        example = {k: row[k] for k in _FIELDS}
        example["audio"], example[_ERROR] = None, None
        try:
            example["audio"] = _audio_bytes(row)
        except audio_io.AudioError as error:
            example[_ERROR] = error.problem
        except Exception as error:  # noqa: BLE001 - a renderer's or reader's failure is a skip
            example[_ERROR] = f"cannot read: {type(error).__name__}: {error}"
        if _progress is not None:
            _progress.put(("progress", 0, 1))
        yield example


def _audio_bytes(row: dict) -> dict:
    """The clip's original bytes after a full decode and check (rendered audio as FLAC)."""
    import soundfile as sf

    path = row["file"]
    if row["render"]:
        import dataset_scripts

        wave, rate = dataset_scripts.load(row["corpus"]).to_audio(path)
        wave = audio_io.prepare(wave, rate, None, path)
        buffer = io.BytesIO()
        sf.write(buffer, wave, rate, format="FLAC")
        return {"bytes": buffer.getvalue(), "path": str(Path(row["name"]).with_suffix(".flac"))}
    audio_io.load(path)
    return {"bytes": Path(path).read_bytes(), "path": row["name"]}


# -- report ----------------------------------------------------------------------------


def _strict_message(skipped: Sequence[Skipped]) -> str:
    more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
    return f"strict: {skipped[0]}{more}"


def _nothing_message(names: Sequence[str], skipped: Sequence[Skipped]) -> str:
    message = f"no clips found for {', '.join(names)}"
    if skipped:
        message += f"; all {len(skipped)} candidates were skipped, first: {skipped[0]}"
    return message


def write_skip_report(skipped: Iterable[Skipped], path: Path, roots: Mapping[str, Any]) -> None:
    """A TSV of (corpus, file, reason); files are shown relative to their corpus root."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["corpus", "file", "reason"])
        for skip in skipped:
            writer.writerow([skip.corpus, _relative(skip.file, roots.get(skip.corpus)), skip.reason])


def read_skip_report(path: str | os.PathLike) -> list[Skipped]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        next(reader)
        return [Skipped(*row) for row in reader]


def _relative(file: str, root) -> str:
    if root is None:
        return file
    try:
        return Path(os.path.abspath(file)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return file


# -- write -----------------------------------------------------------------------------


def _split_by_corpus(dataset, names: Sequence[str]) -> dict:
    """One dataset per corpus (rows are grouped by corpus, so these are contiguous selects)."""
    corpus = dataset["corpus"][:]  # one list: indexing the lazy Column selects once per row
    parts = {}
    start = 0
    for name in names:
        end = start
        while end < len(corpus) and corpus[end] == name:
            end += 1
        parts[name] = dataset.select(range(start, end))
        start = end
    return parts


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise PrepareError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise PrepareError(f"{out}: exists and is not empty (pass overwrite=True / --overwrite)")


def write(
    parts: Mapping[str, Any],
    modules: Mapping[str, Any],
    skipped: Sequence[Skipped],
    out: str | os.PathLike,
    *,
    label_set: LabelSet | None = None,
    overwrite: bool = False,
    max_shard_bytes: int = MAX_SHARD_BYTES,
    roots: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``data/<corpus>/train-*.parquet``, the skip report and README.md, atomically.

    Everything goes to a temporary folder beside ``out`` that replaces it at the end, so
    a failure leaves either the old folder or nothing, never half a dataset.
    """
    out = Path(out).resolve()
    _check_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    old = None
    try:
        files: dict[str, list[str]] = {}
        for name, part in parts.items():
            if len(part) == 0:
                continue
            shards = max(1, math.ceil(part.data.nbytes / max_shard_bytes))
            folder = tmp / "data" / name
            folder.mkdir(parents=True)
            for i in range(shards):
                shard = part.shard(shards, i, contiguous=True)
                shard.to_parquet(str(folder / f"train-{i:05d}-of-{shards:05d}.parquet"))
            files[name] = [f"data/{name}/*.parquet"]
        write_skip_report(skipped, tmp / SKIP_REPORT, roots or {})
        card = dataset_card(parts, modules, skipped, label_set=label_set)
        card.save(tmp / "README.md")
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def _configs(parts: Mapping[str, Any], modules: Mapping[str, Any]) -> list[dict]:
    """``configs:`` of the card: all (default), one per corpus, one per domain present."""
    present = [n for n, p in parts.items() if len(p)]
    configs = [
        {
            "config_name": "all",
            "default": True,
            "data_files": [{"split": "train", "path": [f"data/{n}/*.parquet" for n in present]}],
        }
    ]
    for name in present:
        configs.append(
            {"config_name": name, "data_files": [{"split": "train", "path": f"data/{name}/*.parquet"}]}
        )
    for domain in DOMAINS:
        members = [n for n in present if modules[n].DOMAIN == domain]
        if members:
            configs.append(
                {
                    "config_name": domain,
                    "data_files": [{"split": "train", "path": [f"data/{n}/*.parquet" for n in members]}],
                }
            )
    return configs


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def dataset_card(parts: Mapping[str, Any], modules: Mapping[str, Any], skipped: Sequence[Skipped], *,
                 label_set: LabelSet | None = None):
    """The README.md of a prepared dataset, from ``model_cards/dataset_card.md``."""
    from huggingface_hub import DatasetCard, DatasetCardData

    from model_cards import template_path

    present = {n: p for n, p in parts.items() if len(p)}
    any_part = next(iter(present.values()))
    label_names = any_part.features["label"].names
    counts, no_label = {}, {}
    for name, part in present.items():
        labels = Counter(part["label"])
        counts[name] = [labels.get(i, 0) for i in range(len(label_names))]
        no_label[name] = labels.get(NO_LABEL, 0)
    skips = Counter(s.corpus for s in skipped)
    total = sum(len(p) for p in present.values())
    domains = sorted({modules[n].DOMAIN for n in present})
    data = DatasetCardData(
        pretty_name="hub_emo emotion corpora: " + ", ".join(present),
        license="other",
        task_categories=["audio-classification"],
        tags=["emotion-recognition", *domains, "hub_emo"],
        size_categories=[_size_category(total)],
        configs=_configs(present, modules),
    )
    corpora = [
        {
            "name": name,
            "domain": modules[name].DOMAIN,
            "clips": len(part),
            "skipped": skips.get(name, 0),
            "homepage": modules[name].HOMEPAGE,
            "license": modules[name].LICENSE,
            "citation": modules[name].CITATION,
            "label_map": modules[name].LABEL_MAP,
            "dropped": modules[name].DROPPED,
            "unlabelled": getattr(modules[name], "UNLABELLED", {}),
            "no_label": no_label[name],
            "counts": counts[name],
        }
        for name, part in present.items()
    ]
    return DatasetCard.from_template(
        data,
        template_path=str(template_path("dataset_card.md")),
        corpora=corpora,
        label_names=label_names,
        label_set=label_set,
        total=total,
        skipped=len(skipped),
        skip_report=SKIP_REPORT,
        domains=domains,
    )


# -- push ------------------------------------------------------------------------------


def push(folder: str | os.PathLike, repo_id: str, *, private: bool = False) -> str:
    """Upload a prepared folder to a dataset repo on ``HF_ENDPOINT``; returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        commit_message="hub-emo prepare",
    )
    return str(url)


# -- read back ---------------------------------------------------------------------------

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
        missing = [c for c in features() if c not in part.column_names]
        if missing:
            raise ValueError(f"{name}: not a prepared hub_emo dataset; missing columns {missing}")
    return loaded


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


def dataset_fingerprint(dataset) -> str:
    """A content hash of a dataset's ids and audio (no decoding), for cache keys."""
    import hashlib

    digest = hashlib.sha256()
    for clip_id, content in _clip_contents(dataset):
        digest.update(clip_id.encode() + b"\0")
        digest.update(content)
    return digest.hexdigest()


def clip_fingerprints(dataset) -> list[str]:
    """One content hash per row (id and audio, no decoding): a per-clip cache key, so a clip
    cached once serves every split, fold and run that holds it."""
    import hashlib

    return [hashlib.sha256(clip_id.encode() + b"\0" + content).hexdigest()[:32]
            for clip_id, content in _clip_contents(dataset)]
