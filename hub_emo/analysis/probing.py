"""Layerwise probing: which hidden state of which model carries emotion, per domain.

Protocol (the conventions of the paper's group, Sun et al., ICASSP 2025): a probe on each single
layer's mean-pooled features, trained and scored leave-one-fold-out over the ``fold``
column, within each domain; and cross-domain (fit on one domain's training folds, score on
the other domain's held-out fold — actor-independent when both domains share folds, as in
RAVDESS; otherwise fit on all of one domain and score on all of the other, fold "all").

No choice is made on test data: the best layer is chosen by nested cross-validation. In
each outer fold, every remaining training fold is held out in turn as validation (the probe
fits on the rest), the layer with the best mean validation score is chosen, and that layer's
score on the outer test fold is recorded; the report gives those test scores as mean ± std
over the outer folds. (With no shared folds, fold "all", validation folds come from the
training domain, since the whole other domain is the test set.) Two (outer, inner) pairs
that leave out the same two folds share one fit, so K folds cost K + K(K-1)/2 fits per
domain pair (RAVDESS, K = 4: 10, against 4 without a choice on validation data).

Probes:
* ``"mlp"``: Linear(D→128)-ReLU-Linear(128→16)-ReLU-Linear(16→C), Adam, cross-entropy, a
  fixed epoch budget, seeded. The probes of all layers train together as one batched
  network (separate weights per layer, same mini-batch order), so L layers cost about one.
* ``"logistic"``: scikit-learn's multinomial logistic regression.
Features are standardised with the training fold's mean and std.

MLP probes train on ``device`` (default this rank's GPU, else the CPU). Under torchrun every
rank extracts its share of the features and rank 0 alone probes and writes the report.

Metrics (``hub_emo.metric``, the same definitions as training): WA = accuracy,
UA = balanced accuracy (mean recall), macro-F1, both over the classes present in the scored
domain; every scored clip counts, so a cross-domain probe predicting a class the domain
lacks (speech's disgust on song) scores a miss.

Entry points::

    run_probing(backbones: dict[str, path | model | (model, extractor)], dataset,
                label_set="ravdess6", out_dir="probe_report", *, probe="mlp",
                layers=None, epochs=100, lr=1e-3, batch_size=32, seed=0,
                cross_domain=True, select_by="UA", frames_per_clip=32,
                trust_remote_code=False, progress=True, device=None) -> ProbingResult
        (None on ranks other than 0 under torchrun: rank 0 alone probes and reports)
        ProbingResult.rows      list of dicts: model, probe, train_domain, domain, layer,
                                fold, split ("test" | "validation"), inner_fold, n_train,
                                n_test, WA, UA, macro_F1
        ProbingResult.best      list of dicts per model / train_domain / domain: layer (chosen
                                most often), layers (per outer fold), folds, chosen_by, and
                                the chosen layers' test WA/UA/macro_F1 with *_std over folds
        ProbingResult.report    path of report.md; .csv / .json: the tidy table
        ProbingResult.warnings  list of str (also in the report)
    probe_scores(features (L, N, D), labels, domains, folds, ...) -> list of dicts
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np

from hub_emo import schema, threads
from hub_emo.analysis.clips import clip_metadata, rows_for, unlabelled_note
from hub_emo.progress import bar

PROBES = ("mlp", "logistic")
METRICS = ("WA", "UA", "macro_F1")
HIDDEN = (128, 16)
#: Features at least this wide train their layers' probes as parallel groups (measured on 2 cores:
#: at 512 and 768 dims groups match 2 intra-op threads quiet; at 256 and below they are slower).
GROUP_MIN_DIM = 512


@dataclass
class ProbingResult:
    rows: list[dict]
    best: list[dict]
    report: Path | None = None
    csv: Path | None = None
    json: Path | None = None
    warnings: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{len(self.rows)} scores; report: {self.report}"]
        if self.best:
            lines.append(f"layer chosen {self.best[0]['chosen_by']}")
        for b in self.best:
            lines.append(f"  {b['model']:<16} {b['train_domain']:>6}→{b['domain']:<6} best layer "
                         f"{b['layer']:>2} (per fold {b['layers']})  test UA {b['UA']:.3f} ± {b['UA_std']:.3f}  "
                         f"WA {b['WA']:.3f} ± {b['WA_std']:.3f}  F1 {b['macro_F1']:.3f} ± {b['macro_F1_std']:.3f}")
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  FAILED {name}: {message}" for name, message in self.failed.items()]
        return "\n".join(lines)


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per layer and dim, with the training set's statistics (train: (L, n, D))."""
    mean = train.mean(axis=1, keepdims=True)
    std = train.std(axis=1, keepdims=True)
    std[std < 1e-8] = 1.0
    return (train - mean) / std, (test - mean) / std


