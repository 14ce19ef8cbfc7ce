"""Ensembles of zoo members: the mean of their class probabilities, or a stacked regression.

* ``mean``: the average of the members' probability matrices (each row renormalised).
* ``stack``: a multinomial logistic regression on the concatenated member probabilities,
  fitted on the **validation** split (Wolpert 1992, "Stacked generalization"; the stacking
  ensemble of ImageNet CNNs of Menis-Mastromichalakis et al. 2024, arXiv:2405.11675).
  The members were fitted on the training split, so their validation probabilities are
  honest inputs; the stacker's own validation accuracy is in-sample.

``ensemble_<name>`` (``stages/evaluate_ensemble.py``) combines the members' split probabilities
(:func:`split_probabilities`; the test split is only read there) and writes
``models/<name>/`` (``spec.json``, ``classes.json``, ``stacker.joblib`` for ``stack``), so
that :func:`load` can classify new images with the members loaded by
:mod:`artstyle.classifier`. Members must share the class list and the data version (the
same paintings in each split); a mismatch is refused in one line naming both members.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artstyle import paths
from artstyle.members.base import (
    MissingModel,
    TrainedClassifier,
    check_same_classes,
    check_same_split,
    kind_of,
    read_folder,
)

#: The stacker of a ``stack`` ensemble, in its model folder.
STACKER_NAME = "stacker.joblib"


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


def build_command(name: str) -> str:
    """The command that (re-)makes ensemble ``name`` and its members."""
    return f"dvc repro ensemble_{name}"


def member_split_probabilities(params, name: str, splits: Sequence[str]) -> dict:
    """Split probabilities of one member of any non-ensemble kind (see the kinds' modules)."""
    from artstyle.members import boosted, neural, style

    kind = kind_of(params, name)
    if kind == "neural":
        return neural.split_probabilities(name, params.model(name).input_size, splits)
    if kind == "style":
        return style.split_probabilities(name, params.style_model(name).features, splits)
    if kind == "xgboost":
        return boosted.split_probabilities(name, splits)
    raise ValueError(f"{name} is an ensemble: ensembles of ensembles are not supported")


def member_classes(name: str) -> list[str]:
    """The class list a trained member was fitted on (``models/<name>/classes.json``)."""
    from artstyle.io import read_json

    path = paths.model_dir(name) / "classes.json"
    if not path.is_file():
        raise MissingModel(f"{path} not found: run `dvc repro` for {name}")
    return [str(c) for c in read_json(path)]


def split_probabilities(params, name: str, splits: Sequence[str] = ("validation", "test")):
    """Labels and combined probabilities of an ensemble on splits, and its fitted stacker.

    Parameters
    ----------
    params : artstyle.config.Params
    name : str
        A key of ``ensembles:``.
    splits : sequence of str
        For ``method: stack`` the validation split is computed too (the stacker is
        fitted on it).

    Returns
    -------
    (dict of split -> (labels (n,) int64, probabilities (n, k) float32, ids (n,) str),
    stacker or None)

    Raises
    ------
    MembersDisagree
        Two members know different classes or were made from different data; the
        message names both and the command that re-makes them.
    """
    spec = params.ensembles[name]
    needed = list(dict.fromkeys(["validation", *splits] if spec.method == "stack" else splits))
    fix = build_command(name)
    first = spec.members[0]
    classes = member_classes(first)
    for m in spec.members[1:]:
        check_same_classes(first, classes, m, member_classes(m), fix)
    parts = [member_split_probabilities(params, m, needed) for m in spec.members]
    for m, part in zip(spec.members[1:], parts[1:]):
        for s in needed:
            check_same_split(first, m, f"the {s} split", parts[0][s][2], part[s][2], fix)
            check_same_split(first, m, f"the labels of the {s} split", parts[0][s][0],
                             part[s][0], fix)
    first_part = parts[0]
    if spec.method == "mean":
        return {s: (first_part[s][0], mean_proba([p[s][1] for p in parts]), first_part[s][2])
                for s in splits}, None
    stacker = fit_stack([p["validation"][1] for p in parts], first_part["validation"][0],
                        C=spec.C)
    return {s: (first_part[s][0], stack_proba(stacker, [p[s][1] for p in parts]),
                first_part[s][2]) for s in splits}, stacker


def save(folder: Path, params, name: str, classes: Sequence[str], stacker) -> None:
    """Write an ensemble's model folder contents (spec, classes, stacker) into ``folder``."""
    import joblib

    from artstyle.io import write_json

    spec = params.ensembles[name]
    write_json(folder / "spec.json", {"name": name, **spec.model_dump()})
    write_json(folder / "classes.json", list(classes))
    if stacker is not None:
        joblib.dump(stacker, folder / STACKER_NAME)


def load(name: str, members: Sequence[TrainedClassifier]) -> TrainedClassifier:
    """An ensemble of loaded members, ready for images.

    Parameters
    ----------
    name : str
        ``models/<name>/`` holds the ensemble's spec (and stacker).
    members : sequence of TrainedClassifier
        Its members in the spec's order (:func:`artstyle.classifier.load_classifier`).

    Raises
    ------
    MissingModel
        The ensemble has not been evaluated yet.
    MembersDisagree
        A member's classes or prepared side differ from the ensemble's.
    """
    classes, spec = read_folder(paths.model_dir(name), [], build_command(name))
    stacker = None
    if spec.get("method") == "stack":
        import joblib

        if not (paths.model_dir(name) / STACKER_NAME).is_file():
            raise MissingModel(f"{paths.model_dir(name) / STACKER_NAME} not found: run "
                               f"`{build_command(name)}`")
        stacker = joblib.load(paths.model_dir(name) / STACKER_NAME)
    for m in members:
        check_same_classes(name, classes, m.name, m.classes, build_command(name))
    sides = {m.prepared_side for m in members}
    if len(sides) != 1:
        raise MissingModel(f"the members of {name} were trained on squares of different "
                           f"sizes {sorted(sides)}: run `{build_command(name)}`")

    def proba_squares(squares: np.ndarray) -> np.ndarray:
        probas = [m.proba_squares(squares) for m in members]
        return mean_proba(probas) if stacker is None else stack_proba(stacker, probas)

    return TrainedClassifier(name=name, kind="ensemble", classes=classes,
                             input_size=max(m.input_size for m in members),
                             prepared_side=sides.pop(), proba_squares=proba_squares,
                             members=tuple(members), info=spec)
