"""Layerwise probing: which hidden state of which model carries emotion, per domain.

Protocol (the paper's group conventions, ../shared/notes/paper.md): a probe on each single
layer's mean-pooled features, trained and scored leave-one-fold-out over the ``fold``
column, within each domain; and cross-domain (fit on one domain's training folds, score on
the other domain's held-out fold — actor-independent when both domains share folds, as in
RAVDESS; otherwise fit on all of one domain and score on all of the other, fold "all").

Probes:
* ``"mlp"``: Linear(D→128)-ReLU-Linear(128→16)-ReLU-Linear(16→C), Adam, cross-entropy, a
  fixed epoch budget, seeded. The probes of all layers train together as one batched
  network (separate weights per layer, same mini-batch order), so L layers cost about one.
* ``"logistic"``: scikit-learn's multinomial logistic regression.
Features are standardised with the training fold's mean and std.

Metrics (``hub_emo.training.metric``, the same definitions as training): WA = accuracy,
UA = balanced accuracy (mean recall over the classes present), macro-F1 over the classes
present in the scored domain.

Entry points::

    run_probing(backbones: dict[str, path | model | (model, extractor)], dataset,
                label_set="ravdess6", out_dir="probe_report", *, probe="mlp",
                layers=None, epochs=100, lr=1e-3, batch_size=32, seed=0,
                cross_domain=True, select_by="UA", frames_per_clip=32,
                trust_remote_code=False, progress=True) -> ProbingResult
        ProbingResult.rows      list of dicts: model, probe, train_domain, domain, layer,
                                fold, n_train, n_test, WA, UA, macro_F1
        ProbingResult.best      list of dicts: best layer per model / train_domain / domain
        ProbingResult.report    path of report.md; .csv / .json: the tidy table
        ProbingResult.warnings  list of str (also in the report)
    probe_scores(features (L, N, D), labels, domains, folds, ...) -> list of dicts
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hub_emo import schema

PROBES = ("mlp", "logistic")
METRICS = ("WA", "UA", "macro_F1")
HIDDEN = (128, 16)


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
        for b in self.best:
            lines.append(f"  {b['model']:<16} {b['train_domain']:>6}→{b['domain']:<6} best layer "
                         f"{b['layer']:>2}  UA {b['UA']:.3f}  WA {b['WA']:.3f}  F1 {b['macro_F1']:.3f}")
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  FAILED {name}: {message}" for name, message in self.failed.items()]
        return "\n".join(lines)


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per layer and dim, with the training set's statistics (train: (L, n, D))."""
    mean = train.mean(axis=1, keepdims=True)
    std = train.std(axis=1, keepdims=True)
    std[std < 1e-8] = 1.0
    return (train - mean) / std, (test - mean) / std


def _fit_predict_mlp(train, y_train, test, num_classes, *, epochs, lr, batch_size, seed):
    """Train one MLP per layer at once; returns (L, m) predicted class ids."""
    import torch

    layers, n, dim = train.shape
    sizes = (dim, *HIDDEN, num_classes)
    generator = torch.Generator().manual_seed(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / fan_in**0.5  # nn.Linear's default initialisation range
        weight = (torch.rand(layers, fan_in, fan_out, generator=generator) * 2 - 1) * bound
        bias = (torch.rand(layers, 1, fan_out, generator=generator) * 2 - 1) * bound
        params += [weight.requires_grad_(), bias.requires_grad_()]

    def forward(x):
        for i in range(0, len(params), 2):
            x = torch.baddbmm(params[i + 1], x, params[i])
            if i + 2 < len(params):
                x = torch.relu(x)
        return x  # (L, b, C)

    x_train = torch.as_tensor(train, dtype=torch.float32)
    targets = torch.as_tensor(y_train, dtype=torch.long)
    optimiser = torch.optim.Adam(params, lr=lr)
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            logits = forward(x_train[:, index])
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, num_classes), targets[index].repeat(layers), reduction="sum"
            ) / len(index)  # sum over layers: each layer's probe gets its own mean-loss gradient
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        return forward(torch.as_tensor(test, dtype=torch.float32)).argmax(-1).numpy()


