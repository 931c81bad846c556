"""The project's evaluate module (loaded by local path, offline) agrees with scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

from hub_emo.metric import load_metric


@pytest.fixture(scope="module")
def metric():
    return load_metric()


@pytest.mark.parametrize("seed", range(5))
def test_classification_matches_scikit_learn(metric, seed):
    rng = np.random.default_rng(seed)
    refs = rng.integers(0, 5, size=60)
    preds = np.where(rng.random(60) < 0.5, refs, rng.integers(0, 6, size=60))  # a class refs never have
    got = metric.compute(predictions=preds, references=refs)
    labels = sorted(set(refs))  # the default class set: the reference classes
    assert got["accuracy"] == pytest.approx(accuracy_score(refs, preds))
    with warnings.catch_warnings():  # sklearn warns about the predicted-only class
        warnings.simplefilter("ignore")
        expected_ua = balanced_accuracy_score(refs, preds)
    assert got["balanced_accuracy"] == pytest.approx(expected_ua)
    assert got["macro_f1"] == pytest.approx(f1_score(refs, preds, labels=labels, average="macro", zero_division=0))
    np.testing.assert_allclose(got["per_class_f1"], f1_score(refs, preds, average=None, labels=labels, zero_division=0))
    assert got["confusion_matrix"] == confusion_matrix(refs, preds, labels=labels).tolist()
    assert sum(got["unlisted_predictions"]) == int((~np.isin(preds, labels)).sum())


@pytest.mark.parametrize("labels", [[0, 1], None])
def test_out_of_label_predictions_are_misses(metric, labels):
    """10 clips of class 0 and 10 of class 1, five class-0 clips predicted
    as class 6 (outside the scored classes). Recall 0.5 and 1 → UA 0.75; F1 2/3 and 1 → 0.833."""
    refs = [0] * 10 + [1] * 10
    preds = [6] * 5 + [0] * 5 + [1] * 10
    got = metric.compute(predictions=preds, references=refs, labels=labels)
    assert got["balanced_accuracy"] == pytest.approx(0.75)
    assert got["macro_f1"] == pytest.approx(5 / 6)
    assert got["accuracy"] == pytest.approx(0.75)
    assert got["unlisted_predictions"] == [5, 0]
    assert got["confusion_matrix"] == [[5, 0], [0, 10]]


def test_ua_and_f1_average_over_the_same_classes(metric):
    """labels may name classes no reference has (a test fold without them): both averages skip
    them; the wrong predictions they received still count against their reference classes."""
    refs, preds = [0, 0, 1, 1], [0, 2, 1, 1]
    got = metric.compute(predictions=preds, references=refs, labels=[0, 1, 2])
    assert np.asarray(got["confusion_matrix"]).shape == (3, 3)
    assert got["balanced_accuracy"] == pytest.approx(0.75)
    assert got["macro_f1"] == pytest.approx(f1_score(refs, preds, labels=[0, 1], average="macro"))
    assert got["per_class_f1"][2] == 0.0


def test_references_outside_labels_are_refused(metric):
    with pytest.raises(ValueError, match="every reference must count"):
        metric.compute(predictions=[0, 1, 2], references=[0, 1, 2], labels=[0, 1])


def test_bad_input(metric):
    with pytest.raises(ValueError):
        metric.compute(predictions=[], references=[])
