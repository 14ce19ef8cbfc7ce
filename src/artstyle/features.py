"""Feature files: vectors of every split with their labels and ids, one ``.npz`` each.

Written for CNN embeddings (:mod:`artstyle.embeddings`, stage ``features``) and for style
descriptors (:mod:`artstyle.models.style_features`, stage ``style_features``); read by
the members that score them (XGBoost, style heads). Plain NumPy: no TensorFlow here.

File layout written by :func:`save_features` (all arrays plain, no pickles)::

    classes        (k,)     str      the fixed class list, in softmax column order
    meta           ()       str      JSON object (source model, layer, ...)
    X_<split>      (n, d)   float32  embeddings
    y_<split>      (n,)     int64    class indices into ``classes``
    ids_<split>    (n,)     str      file ids (e.g. paths relative to the data root)
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artstyle.io import atomic_file

logger = logging.getLogger(__name__)

_SPLIT_RE = re.compile(r"^[A-Za-z0-9_]+$")


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class Features:
    """Embeddings of several splits, as read by :func:`load_features`.

    Attributes
    ----------
    splits : dict of str -> (X, y, ids)
        X float32 (n, d); y int64 (n,) indices into `classes`; ids str (n,).
    classes : list of str
        The fixed class list.
    meta : dict
        Free-form metadata stored with the file.
    """

    splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]
    classes: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


def save_features(
    path: str | os.PathLike[str],
    *,
    splits: Mapping[str, tuple[Any, Any, Any]],
    classes: Sequence[str],
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write embeddings, labels and file ids of several splits to one ``.npz``, atomically.

    Parameters
    ----------
    path : path-like
        Target file (conventionally ``*.npz``); parent folders are created. Written
        under a temporary name in the same folder, then renamed.
    splits : mapping of str -> (X, y, ids)
        Split name (letters, digits, ``_``) to X (n, d) numeric, y (n,) class names
        or indices, ids (n,) unique file ids. All splits share d; an id may appear
        in one split only.
    classes : sequence of str
        The fixed class list; y is stored as int64 indices into it.
    meta : mapping, optional
        JSON-serialisable metadata (e.g. source model, layer, image size).

    Returns
    -------
    pathlib.Path
        `path`.

    Raises
    ------
    ValueError
        On a bad split name, shape or length mismatch, differing d, unknown
        labels, duplicate ids within a split or ids shared between splits.
    """
    from artstyle.labels import encode_labels

    if not splits:
        raise ValueError("splits is empty")
    classes = [str(c) for c in classes]
    arrays: dict[str, np.ndarray] = {
        "classes": np.asarray(classes, dtype=str),
        "meta": np.asarray(json.dumps(dict(meta or {}), sort_keys=True)),
    }
    dim = None
    owner: dict[str, str] = {}
    for name, triple in splits.items():
        if not _SPLIT_RE.match(name):
            raise ValueError(f"split name {name!r} must use letters, digits and '_' only")
        try:
            X, y, ids = triple
        except (TypeError, ValueError) as exc:
            raise ValueError(f"split {name!r} must be an (X, y, ids) triple") from exc
        X = np.asarray(X)
        if X.ndim != 2 or X.dtype.kind not in "fiu":
            raise ValueError(f"X of split {name!r} must be a numeric (n, d) array, "
                             f"got shape {X.shape} dtype {X.dtype}")
        if dim is not None and X.shape[1] != dim:
            raise ValueError(f"split {name!r} has {X.shape[1]} features, others {dim}")
        dim = X.shape[1]
        y = encode_labels(np.asarray(y), classes)
        ids = np.asarray([str(i) for i in np.asarray(ids).ravel().tolist()], dtype=str)
        if not (len(X) == len(y) == len(ids)):
            raise ValueError(f"split {name!r}: {len(X)} rows, {len(y)} labels, {len(ids)} ids")
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f"split {name!r} has duplicate ids: {uniq[counts > 1][:5].tolist()}")
        for i in ids.tolist():
            if i in owner:
                raise ValueError(f"id {i!r} is in both split {owner[i]!r} and {name!r}")
            owner[i] = name
        arrays[f"X_{name}"] = X.astype(np.float32, copy=False)
        arrays[f"y_{name}"] = y
        arrays[f"ids_{name}"] = ids if ids.size else np.zeros(0, dtype="<U1")

    path = Path(path)
    with atomic_file(path, "wb") as fh:
        np.savez(fh, **arrays)
    logger.info("Saved features to %s: %s", path,
                ", ".join(f"{s}={arrays[f'X_{s}'].shape}" for s in splits))
    return path


def load_features(path: str | os.PathLike[str]) -> Features:
    """Read a file written by :func:`save_features`.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    Features
        Splits in the order they were saved.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file lacks ``classes`` or a split lacks one of X/y/ids.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no features file at {path}")
    with np.load(path, allow_pickle=False) as data:
        keys = list(data.files)
        if "classes" not in keys:
            raise ValueError(f"{path} has no 'classes' array; not a features file")
        classes = [str(c) for c in data["classes"].tolist()]
        meta = json.loads(str(data["meta"])) if "meta" in keys else {}
        splits = {}
        for key in keys:
            if not key.startswith("X_"):
                continue
            name = key[2:]
            if f"y_{name}" not in keys or f"ids_{name}" not in keys:
                raise ValueError(f"{path}: split {name!r} lacks y_{name} or ids_{name}")
            splits[name] = (data[key], data[f"y_{name}"].astype(np.int64),
                            data[f"ids_{name}"].astype(str))
    return Features(splits=splits, classes=classes, meta=meta)