def _fit_predict_logistic(train, y_train, test, *, seed, **_):
    from sklearn.linear_model import LogisticRegression

    out = []
    for layer in range(train.shape[0]):
        model = LogisticRegression(max_iter=2000, random_state=seed)
        model.fit(train[layer], y_train)
        out.append(model.predict(test[layer]))
    return np.stack(out)


def _scores(y_true, y_pred, labels) -> dict:
    """WA, UA, macro-F1 with the project's one metric definition (the training metric module)."""
    from hub_emo.training.metric.hub_emo_metrics import classification

    scores = classification(y_pred, y_true, labels=labels)
    return {"WA": scores["accuracy"], "UA": scores["balanced_accuracy"], "macro_F1": scores["macro_f1"]}


def _splits(domains, folds, train_domain, test_domain, problems):
    """(fold name, train mask, test mask) for one train/test domain pair."""
    in_train, in_test = domains == train_domain, domains == test_domain
    train_folds = sorted(set(folds[in_train]))
    test_folds = sorted(set(folds[in_test]))
    if train_domain == test_domain:
        if len(train_folds) < 2:
            problems.append(f"domain {train_domain!r} has {len(train_folds)} fold(s); "
                            "leave-one-fold-out probing needs at least 2: skipped")
            return []
        return [(f, in_train & (folds != f), in_test & (folds == f)) for f in train_folds]
    if len(train_folds) >= 2 and train_folds == test_folds:
        return [(f, in_train & (folds != f), in_test & (folds == f)) for f in train_folds]
    return [("all", in_train, in_test)]


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
) -> list[dict]:
    """Score a probe on every layer of (L, N, D) pooled ``features``; one row per layer × fold."""
    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; choose from {PROBES}")
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 3:
        raise ValueError(f"features must be (layers, clips, dims), got shape {features.shape}")
    labels, domains, folds = np.asarray(labels), np.asarray(domains).astype(str), np.asarray(folds).astype(str)
    if not len(labels) == len(domains) == len(folds) == features.shape[1]:
        raise ValueError("features, labels, domains and folds must have one entry per clip")
    layer_ids = list(range(features.shape[0])) if layer_ids is None else list(layer_ids)
    problems = [] if problems is None else problems
    present = [d for d in schema.DOMAINS if d in set(domains)] + sorted(set(domains) - set(schema.DOMAINS))
    pairs = [(d, d) for d in present]
    if cross_domain:
        if len(present) < 2:
            problems.append(f"{model}: only the {present} domain(s) present; cross-domain probing skipped")
        pairs += [(a, b) for a in present for b in present if a != b]
    fit = _fit_predict_mlp if probe == "mlp" else _fit_predict_logistic
    rows = []
    for train_domain, test_domain in pairs:
        scored = sorted(set(labels[domains == test_domain]))
        for fold, train_mask, test_mask in _splits(domains, folds, train_domain, test_domain, problems):
            if not test_mask.any():
                continue
            if len(set(labels[train_mask])) < 2:
                problems.append(f"{model}: {train_domain} training set for fold {fold} has fewer than 2 classes: skipped")
                continue
            train, test = _standardise(features[:, train_mask], features[:, test_mask])
            predictions = fit(train, labels[train_mask], test, num_classes=num_classes,
                              epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)
            for position, layer in enumerate(layer_ids):
                rows.append({
                    "model": model, "probe": probe, "train_domain": train_domain, "domain": test_domain,
                    "layer": int(layer), "fold": str(fold), "n_train": int(train_mask.sum()),
                    "n_test": int(test_mask.sum()),
                    **_scores(labels[test_mask], predictions[position], scored),
                })
    return rows