def _fit_predict_mlp(train, y_train, test, num_classes, *, epochs, lr, batch_size, seed, workers=1, device=None):
    """Train one MLP per layer on ``device`` (default the CPU); returns (L, m) predicted class ids.

    The layers' probes are independent (own weights, one mini-batch order), so they train as
    ``workers`` groups of layers in parallel threads, each group one batched network. Run on
    one intra-op thread each (`hub_emo.threads.task_parallel`), that is coarse-grained
    parallelism: when another process takes a core, a group just gets less time, where
    intra-op threads would wait for each other at every one of these tiny ops. Initial
    weights and batch orders are drawn for all layers first, so a layer's result does not
    depend on the grouping. Below `GROUP_MIN_DIM` the ops are too small for threads to gain
    over the Python overhead they contend for: one group, as on an accelerator, where one
    batched network of every layer is the fastest.
    """
    import torch

    device = torch.device(device or "cpu")
    layers, n, dim = train.shape
    initial, orders = _initial_draws((dim, *HIDDEN, num_classes), layers, n, epochs, seed, device)
    fit_group = partial(
        _fit_layer_group, initial=initial, orders=orders,
        x_train=torch.as_tensor(train, dtype=torch.float32, device=device),
        targets=torch.as_tensor(y_train, dtype=torch.long, device=device),
        x_test=torch.as_tensor(test, dtype=torch.float32, device=device),
        lr=lr, batch_size=batch_size, num_classes=num_classes, device=device,
    )
    workers = max(1, min(workers, layers)) if dim >= GROUP_MIN_DIM and device.type == "cpu" else 1
    bounds = np.linspace(0, layers, workers + 1).round().astype(int)
    groups = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    if len(groups) == 1:
        return fit_group(groups[0])
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(groups)) as pool:
        return np.concatenate(list(pool.map(fit_group, groups)))


