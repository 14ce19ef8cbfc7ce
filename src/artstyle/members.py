"""Class probabilities of any zoo member on a split: Keras model, style head or ensemble.

The ``evaluate`` stage (``stages/evaluate.py <name>``) scores every member through
:func:`split_probabilities`, so every row of the comparison is computed the same way:

* a neural model of ``models:`` / ``grid:``: ``models/<name>/model.keras`` on the images
  of ``data/prepared`` (:func:`artstyle.predict.predict_proba`);
* a style model of ``style_models:``: its head (``models/<name>/head.joblib``) on the
  cached descriptors ``data/features/style_<set>.npz``, averaged over patches;
* an ensemble of ``ensembles:``: its members' probabilities combined by
  :mod:`artstyle.ensemble` (a stacker is fitted on the validation split here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from artstyle import paths
from artstyle.config import Params, lookup


def kind(params: Params, name: str) -> str:
    """``neural``, ``style`` or ``ensemble``; ParamsError naming the known members."""
    kinds = {**dict.fromkeys(params.all_models(), "neural"),
             **dict.fromkeys(params.style_models, "style"),
             **dict.fromkeys(params.ensembles, "ensemble")}
    return lookup(kinds, name, "model")


def _style_probabilities(params: Params, name: str, splits: Sequence[str]) -> dict:
    from artstyle.features import load_features
    from artstyle.heads import head_proba, load_head

    spec = params.style_models[name]
    feats = load_features(paths.style_features_file(spec.features))
    patches = int(feats.meta.get("patches", 1))
    head = load_head(paths.head_file(name))
    out = {}
    for split in splits:
        X, y, _ = feats.splits[split]
        out[split] = (y[::patches], head_proba(head, X, len(feats.classes), patches))
    return out


def _neural_probabilities(params: Params, name: str, splits: Sequence[str]) -> dict:
    from artstyle.data.dataset import load_split
    from artstyle.models.zoo import load_model
    from artstyle.predict import predict_proba

    spec = params.model(name)
    model = load_model(paths.keras_model_file(name))
    out = {}
    for split in splits:
        data, _ = load_split(paths.PREPARED, split)
        out[split] = (data.labels, predict_proba(model, data.images, spec.input_size))
    return out


def split_probabilities(params: Params, name: str,
                        splits: Sequence[str] = ("validation", "test")) -> dict:
    """Labels and class probabilities of one member on each split.

    Parameters
    ----------
    params : Params
    name : str
        A neural model, style model or ensemble.
    splits : sequence of str
        For an ensemble with ``method: stack`` the validation split is always computed
        (the stacker is fitted on it).

    Returns
    -------
    dict of split -> (labels ndarray (n,) int64, probabilities ndarray (n, k) float32)
        Rows in the order of ``data/prepared``'s manifest.
    """
    which = kind(params, name)
    if which == "neural":
        return _neural_probabilities(params, name, splits)
    if which == "style":
        return _style_probabilities(params, name, splits)
    from artstyle.ensemble import fit_stack, mean_proba, stack_proba

    spec = params.ensembles[name]
    needed = list(dict.fromkeys(["validation", *splits] if spec.method == "stack" else splits))
    parts = [split_probabilities(params, m, needed) for m in spec.members]
    labels = {s: parts[0][s][0] for s in needed}
    for m, part in zip(spec.members, parts):
        for s in needed:
            if not np.array_equal(part[s][0], labels[s]):
                raise ValueError(f"member {m} of ensemble {name} lists the {s} split in "
                                 "another order; re-run its stages")
    if spec.method == "mean":
        return {s: (labels[s], mean_proba([p[s][1] for p in parts])) for s in splits}
    stacker = fit_stack([p["validation"][1] for p in parts], labels["validation"], C=spec.C)
    return {s: (labels[s], stack_proba(stacker, [p[s][1] for p in parts])) for s in splits}
