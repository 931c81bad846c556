"""hub_emo's evaluation metrics as an `evaluate` module, loaded by local path (offline).

``evaluate.load("<path to this file>")`` returns
accuracy (WA), balanced accuracy (UA), macro-F1, per-class F1 and the confusion matrix.

Every reference counts. ``labels`` (default: the classes in the references) must hold every
reference class; a prediction outside ``labels`` (a speech-trained probe predicting
"disgust" on song, say) is a miss for its reference class, never a dropped row. UA (mean
recall) and macro-F1 average over one class set: the classes of ``labels`` that occur in
the references (a class no reference has has no recall; the predictions made for it still
count as misses of their reference classes). ``per_class_f1`` lists every class of
``labels`` (0 for one absent from the references).

`evaluate` copies this file into its cache, so it imports only installed packages.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

_DESCRIPTION = __doc__
_CITATION = ""
_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted class ids.
    references: true class ids.
    labels (list[int], optional): the classes to report, a superset of the reference
        classes; default: the classes in the references.
Returns:
    accuracy, balanced_accuracy, macro_f1 (both over the classes of `labels` present in the
    references), per_class_f1 (list, in `labels` order), labels, confusion_matrix (rows =
    reference, columns = prediction, over `labels`), unlisted_predictions (per reference
    class: predictions outside `labels`).
"""


def confusion(references: np.ndarray, predictions: np.ndarray, labels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(matrix over ``labels``, per reference class the predictions outside ``labels``)."""
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(references.tolist()) - set(index))
    if unknown:
        raise ValueError(f"references hold classes {unknown} that labels {labels} lack; every reference must count")
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    unlisted = np.zeros(len(labels), dtype=np.int64)
    for r, p in zip(references.tolist(), predictions.tolist()):
        if p in index:
            matrix[index[r], index[p]] += 1
        else:
            unlisted[index[r]] += 1
    return matrix, unlisted


def classification(predictions, references, labels=None) -> dict:
    predictions = np.asarray(predictions, dtype=np.int64)
    references = np.asarray(references, dtype=np.int64)
    if predictions.shape != references.shape or predictions.size == 0:
        raise ValueError(f"need equal, non-empty predictions and references, got {predictions.shape} and {references.shape}")
    if labels is None:
        labels = sorted(set(references.tolist()))
    labels = [int(x) for x in labels]
    matrix, unlisted = confusion(references, predictions, labels)
    true = matrix.sum(axis=1) + unlisted  # every reference row, whatever it was predicted as
    predicted = matrix.sum(axis=0)
    hits = np.diag(matrix).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.where(true > 0, hits / true, 0.0)
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = true > 0
    return {
        "accuracy": float((predictions == references).mean()),
        "balanced_accuracy": float(recall[present].mean()),
        "macro_f1": float(f1[present].mean()),
        "per_class_f1": [float(x) for x in f1],
        "labels": labels,
        "confusion_matrix": matrix.tolist(),
        "unlisted_predictions": unlisted.tolist(),
    }


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HubEmoMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, labels=None):
        return classification(predictions, references, labels)