def _initial_draws(sizes, layers: int, n: int, epochs: int, seed: int, device):
    """Every layer's initial weights, then every epoch's batch order, from one generator."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    initial = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / fan_in**0.5  # nn.Linear's default initialisation range
        initial.append((torch.rand(layers, fan_in, fan_out, generator=generator) * 2 - 1) * bound)
        initial.append((torch.rand(layers, 1, fan_out, generator=generator) * 2 - 1) * bound)
    orders = [torch.randperm(n, generator=generator).to(device) for _ in range(epochs)]
    return initial, orders


def _fit_layer_group(group: slice, *, initial, orders, x_train, targets, x_test, lr, batch_size, num_classes,
                     device) -> np.ndarray:
    """Train the probes of the layers in ``group`` as one batched network; their test predictions."""
    import torch

    params = [p[group].to(device).clone().requires_grad_() for p in initial]

    def forward(x):
        for i in range(0, len(params), 2):
            x = torch.baddbmm(params[i + 1], x, params[i])
            if i + 2 < len(params):
                x = torch.relu(x)
        return x  # (g, b, C)

    count, n = group.stop - group.start, x_train.shape[1]
    optimiser = torch.optim.Adam(params, lr=lr, foreach=True)  # one op per update, not one per tensor
    for order in orders:
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            logits = forward(x_train[group, index])
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, num_classes), targets[index].repeat(count), reduction="sum"
            ) / len(index)  # sum over layers: each layer's probe gets its own mean-loss gradient
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        return forward(x_test[group]).argmax(-1).cpu().numpy()


def _fit_predict_logistic(train, y_train, test, *, seed, **_):  # scikit-learn: on the CPU
    from sklearn.linear_model import LogisticRegression

    out = []
    for layer in range(train.shape[0]):
        model = LogisticRegression(max_iter=2000, random_state=seed)
        model.fit(train[layer], y_train)
        out.append(model.predict(test[layer]))
    return np.stack(out)


def _scores(y_true, y_pred, labels) -> dict:
    """WA, UA, macro-F1 with the project's one metric definition (hub_emo.metric, as training logs them)."""
    from hub_emo.metric.hub_emo_metrics import classification

    scores = classification(y_pred, y_true, labels=labels)
    return {"WA": scores["accuracy"], "UA": scores["balanced_accuracy"], "macro_F1": scores["macro_f1"]}


def _splits(domains, folds, train_domain, test_domain, problems):
    """(fold name, train mask, test mask, inner splits) for one train/test domain pair.

    Inner splits ``(inner fold, fit mask, validation mask)`` leave out one more training fold
    each and never touch the outer test fold: the layer is chosen on them alone. Validation
    clips come from the test domain's held-out training fold; with no shared folds (fold
    "all": the whole test domain is the test set) they come from the training domain.
    """
    in_train, in_test = domains == train_domain, domains == test_domain
    train_folds = sorted(set(folds[in_train]))
    test_folds = sorted(set(folds[in_test]))

    def inner(outer, validate_in):
        rest = [g for g in train_folds if g != outer]
        if len(rest) < 2:
            return []
        return [(g, in_train & (folds != outer) & (folds != g), validate_in & (folds == g)) for g in rest]

    if train_domain == test_domain:
        if len(train_folds) < 2:
            problems.append(f"domain {train_domain!r} has {len(train_folds)} fold(s); "
                            "leave-one-fold-out probing needs at least 2: skipped")
            return []
        return [(f, in_train & (folds != f), in_test & (folds == f), inner(f, in_test)) for f in train_folds]
    if len(train_folds) >= 2 and train_folds == test_folds:
        return [(f, in_train & (folds != f), in_test & (folds == f), inner(f, in_test)) for f in train_folds]
    return [("all", in_train, in_test, inner(None, in_train))]


def probe_scores(
    features: np.ndarray,
    labels: Sequence[int],
    domains: Sequence[str],
    folds: Sequence[str],
    *,
    num_classes: int,
    layer_ids: Sequence[int] | None = None,
    model: str = "model",
    probe: str = "mlp",
    cross_domain: bool = True,
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    problems: list[str] | None = None,
    progress: bool = False,
    device=None,
) -> list[dict]:
    """Score a probe on every layer of (L, N, D) pooled ``features`` (MLP probes fit on ``device``).

    One row per layer × outer fold with ``split="test"`` (fit on the other folds, scored on
    this one), and one per layer × outer fold × inner fold with ``split="validation"`` (fit
    without the outer and the inner fold, scored on the inner one) for choosing the layer.
    """
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; choose from {PROBES}")
    features, labels, domains, folds = _checked_inputs(features, labels, domains, folds)
    layer_ids = list(range(features.shape[0])) if layer_ids is None else list(layer_ids)
    problems = [] if problems is None else problems
    fit = partial(_fit_predict_mlp if probe == "mlp" else _fit_predict_logistic, num_classes=num_classes,
                  epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, device=device)
    pairs = _domain_pairs(domains, cross_domain, model, problems)
    tasks = {pair: _fold_tasks(labels, domains, folds, *pair, model, problems) for pair in pairs}
    predicted = _predict_per_training_set(fit, features, labels, [t for ts in tasks.values() for t in ts],
                                          len(layer_ids), bar_options=dict(desc=f"{model}: probes",
                                                                           disable=not progress))
    rows = []
    for (train_domain, test_domain), pair_tasks in tasks.items():
        for fit_mask, scored_mask, classes, fold, split, inner_fold in pair_tasks:
            predictions = predicted[fit_mask.tobytes()][:, scored_mask]
            rows += [{
                "model": model, "probe": probe, "train_domain": train_domain, "domain": test_domain,
                "layer": int(layer), "fold": str(fold), "split": split, "inner_fold": str(inner_fold),
                "n_train": int(fit_mask.sum()), "n_test": int(scored_mask.sum()),
                **_scores(labels[scored_mask], predictions[position], classes),
            } for position, layer in enumerate(layer_ids)]
    return rows


