"""A trained classifier on disk, whatever its kind: the one type the rest of the code uses.

Also which members are trained (:func:`trained_members`) and which one validated best
(:func:`best_member`): ``best`` is the trained member with the highest validation
accuracy in ``reports/eval/<name>/metrics.json`` (ties: validation macro-F1, then the
name). Stacked ensembles are left out of that choice: their stacker is fitted on the
validation split, so their validation accuracy is in-sample. The test split never takes
part in it.

Every member of the zoo lives in ``models/<name>/`` with ``classes.json`` (its art
movements in probability-column order) and ``spec.json``. A :class:`TrainedClassifier`
prepares images exactly as the training images were prepared (a letterboxed square of
the prepared side, :func:`artstyle.images.resize_to_square`, as ``prepare`` stores them)
and hands the squares to its kind's probability function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from artstyle import paths
from artstyle.errors import ArtstyleError
from artstyle.io import read_json

#: The kinds of zoo members, each with its module in :mod:`artstyle.members`.
KINDS = ("neural", "style", "xgboost", "ensemble")
#: Each kind in a sentence ("best_cnn is a neural member").
A_KIND = {"neural": "a neural", "style": "a style", "xgboost": "an XGBoost",
          "ensemble": "an ensemble"}


class MissingModel(ArtstyleError, FileNotFoundError):
    """A model or weights file the command needs has not been built yet."""


class MembersDisagree(ArtstyleError, ValueError):
    """Two trained things that must meet were made from different classes or data."""


@dataclass(frozen=True)
class TrainedClassifier:
    """A trained zoo member, ready to classify images.

    Attributes
    ----------
    name : str
        The member's name (``models/<name>/``), or the path it was loaded from.
    kind : {"neural", "style", "xgboost", "ensemble"}
    classes : list of str
        Art movements in the order of the probability columns.
    input_size : int
        Side of the square the member's network sees (px).
    prepared_side : int
        Side of the squares ``prepare`` stored the training images at (px); new images
        are letterboxed to it first, as the training images were.
    proba_squares : callable
        ``(n, S, S, 3) uint8 -> (n, k) float32``: class probabilities of prepared
        squares (``S = prepared_side``).
    keras_model : keras.Model or None
        The Keras classifier of a neural member (Grad-CAM looks into it); None otherwise.
    members : tuple of TrainedClassifier
        An ensemble's members (empty otherwise).
    parts : dict
        What a style member is made of, for its Grad-CAM: ``descriptor`` (the
        :class:`~artstyle.models.style_features.StyleDescriptor`), ``head`` (the fitted
        scikit-learn pipeline) and ``input_size``; empty for the other kinds.
    info : dict
        The member's ``spec.json``.
    """

    name: str
    kind: str
    classes: list[str]
    input_size: int
    prepared_side: int
    proba_squares: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    keras_model: Any = field(default=None, repr=False)
    members: tuple = ()
    parts: dict = field(default_factory=dict, repr=False)
    info: dict = field(default_factory=dict, repr=False)

    @property
    def has_heat_map(self) -> bool:
        """Whether Grad-CAM can show where it looks: a Keras network, or a style head on
        a frozen network's statistics (:func:`artstyle.patterns.explain.look`)."""
        return self.keras_model is not None or "descriptor" in self.parts

    def prepare(self, rgb: np.ndarray) -> np.ndarray:
        """One image as the training images were stored.

        Parameters
        ----------
        rgb : ndarray of shape (H, W, 3), uint8

        Returns
        -------
        ndarray of shape (S, S, 3), uint8
            Letterboxed to ``S = prepared_side`` (padding: the ImageNet mean colour).
        """
        from PIL import Image

        from artstyle.images import resize_to_square

        return np.asarray(resize_to_square(Image.fromarray(np.asarray(rgb, np.uint8)),
                                           self.prepared_side))

    def proba(self, images: Sequence[np.ndarray] | np.ndarray, batch_size: int = 64,
              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Class probabilities of images of any size, prepared as in training, in batches.

        Parameters
        ----------
        images : sequence of ndarray (H_i, W_i, 3) uint8, or ndarray (n, H, W, 3) uint8
        batch_size : int, default 64
            Images per call of the member's network.
        progress : callable, optional
            Called with the number of images done after each batch.

        Returns
        -------
        ndarray of shape (n, len(classes)), float32
            Rows sum to one.
        """
        out = []
        for i in range(0, len(images), batch_size):
            squares = np.stack([self.prepare(im) for im in images[i:i + batch_size]])
            out.append(np.asarray(self.proba_squares(squares), np.float32))
            if progress is not None:
                progress(len(squares))
        if not out:
            return np.zeros((0, len(self.classes)), np.float32)
        return np.concatenate(out)

    def top(self, rgb: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most likely movements of one image, by decreasing probability."""
        p = self.proba([rgb])[0]
        return [(self.classes[i], float(p[i])) for i in np.argsort(p)[::-1][:k]]


def prepared_side(default: int) -> int:
    """Side of the squares in ``data/prepared`` (``dataset.json``), else ``default`` (px)."""
    dataset = paths.PREPARED / paths.DATASET_NAME
    return int(read_json(dataset).get("image_size", default)) if dataset.exists() else default


def read_folder(folder: Path, required: Sequence[str], build_hint: str) -> tuple[list[str], dict]:
    """``classes.json`` and ``spec.json`` of a model folder, checking its files exist.

    Parameters
    ----------
    folder : Path
        ``models/<name>/``.
    required : sequence of str
        File names the kind needs besides ``classes.json`` and ``spec.json``.
    build_hint : str
        The command that builds the folder, for the error.

    Returns
    -------
    (list of str, dict)
        The classes and the spec.

    Raises
    ------
    MissingModel
        A file is missing; the message names it and ``build_hint``.
    """
    for name in (*required, "classes.json", "spec.json"):
        if not (folder / name).is_file():
            raise MissingModel(f"{folder / name} not found: run `{build_hint}` (or `dvc pull`)")
    return [str(c) for c in read_json(folder / "classes.json")], read_json(folder / "spec.json")


def check_same_split(name: str, other: str, what: str, a: np.ndarray, b: np.ndarray,
                     fix: str) -> None:
    """Refuse in one line two members whose rows of a split differ (other data version).

    Raises
    ------
    MembersDisagree
        Naming both members and the command ``fix`` that re-makes them from the same data.
    """
    if len(a) != len(b) or not np.array_equal(np.asarray(a), np.asarray(b)):
        raise MembersDisagree(f"{name} and {other} were made from different data ({what}: "
                              f"{len(a)} and {len(b)} rows that differ); run `{fix}`")


def check_same_classes(name: str, classes: Sequence[str], other: str,
                       other_classes: Sequence[str], fix: str) -> None:
    """Refuse in one line two trained things with different class lists.

    Raises
    ------
    MembersDisagree
        Naming both, the classes only one of them knows, and the command ``fix``.
    """
    if list(classes) != list(other_classes):
        only = sorted(set(classes) ^ set(other_classes))
        detail = (f"classes only one of them knows: {', '.join(only)}" if only
                  else "the same classes in another order")
        raise MembersDisagree(f"{name} and {other} know different art movements ({detail}); "
                              f"run `{fix}`")


def kind_of(params, name: str) -> str:
    """The kind of zoo member ``name``: ``neural``, ``style``, ``xgboost`` or ``ensemble``.

    Parameters
    ----------
    params : artstyle.config.Params
    name : str

    Raises
    ------
    artstyle.config.ParamsError
        ``name`` is no member of the zoo; the message names the known ones.
    """
    from artstyle.config import lookup

    kinds = {**dict.fromkeys(params.all_models(), "neural"),
             **dict.fromkeys(params.style_models, "style"),
             **dict.fromkeys((f"xgb_{s}" for s in params.boost.sources), "xgboost"),
             **dict.fromkeys(params.ensembles, "ensemble")}
    return lookup(kinds, name, "model")


#: The file that marks each kind's model folder.
_MARKERS = (("model.keras", "neural"), ("head.joblib", "style"), ("model.json", "xgboost"))


def folder_kind(folder: Path) -> str | None:
    """The kind of the trained member in ``folder``, or None when it holds none."""
    if not (folder / "classes.json").is_file() or not (folder / "spec.json").is_file():
        return None
    for marker, kind in _MARKERS:
        if (folder / marker).is_file():
            return kind
    return "ensemble" if "members" in read_json(folder / "spec.json") else None


def trained_members(kinds: Sequence[str] = KINDS, models_dir: Path = paths.MODELS) -> list[str]:
    """Names of the trained members under ``models/``, sorted.

    Parameters
    ----------
    kinds : sequence of str, default all kinds
        Keep only members of these kinds (e.g. ``("neural",)`` for Grad-CAM).
    models_dir : Path
    """
    if not Path(models_dir).is_dir():
        return []
    return sorted(f.name for f in Path(models_dir).iterdir()
                  if f.is_dir() and folder_kind(f) in kinds)


def best_member(kinds: Sequence[str] = KINDS, eval_dir: Path = paths.EVAL_REPORTS,
                models_dir: Path = paths.MODELS, names: Sequence[str] | None = None) -> str:
    """The trained member with the best validation accuracy (see the module docstring).

    Parameters
    ----------
    kinds : sequence of str, default all kinds
    eval_dir, models_dir : Path
    names : sequence of str, optional
        Choose among these members only (e.g. the members of ``params.yaml``, so that a
        folder left from an earlier configuration is not chosen).

    Returns
    -------
    str

    Raises
    ------
    MissingModel
        No trained member of those kinds has been evaluated; names the command.
    """
    candidates = []
    for name in trained_members(kinds, models_dir):
        if names is not None and name not in names:
            continue
        if read_json(Path(models_dir) / name / "spec.json").get("method") != "stack":
            candidates.append(name)
    ranked = rank_by_validation(candidates, eval_dir)
    if not ranked:
        which = "" if tuple(kinds) == KINDS else f" {'/'.join(kinds)}"
        raise MissingModel(f"no evaluated{which} model in {eval_dir}: run `dvc repro` "
                           "(or name a model)")
    return ranked[0]


def rank_by_validation(names: Sequence[str], eval_dir: Path = paths.EVAL_REPORTS) -> list[str]:
    """``names`` that have been evaluated, best first: validation accuracy, then validation
    macro-F1, then the name (the rule of ``best`` everywhere, the model table included)."""
    ranked = []
    for name in names:
        metrics_file = Path(eval_dir) / name / "metrics.json"
        if metrics_file.is_file():
            val = read_json(metrics_file).get("validation", {})
            ranked.append((-val.get("accuracy", 0.0), -val.get("macro_f1", 0.0), name))
    return [name for *_, name in sorted(ranked)]
