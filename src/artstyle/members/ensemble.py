"""Ensembles of zoo members: the mean of their class probabilities, or a stacked regression.

* ``mean``: the average of the members' probability matrices (each row renormalised).
* ``stack``: a multinomial logistic regression on the concatenated member probabilities,
  fitted on the **validation** split (Wolpert 1992, "Stacked generalization"; the stacking
  ensemble of ImageNet CNNs of Menis-Mastromichalakis et al. 2024, arXiv:2405.11675).
  The members were fitted on the training split, so their validation probabilities are
  honest inputs; the stacker's own validation accuracy is in-sample.

``ensemble_<name>`` (``stages/evaluate_ensemble.py``) combines the members' probabilities
of the validation and test paintings that their evaluate stages kept
(:func:`split_probabilities`; the test split is only scored there) and writes
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


def split_probabilities(params, name: str, splits: Sequence[str] = ("validation", "test")):
    """Labels and combined probabilities of an ensemble on splits, and its fitted stacker.

    Reads each member's ``data/probabilities/<member>.npz`` (written by its evaluate stage,
    :mod:`artstyle.members.evaluate`), whatever the member's kind.

    Parameters
    ----------
    params : artstyle.config.Params
    name : str
        A key of ``ensembles:``.
    splits : sequence of str
        For ``method: stack`` the validation split is read too (the stacker is fitted
        on it).

    Returns
    -------
    (dict of split -> (labels (n,) int64, probabilities (n, k) float32, ids (n,) str),
    list of str, stacker or None)
        The combined results, the class list, and the stacker of a ``stack`` ensemble.

    Raises
    ------
    MissingModel
        A member has not been evaluated.
    MembersDisagree
        Two members know different classes or were made from different data; the
        message names both and the command that re-makes them.
    """
    from artstyle.features import load_features

    spec = params.ensembles[name]
    needed = list(dict.fromkeys(["validation", *splits] if spec.method == "stack" else splits))
    fix = build_command(name)
    parts = []
    for m in spec.members:
        path = paths.probabilities_file(m)
        if not path.is_file():
            raise MissingModel(f"{path} not found: the member {m} has not been evaluated; "
                               f"run `{fix}`")
        parts.append(load_features(path))
    first = parts[0]
    for m, part in zip(spec.members[1:], parts[1:]):
        check_same_classes(spec.members[0], first.classes, m, part.classes, fix)
        for s in needed:
            check_same_split(spec.members[0], m, f"the {s} split", first.splits[s][2],
                             part.splits[s][2], fix)
    labels = {s: first.splits[s][1] for s in needed}
    ids = {s: first.splits[s][2] for s in needed}
    stacker = None
    if spec.method == "mean":
        combined = {s: mean_proba([p.splits[s][0] for p in parts]) for s in splits}
    else:
        stacker = fit_stack([p.splits["validation"][0] for p in parts], labels["validation"],
                            C=spec.C)
        combined = {s: stack_proba(stacker, [p.splits[s][0] for p in parts]) for s in splits}
    return ({s: (labels[s], combined[s], ids[s]) for s in splits}, first.classes, stacker)


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
