"""Class labels: names to indices in the pipeline's one fixed class order.

``data/prepared/classes.json`` (written by ``prepare``) is the one class order; every
member's probability columns follow it. :func:`encode_labels` maps names (or checks
indices) without re-sorting, unlike scikit-learn's ``LabelEncoder``;
:func:`check_training_classes` refuses a training split that lacks a class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def encode_labels(labels: Sequence[Any] | np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Encode labels as indices into the pipeline's fixed class list.

    Unlike :class:`sklearn.preprocessing.LabelEncoder`, the order is the given
    `classes` order (the one the CNNs' softmax columns use), never re-sorted, and
    classes absent from `labels` keep their index.

    Parameters
    ----------
    labels : sequence or ndarray, shape (n,)
        Class names (str), or integer class indices which are only range-checked.
    classes : sequence of str, length k
        The fixed class list; names must be unique.

    Returns
    -------
    ndarray of int64, shape (n,)
        Index of each label in `classes`.

    Raises
    ------
    ValueError
        If `classes` is empty or has duplicates, `labels` is not 1-D, a name is not in
        `classes` (the message names the unknown labels), or an integer label lies
        outside ``[0, k)``.
    """
    classes = [str(c) for c in classes]
    if not classes:
        raise ValueError("classes is empty")
    if len(set(classes)) != len(classes):
        dupes = sorted({c for c in classes if classes.count(c) > 1})
        raise ValueError(f"classes has duplicate names: {dupes}")
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {arr.shape}")
    k = len(classes)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "iu":
        bad = np.unique(arr[(arr < 0) | (arr >= k)])
        if bad.size:
            raise ValueError(f"integer labels {bad.tolist()[:10]} are outside [0, {k}) "
                             f"for the {k} classes")
        return arr.astype(np.int64)
    if arr.dtype.kind == "b" or arr.dtype.kind == "f":
        raise ValueError(f"labels must be class names or integer indices, got dtype {arr.dtype}")
    index = {c: i for i, c in enumerate(classes)}
    names = arr.astype(str)
    unknown = sorted(set(names.tolist()) - index.keys())
    if unknown:
        raise ValueError(f"{len(unknown)} unknown label(s) not in the class list: "
                         f"{unknown[:10]}; known classes: {classes}")
    return np.fromiter((index[n] for n in names), dtype=np.int64, count=names.size)


def check_training_classes(y_train: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Check that every class has at least one training example.

    XGBoost's scikit-learn wrapper and scikit-learn's heads infer the number of
    classes from the labels they see; a class missing from the training split would
    silently shrink (or refuse) the probability matrix.
    Validation and test splits may lack classes.

    Parameters
    ----------
    y_train : ndarray of int, shape (n,)
        Encoded training labels (see :func:`encode_labels`).
    classes : sequence of str, length k
        The fixed class list, used for the counts' length and the error message.

    Returns
    -------
    ndarray of int64, shape (k,)
        Number of training examples per class.

    Raises
    ------
    ValueError
        If a class has no training example (the message names it and its index),
        or `y_train` holds an index outside ``[0, k)``.
    """
    classes = [str(c) for c in classes]
    y = encode_labels(np.asarray(y_train), classes)
    counts = np.bincount(y, minlength=len(classes)).astype(np.int64)
    missing = [f"{classes[i]!r} (index {i})" for i in np.flatnonzero(counts == 0)]
    if missing:
        raise ValueError(
            f"no training examples for class(es) {', '.join(missing)}: a classifier "
            "of the zoo needs every class of the class list in the training split. Add "
            "images of that class or drop it from the class list."
        )
    return counts