def _checked_inputs(features, labels, domains, folds):
    """The inputs as arrays, refused unless features are (L, N, D) with one label, domain and fold per clip."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 3:
        raise ValueError(f"features must be (layers, clips, dims), got shape {features.shape}")
    labels, domains, folds = np.asarray(labels), np.asarray(domains).astype(str), np.asarray(folds).astype(str)
    if not len(labels) == len(domains) == len(folds) == features.shape[1]:
        raise ValueError("features, labels, domains and folds must have one entry per clip")
    return features, labels, domains, folds


def _domain_pairs(domains, cross_domain: bool, model: str, problems: list[str]) -> list[tuple[str, str]]:
    """(train domain, test domain) pairs: each domain on itself, then every cross-domain pair."""
    present = [d for d in schema.DOMAINS if d in set(domains)] + sorted(set(domains) - set(schema.DOMAINS))
    pairs = [(d, d) for d in present]
    if cross_domain:
        if len(present) < 2:
            problems.append(f"{model}: only the {present} domain(s) present; cross-domain probing skipped")
        pairs += [(a, b) for a in present for b in present if a != b]
    return pairs


def _fold_tasks(labels, domains, folds, train_domain, test_domain, model, problems) -> list[tuple]:
    """(fit mask, scored mask, classes, fold, split, inner fold) of every test and validation fit."""
    scored = sorted(set(labels[domains == test_domain]))
    tasks = []
    for fold, train_mask, test_mask, inner in _splits(domains, folds, train_domain, test_domain, problems):
        if not test_mask.any():
            continue
        if len(set(labels[train_mask])) < 2:
            problems.append(f"{model}: {train_domain} training set for fold {fold} has fewer than 2 classes: skipped")
            continue
        tasks.append((train_mask, test_mask, scored, fold, "test", ""))
        if not inner:
            problems.append(f"{model}: {train_domain}→{test_domain} fold {fold}: fewer than 2 training folds "
                            "left for validation; no layer is chosen for it")
        tasks += [(fit_mask, validation_mask, sorted(set(labels[validation_mask])), fold, "validation", g)
                  for g, fit_mask, validation_mask in inner
                  if validation_mask.any() and len(set(labels[fit_mask])) >= 2]
    return tasks


def _predict_per_training_set(fit, features, labels, tasks, layers: int, bar_options=None) -> dict[bytes, np.ndarray]:
    """(layers, N) predictions (-1 where not scored) per distinct fit mask, keyed by its bytes.

    One fit per distinct training set: inner fold g of outer fold f trains on the same
    clips as inner fold f of outer fold g, so nested CV costs K + K(K-1)/2 fits, not K²; and
    a domain's probes scored on itself and on the other domain train on the same clips, so
    they share their fits too. A fit depends on its training set alone, so sharing it
    changes no prediction.
    """
    scored_by_fit: dict[bytes, tuple[np.ndarray, list[np.ndarray]]] = {}
    for fit_mask, scored_mask, *_ in tasks:
        scored_by_fit.setdefault(fit_mask.tobytes(), (fit_mask, []))[1].append(scored_mask)
    predicted: dict[bytes, np.ndarray] = {}
    fits = bar(scored_by_fit.items(), total=len(scored_by_fit), unit="fit", **(bar_options or {"disable": True}))
    for key, (fit_mask, scored) in fits:
        scored_any = np.logical_or.reduce(scored)
        train, test = _standardise(features[:, fit_mask], features[:, scored_any])
        out = np.full((layers, len(labels)), -1, dtype=np.int64)
        with threads.task_parallel() as workers:
            out[:, scored_any] = fit(train, labels[fit_mask], test, workers=workers)
        predicted[key] = out
    return predicted


CHOSEN_BY = ("per outer fold, the layer with the best mean {metric} over inner folds (validation: each "
             "training fold held out in turn; the outer test fold unseen); test = mean ± std over outer "
             "folds of the chosen layers' test scores")


def layer_summary(rows: list[dict], select_by: str = "UA") -> tuple[list[dict], list[dict]]:
    """(test mean ± std over folds per model/domain pair/layer, the chosen layer per group).

    The layer is chosen on validation rows only (nested cross-validation, `CHOSEN_BY`): in
    each outer fold the layer with the best mean ``select_by`` over its inner folds (ties:
    the lower layer); that layer's test score on the outer fold is what the choice earns.
    The group's ``layer`` is the one chosen most often (ties: the lower); ``layers`` lists
    the choice per fold. Test scores never pick anything.
    """
    if select_by not in METRICS:
        raise ValueError(f"select_by must be one of {METRICS}")
    test_rows = [r for r in rows if r.get("split", "test") == "test"]
    groups: dict[tuple, list[dict]] = {}
    for row in test_rows:
        groups.setdefault((row["model"], row["train_domain"], row["domain"], row["layer"]), []).append(row)
    means = []
    for (model, train_domain, domain, layer), members in groups.items():
        entry = {"model": model, "train_domain": train_domain, "domain": domain, "layer": layer,
                 "folds": len(members)}
        for metric in METRICS:
            values = [m[metric] for m in members]
            entry[metric] = float(np.mean(values))
            entry[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
            entry[f"{metric}_min"] = float(np.min(values))
            entry[f"{metric}_max"] = float(np.max(values))
        means.append(entry)

    validation: dict[tuple, dict[int, list[float]]] = {}
    for row in rows:
        if row.get("split") == "validation":
            key = (row["model"], row["train_domain"], row["domain"], row["fold"])
            validation.setdefault(key, {}).setdefault(row["layer"], []).append(row[select_by])
    test_score = {(r["model"], r["train_domain"], r["domain"], r["fold"], r["layer"]): r for r in test_rows}
    chosen: dict[tuple, list[tuple[str, int, dict]]] = {}
    for (model, train_domain, domain, fold), per_layer in validation.items():
        layer = max(sorted(per_layer), key=lambda k: np.mean(per_layer[k]))  # first maximum: the lower layer
        test = test_score.get((model, train_domain, domain, fold, layer))
        if test is not None:
            chosen.setdefault((model, train_domain, domain), []).append((fold, layer, test))
    best = []
    for (model, train_domain, domain), picks in chosen.items():
        picks.sort(key=lambda p: p[0])
        layers = [layer for _, layer, _ in picks]
        entry = {"model": model, "train_domain": train_domain, "domain": domain,
                 "layer": max(sorted(set(layers)), key=layers.count),
                 "layers": ",".join(str(k) for k in layers), "folds": len(picks),
                 "chosen_by": CHOSEN_BY.format(metric=select_by)}
        for metric in METRICS:
            values = [test[metric] for _, _, test in picks]
            entry[metric] = float(np.mean(values))
            entry[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        best.append(entry)
    return means, best


def run_probing(
    backbones: dict,
    dataset,
    label_set="ravdess6",
    out_dir="probe_report",
    *,
    probe: str = "mlp",
    layers: Sequence[int] | None = None,
    epochs: int = 100,
    lr: float = 1e-3,
    batch_size: int = 32,
    seed: int = 0,
    cross_domain: bool = True,
    select_by: str = "UA",
    frames_per_clip: int = 32,
    trust_remote_code: bool = False,
    progress: bool = True,
    device: str | None = None,
) -> ProbingResult | None:
    """Probe every (or the chosen) layer of each backbone; write CSV, JSON, plots and report.md.

    ``frames_per_clip`` only sets what the shared feature cache keeps for a later FAD run:
    the frames are written, never loaded. MLP probes fit on ``device`` (default this rank's
    GPU, else the CPU). Under torchrun every rank extracts its share and rank 0 alone probes
    and writes the report (`hub_emo.analysis.rank_zero`); the other ranks return None.
    """
    from hub_emo.analysis.rank_zero import on_rank_zero

    if not backbones:
        raise ValueError("give at least one backbone (name -> folder, Hub id or model)")
    settings = dict(label_set=label_set, out_dir=out_dir, probe=probe, layers=layers, epochs=epochs, lr=lr,
                    batch_size=batch_size, seed=seed, cross_domain=cross_domain, select_by=select_by,
                    trust_remote_code=trust_remote_code, progress=progress, device=device)
    clip_metadata(dataset, label_set)  # a label set that covers no clip fails before any extraction
    return on_rank_zero(backbones, dataset, lambda ok, failed: _probe(ok, dataset, failed, **settings),
                        frames_per_clip=frames_per_clip, trust_remote_code=trust_remote_code, progress=progress,
                        extract_first=True)


def _probe(backbones: dict, dataset, failed: dict, *, label_set, out_dir, probe, layers, epochs, lr, batch_size,
           seed, cross_domain, select_by, trust_remote_code, progress, device) -> ProbingResult:
    """`run_probing` on this process alone, from pooled features only; ``failed`` holds the models
    that failed before (name -> message) and gains those that fail here."""
    from hub_emo import features as feats
    from hub_emo.analysis import report
    from hub_emo.features.extract import default_device

    ids, meta, classes = clip_metadata(dataset, label_set)
    problems: list[str] = unlabelled_note(dataset)
    rows: list[dict] = []
    failed = dict(failed)
    device = default_device(device)
    here: dict[str, str] = {}
    for name, extracted in feats.extract_each(backbones, dataset, here, frames_per_clip=0,
                                              trust_remote_code=trust_remote_code, progress=progress):
        chosen = feats.resolve_layers(layers, extracted.num_hidden_states, name) or extracted.layers
        matrix = np.stack([extracted.layer(k) for k in chosen])[:, rows_for(extracted.ids, ids)]
        rows += probe_scores(matrix, meta["label"], meta["domain"], meta["fold"], num_classes=len(classes),
                             layer_ids=chosen, model=name, probe=probe, cross_domain=cross_domain,
                             epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, problems=problems,
                             progress=progress, device=device)
    failed.update(here)
    means, best = layer_summary(rows, select_by)
    result = ProbingResult(rows, best, warnings=list(dict.fromkeys(problems)), failed=failed)
    result.report, result.csv, result.json = report.write_probing_report(
        Path(out_dir), rows, means, best, result.warnings,
        settings={"label set": schema.get_label_set(label_set).name, "classes": ", ".join(classes),
                  "probe": probe, "epochs": epochs, "lr": lr, "batch size": batch_size, "seed": seed,
                  "layer chosen": CHOSEN_BY.format(metric=select_by),
                  "models": ", ".join(n for n in backbones if n not in failed),
                  **({"failed": "; ".join(f"{n}: {m}" for n, m in failed.items())} if failed else {})})
    return result