def summarise(rows: list[dict], select_by: str = "UA") -> tuple[list[dict], list[dict]]:
    """(mean over folds per model/domain pair/layer with min and max, best layer per group)."""
    if select_by not in METRICS:
        raise ValueError(f"select_by must be one of {METRICS}")
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["train_domain"], row["domain"], row["layer"]), []).append(row)
    means = []
    for (model, train_domain, domain, layer), members in groups.items():
        entry = {"model": model, "train_domain": train_domain, "domain": domain, "layer": layer,
                 "folds": len(members)}
        for metric in METRICS:
            values = [m[metric] for m in members]
            entry[metric] = float(np.mean(values))
            entry[f"{metric}_min"] = float(np.min(values))
            entry[f"{metric}_max"] = float(np.max(values))
        means.append(entry)
    best: dict[tuple, dict] = {}
    for entry in means:
        key = (entry["model"], entry["train_domain"], entry["domain"])
        if key not in best or entry[select_by] > best[key][select_by]:
            best[key] = entry
    return means, list(best.values())


def clip_metadata(dataset, label_set) -> tuple[list[str], dict[str, np.ndarray], tuple[str, ...]]:
    """(ids, {label, domain, fold} arrays, class names) after applying a label set; no audio decoded."""
    meta = dataset.select_columns(["id", "label", "domain", "fold"])
    meta = schema.apply_label_set(meta, label_set)
    if len(meta) == 0:
        raise ValueError(f"no clip of the dataset belongs to label set {schema.get_label_set(label_set).name!r}")
    domain_names = meta.features["domain"].names
    columns = meta.to_dict()
    arrays = {
        "label": np.asarray(columns["label"]),
        "domain": np.asarray([domain_names[d] for d in columns["domain"]]),
        "fold": np.asarray([str(f) for f in columns["fold"]]),
    }
    return [str(i) for i in columns["id"]], arrays, tuple(meta.features["label"].names)


def rows_for(feature_ids: Sequence[str], wanted: Sequence[str]) -> np.ndarray:
    """Positions of ``wanted`` ids in a feature set."""
    position = {clip: i for i, clip in enumerate(feature_ids)}
    missing = [w for w in wanted if w not in position]
    if missing:
        raise ValueError(f"{len(missing)} clips lack features (e.g. {missing[:3]}); was the cache built on another dataset?")
    return np.asarray([position[w] for w in wanted], dtype=np.int64)


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
) -> ProbingResult:
    """Probe every (or the chosen) layer of each backbone; write CSV, JSON, plots and report.md.

    ``frames_per_clip`` only sets what the shared feature cache keeps for a later FAD run.
    """
    from hub_emo.analysis import features as feats
    from hub_emo.analysis import report

    if not backbones:
        raise ValueError("give at least one backbone (name -> folder, Hub id or model)")
    ids, meta, classes = clip_metadata(dataset, label_set)
    problems: list[str] = []
    rows: list[dict] = []
    failed: dict[str, str] = {}
    for name, extracted in feats.extract_each(backbones, dataset, failed, frames_per_clip=frames_per_clip,
                                              trust_remote_code=trust_remote_code, progress=progress):
        chosen = feats.resolve_layers(layers, extracted.num_hidden_states, name) or extracted.layers
        matrix = np.stack([extracted.layer(k) for k in chosen])[:, rows_for(extracted.ids, ids)]
        rows += probe_scores(matrix, meta["label"], meta["domain"], meta["fold"], num_classes=len(classes),
                             layer_ids=chosen, model=name, probe=probe, cross_domain=cross_domain,
                             epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, problems=problems)
    means, best = summarise(rows, select_by)
    out = Path(out_dir)
    result = ProbingResult(rows, best, warnings=list(dict.fromkeys(problems)), failed=failed)
    result.report, result.csv, result.json = report.write_probing_report(
        out, rows, means, best, result.warnings,
        settings={"label set": schema.get_label_set(label_set).name, "classes": ", ".join(classes),
                  "probe": probe, "epochs": epochs, "lr": lr, "batch size": batch_size, "seed": seed,
                  "selected by": select_by, "models": ", ".join(n for n in backbones if n not in failed),
                  **({"failed": "; ".join(f"{n}: {m}" for n, m in failed.items())} if failed else {})})
    return result
