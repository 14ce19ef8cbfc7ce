"""Classifier heads on fixed features (style descriptors), chosen on the validation split.

A head is a scikit-learn pipeline: ``StandardScaler`` -> ``PCA`` (optional, fitted on the
training split) -> one of

* ``logistic``: multinomial logistic regression (L2, inverse strength ``C``);
* ``linear_svm``: ``LinearSVC`` whose decision values are turned into probabilities by
  Platt scaling (``CalibratedClassifierCV``, 3 folds of the training split; fewer when
  the smallest class has fewer training rows, :func:`calibration_folds`, and on the
  training split itself, with a warning, when a class has a single one: every class
  that ``prepare`` accepts works);
* ``mlp``: one hidden ReLU layer (``hidden_units``), L2 penalty ``1 / C``.

:func:`fit_head` fits one head per value of ``C`` on the training rows and keeps the one
with the best validation accuracy (ties: the smaller ``C``, the stronger regularisation);
the test split is never seen here. With patches, a painting's probabilities are the mean
over its patches (:func:`artstyle.models.style_features.vote`), for the choice as for
prediction.

A fitted head is saved with joblib (a pickle: load only heads this pipeline wrote).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from artstyle.config import StyleModelSpec
from artstyle.io import atomic_path
from artstyle.patches import vote

logger = logging.getLogger(__name__)


#: Folds of the Platt calibration of ``linear_svm`` (scikit-learn's default, 3 or 5).
CALIBRATION_FOLDS = 3


def calibration_folds(y_train: np.ndarray) -> int:
    """Folds for ``linear_svm``'s calibration: :data:`CALIBRATION_FOLDS`, at most the
    training rows of the smallest class (stratified folds need one row of each class in
    each fold); 1 means "calibrate on the training rows themselves".

    Parameters
    ----------
    y_train : ndarray of int, shape (n,)

    Returns
    -------
    int
        In ``1 .. CALIBRATION_FOLDS``.
    """
    counts = np.bincount(np.asarray(y_train, int))
    smallest = int(counts[counts > 0].min()) if counts.any() else 1
    return max(1, min(CALIBRATION_FOLDS, smallest))


def make_head(spec: StyleModelSpec, C: float, n_train: int, dim: int, seed: int = 0,
              folds: int = CALIBRATION_FOLDS):
    """An unfitted head pipeline for ``spec`` with inverse regularisation ``C``.

    Parameters
    ----------
    spec : StyleModelSpec
    C : float
    n_train, dim : int
        Training rows and feature length: PCA keeps at most ``min(n_train, dim) - 1``
        components.
    seed : int
    folds : int
        ``linear_svm`` only: folds of the Platt calibration (:func:`calibration_folds`);
        1 calibrates on the ``n_train`` training rows themselves (in-sample, the
        probabilities then lean to overconfidence).

    Returns
    -------
    sklearn.pipeline.Pipeline
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    steps: list[Any] = [StandardScaler()]
    if spec.pca_components:
        k = min(spec.pca_components, min(n_train, dim) - 1)
        steps.append(PCA(n_components=max(1, k), whiten=False, random_state=seed))
    if spec.head == "logistic":
        clf = LogisticRegression(C=C, max_iter=spec.max_iter)
    elif spec.head == "linear_svm":
        everything = np.arange(n_train)
        cv = folds if folds >= 2 else [(everything, everything)]   # one in-sample "fold"
        clf = CalibratedClassifierCV(LinearSVC(C=C, max_iter=spec.max_iter, random_state=seed),
                                     cv=cv)
    else:
        clf = MLPClassifier(hidden_layer_sizes=(spec.hidden_units,), alpha=1.0 / C,
                            max_iter=spec.max_iter, random_state=seed)
    steps.append(clf)
    return make_pipeline(*steps)


def head_proba(head, X: np.ndarray, n_classes: int, patches: int = 1) -> np.ndarray:
    """Class probabilities of paintings: the head on every patch row, then the patch mean.

    Parameters
    ----------
    head : fitted pipeline
    X : ndarray of shape (n * patches, d)
    n_classes : int
        Columns of the result; classes the head never saw get probability 0.
    patches : int

    Returns
    -------
    ndarray of shape (n, n_classes), float32, rows summing to one
    """
    p = head.predict_proba(np.asarray(X, np.float32))
    full = np.zeros((len(p), n_classes), np.float64)
    full[:, np.asarray(head.classes_, int)] = p
    return vote(full, patches)


def fit_head(spec: StyleModelSpec, X_train: np.ndarray, y_train: np.ndarray,
             X_val: np.ndarray, y_val: np.ndarray, *, n_classes: int, patches: int = 1,
             seed: int = 0, classes: list[str] | None = None) -> tuple[Any, dict]:
    """Fit one head per ``spec.C`` on the training split; keep the best on validation.

    Parameters
    ----------
    spec : StyleModelSpec
    X_train : ndarray of shape (n_train * patches, d)
    y_train : ndarray of shape (n_train * patches,), int
        Each patch row carries its painting's label.
    X_val, y_val : validation rows, same layout
    n_classes : int
    patches : int
        Rows per painting (painting-major).
    seed : int
    classes : list of str, optional
        Class names, for the warning about a small class.

    Returns
    -------
    (Pipeline, dict)
        The chosen head and ``{"C", "val_accuracy_by_C", "fit_seconds"}``, for
        ``linear_svm`` also ``"calibration_folds"`` (:func:`calibration_folds`).
    """
    y_val_paintings = np.asarray(y_val)[::patches]
    folds = calibration_folds(y_train)
    if spec.head == "linear_svm" and folds < CALIBRATION_FOLDS:
        counts = np.bincount(np.asarray(y_train, int))
        small = int(np.flatnonzero(counts == counts[counts > 0].min())[0])
        logger.warning("linear_svm: class %s has %d training row(s): Platt calibration on %s",
                       repr(classes[small]) if classes else small, int(counts[small]), f"{folds} folds" if folds >= 2 else
                       "the training split itself (probabilities may be overconfident)")
    scores: dict[str, float] = {}
    best = None
    t0 = time.perf_counter()
    for C in spec.C:
        head = make_head(spec, C, len(X_train), X_train.shape[1], seed,
                         folds=folds).fit(X_train, y_train)
        acc = float((head_proba(head, X_val, n_classes, patches).argmax(1)
                     == y_val_paintings).mean()) if len(y_val_paintings) else 0.0
        scores[repr(C)] = round(acc, 4)
        logger.info("%s head, C=%g: validation accuracy %.3f", spec.head, C, acc)
        if best is None or acc > best[0] or (acc == best[0] and C < best[1]):
            best = (acc, C, head)
    return best[2], {"C": best[1], "val_accuracy_by_C": scores,
                     "fit_seconds": round(time.perf_counter() - t0, 2),
                     **({"calibration_folds": folds} if spec.head == "linear_svm" else {})}


def save_head(head, path: str | Path) -> None:
    """Save a fitted head (joblib), atomically."""
    import joblib

    with atomic_path(path) as tmp:
        joblib.dump(head, tmp)


def load_head(path: str | Path):
    """Load a head written by :func:`save_head`; FileNotFoundError when absent."""
    import joblib

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no fitted head at {path}; run its style_fit stage")
    return joblib.load(path)
