"""Prepare emotion corpora into the one schema: find, validate, decode, write, report.

The corpus modules in `dataset_scripts` only yield records and skips; everything else
happens here, once, for every corpus:

1. collect: run each module's ``records(root, **options)``, drop duplicate ids and
   non-canonical labels, sort by id (a second run gives the same dataset);
2. decode (`hub_emo.data.decode`): every clip is read and checked through `hub_emo.audio`
   (corrupt, empty, silent, NaN ...), in ``num_proc`` processes, and its original bytes
   are embedded (audio stays at its own rate; ``Audio(sampling_rate=...)`` resamples on decode);
3. report (`hub_emo.data.report`): whatever was left out is a (corpus, file, reason) row of
   the skip report (``strict=True`` makes the first one an error naming the file);
4. write (optional, `hub_emo.data.parquet`): Parquet shards per corpus, the skip report and a
   dataset card with one ``configs:`` entry per corpus and per domain, into a temporary
   folder beside the target that replaces it only when everything is written; then,
   optionally, push (`hub_emo.data.upload`).
"""

from __future__ import annotations

import inspect
import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from hub_emo.audio import AUDIO_EXTENSIONS
from hub_emo.data.decode import ERROR_COLUMN, FIELDS, decode
from hub_emo.data.parquet import MAX_SHARD_BYTES, check_target, write
from hub_emo.data.report import SKIP_REPORT, PrepareError, Skipped
from hub_emo.data.upload import push
from hub_emo.schema import (EMOTIONS, NO_LABEL, LabelSet, apply_label_set, count_unlabelled, dataset_features,
                            get_label_set)

logger = logging.getLogger(__name__)


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

    names, modules = _corpora(names, corpus_options or {})
    if out is not None:
        check_target(Path(out), overwrite)
    label_set = get_label_set(label_set) if label_set is not None else None
    roots = {name: root[name] if isinstance(root, Mapping) else root for name in names}

    rows, skipped = _collect_all(modules, roots, options, corpus_options or {}, strict)
    dataset, failed = _decode_checked(rows, num_proc, strict)
    skipped.extend(failed)
    if label_set is not None:
        dataset = apply_label_set(dataset, label_set)
        if len(dataset) == 0:
            raise PrepareError(f"label set {label_set.name!r} keeps none of the {len(rows)} clips")

    parts = _split_by_corpus(dataset, names)
    result = Prepared(dataset=datasets.DatasetDict(parts) if by_config else dataset, skipped=skipped, corpora=names)
    if out is not None or push_to_hub:
        with tempfile.TemporaryDirectory(prefix="hub_emo_prepare_") as scratch:
            target = Path(out) if out is not None else Path(scratch, "dataset")
            write(parts, modules, skipped, target, label_set=label_set, overwrite=overwrite,
                  max_shard_bytes=max_shard_bytes, roots=roots)
            if out is not None:
                result.out = target.resolve()
            if push_to_hub:
                result.url = push(target, push_to_hub, private=private)
    return result


# -- collect ---------------------------------------------------------------------------


def _corpora(names: str | Sequence[str], corpus_options: Mapping[str, Any]) -> tuple[tuple[str, ...], dict]:
    """The corpus names, each once, and their modules; options only for corpora being prepared."""
    import dataset_scripts

    names = (names,) if isinstance(names, str) else tuple(names)
    if not names:
        raise PrepareError("no corpus named")
    duplicates = sorted(n for n, c in Counter(names).items() if c > 1)
    if duplicates:
        raise PrepareError(f"corpus named twice: {', '.join(duplicates)}")
    modules = {name: dataset_scripts.load(name) for name in names}
    strays = sorted(set(corpus_options) - set(names))
    if strays:
        raise PrepareError(f"options given for corpora not being prepared: {', '.join(strays)}")
    return names, modules


def _collect_all(modules: Mapping[str, Any], roots: Mapping[str, Any], options: Mapping[str, Any],
                 corpus_options: Mapping[str, Mapping[str, Any]], strict: bool) -> tuple[list[dict], list[Skipped]]:
    """Every corpus's rows, in corpus order, and what their modules left out."""
    rows: list[dict] = []
    skipped: list[Skipped] = []
    for name, module in modules.items():
        kwargs = _options_for(module, options, corpus_options.get(name, {}))
        found, left_out = _collect(module, Path(roots[name]), kwargs)
        if strict and left_out:
            raise PrepareError(_strict_message(left_out))
        rows.extend(found)
        skipped.extend(left_out)
    if not rows:
        raise PrepareError(_nothing_message(tuple(modules), skipped))
    return rows, skipped


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
                **{k: item.get(k) for k in FIELDS},
                "label": NO_LABEL if item["label"] is None else item["label"],
                "corpus": module.NAME,
                "domain": module.DOMAIN,
                "file": str(path),
                "name": name,
                "render": render and path.suffix.lower() not in AUDIO_EXTENSIONS,
                "stamp": stamp,  # part of the cache fingerprint: an edited file is re-read
            }
    return [by_id[k] for k in sorted(by_id)], skipped


# -- decode and check ------------------------------------------------------------------


def _decode_checked(rows: list[dict], num_proc: int | None, strict: bool):
    """(the clips that decoded, a `Skipped` for each one that did not)."""
    import datasets
    import datasets.features._torchcodec  # noqa: F401  - import once here, not in every worker

    schema = dataset_features()
    schema[ERROR_COLUMN] = datasets.Value("string")
    dataset = decode(rows, schema, max(1, min(int(num_proc or 1), len(rows))))
    errors = dataset[ERROR_COLUMN][:]  # one list: iterating the lazy Column formats row by row
    failed = [Skipped(row["corpus"], row["file"], error) for row, error in zip(rows, errors) if error is not None]
    if strict and failed:
        raise PrepareError(_strict_message(failed))
    if failed:
        dataset = dataset.filter(lambda e: e is None, input_columns=ERROR_COLUMN)
    return dataset.remove_columns(ERROR_COLUMN), failed


def _strict_message(skipped: Sequence[Skipped]) -> str:
    more = f" (and {len(skipped) - 1} more)" if len(skipped) > 1 else ""
    return f"strict: {skipped[0]}{more}"


def _nothing_message(names: Sequence[str], skipped: Sequence[Skipped]) -> str:
    message = f"no clips found for {', '.join(names)}"
    if skipped:
        message += f"; all {len(skipped)} candidates were skipped, first: {skipped[0]}"
    return message


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
