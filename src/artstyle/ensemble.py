"""Ensembles of zoo members: the mean of their class probabilities, or a stacked regression.

* ``mean``: the average of the members' probability matrices (each row renormalised).
* ``stack``: a multinomial logistic regression on the concatenated member probabilities,
  fitted on the **validation** split (Wolpert 1992, "Stacked generalization"; the stacking
  ensemble of ImageNet CNNs of Menis-Mastromichalakis et al. 2024, arXiv:2405.11675).
  The members were fitted on the training split, so their validation probabilities are
  honest inputs; the stacker's own validation accuracy is in-sample.

The members' probabilities come from :mod:`artstyle.members`; the test split is only read
by the ``evaluate`` stage.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _checked(probas: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(probas) < 1:
        raise ValueError("an ensemble needs at least one member's probabilities")
    arrs = [np.asarray(p, dtype=np.float64) for p in probas]
    shape = arrs[0].shape
    if len(shape) != 2 or any(a.shape != shape for a in arrs):
        raise ValueError(f"member probabilities must share one (n, k) shape, got "
                         f"{[a.shape for a in arrs]}")
    return arrs


def mean_proba(probas: Sequence[np.ndarray]) -> np.ndarray:
    """Average of member probabilities.

    Parameters
    ----------
    probas : sequence of ndarray, each (n, k)

    Returns
    -------
    ndarray of shape (n, k), float32, rows summing to one
    """
    p = np.mean(_checked(probas), axis=0)
    p = np.clip(p, 0.0, None)
    return (p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def fit_stack(probas: Sequence[np.ndarray], y: np.ndarray, *, C: float = 1.0):
    """Fit the stacking regression on the members' validation probabilities.

    Parameters
    ----------
    probas : sequence of ndarray, each (n_val, k)
    y : ndarray of shape (n_val,), int
    C : float
        Inverse L2 strength.

    Returns
    -------
    sklearn.linear_model.LogisticRegression
    """
    from sklearn.linear_model import LogisticRegression

    X = np.concatenate(_checked(probas), axis=1)
    return LogisticRegression(C=C, max_iter=2000).fit(X, np.asarray(y))


def stack_proba(stacker, probas: Sequence[np.ndarray]) -> np.ndarray:
    """Class probabilities of a fitted stacker; columns the stacker never saw get 0.

    Returns
    -------
    ndarray of shape (n, k), float32, rows summing to one
    """
    arrs = _checked(probas)
    p = stacker.predict_proba(np.concatenate(arrs, axis=1))
    full = np.zeros((len(p), arrs[0].shape[1]), np.float64)
    full[:, np.asarray(stacker.classes_, int)] = p
    return full.astype(np.float32)
