"""Neural members: the Keras models of ``models:`` and ``grid:`` (``models/<name>/model.keras``).

A model takes float RGB in [0, 255] at its input side and returns softmax
probabilities; images are resized to the input side exactly as the training pipeline
did (:func:`artstyle.data.dataset.resize_batch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artstyle import paths
from artstyle.members.base import (
    MissingModel,
    TrainedClassifier,
    prepared_side,
    read_folder,
)


def build_command(name: str) -> str:
    """The command that trains neural member ``name``."""
    return "dvc repro train_grid" if name.startswith("grid_u") else f"dvc repro train@{name}"


def predict_proba(model, images: np.ndarray, input_size: int, batch_size: int = 64) -> np.ndarray:
    """Class probabilities of a Keras zoo model.

    Parameters
    ----------
    model : keras.Model
        A model of :mod:`artstyle.models.zoo` (float RGB [0, 255] in, softmax out).
    images : ndarray of shape (n, H, W, 3), uint8
    input_size : int
        The model's training side; images are resized to it (bilinear, antialiased)
        exactly as the training pipeline did.
    batch_size : int, default 64

    Returns
    -------
    ndarray of shape (n, n_classes), float32
    """
    from artstyle.data.dataset import resize_batch

    if len(images) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    # Calling the model (not ``predict``) runs one traced graph per batch shape: no
    # retracing warning for a stream of single images.
    out = [np.asarray(model(resize_batch(images[i:i + batch_size], input_size), training=False))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32)


def load(name: str) -> TrainedClassifier:
    """A trained neural member, by name or by the path of a ``.keras`` file.

    Parameters
    ----------
    name : str
        A zoo model name (``models/<name>/model.keras``) or a ``.keras`` path whose
        folder holds ``classes.json`` and ``spec.json`` (as the train stage writes them).

    Returns
    -------
    TrainedClassifier
        ``kind="neural"``, with its ``keras_model``.

    Raises
    ------
    MissingModel
        A file is missing; the message names it and the stage that builds it.
    """
    from artstyle.models.zoo import load_model

    path = Path(name) if name.endswith(".keras") else paths.keras_model_file(name)
    if name.endswith(".keras"):
        if not path.is_file():
            raise MissingModel(f"{path} not found")
        if not all((path.parent / f).is_file() for f in ("classes.json", "spec.json")):
            raise MissingModel(f"{path}: classes.json and spec.json must sit beside it (as in "
                               "models/<name>/, written by the train stage)")
    classes, spec = read_folder(path.parent, [path.name], build_command(name))
    input_size = int(spec["input_size"])
    return wrap(load_model(path), name, classes, input_size, prepared_side(input_size), spec)


def wrap(model, name: str, classes: list[str], input_size: int, side: int,
         info: dict | None = None) -> TrainedClassifier:
    """A Keras classifier in memory as a :class:`TrainedClassifier` (``kind="neural"``).

    Parameters
    ----------
    model : keras.Model
        Float RGB [0, 255] in at ``input_size``, softmax over ``classes`` out.
    name : str
    classes : list of str
    input_size, side : int
        The model's input side and the prepared squares' side (px).
    info : dict, optional
        Its ``spec.json``.
    """
    return TrainedClassifier(
        name=name, kind="neural", classes=list(classes), input_size=int(input_size),
        prepared_side=int(side),
        proba_squares=lambda squares: predict_proba(model, squares, input_size),
        keras_model=model, info=dict(info or {}))


def split_probabilities(name: str, input_size: int,
                        splits: Sequence[str] = ("validation", "test")) -> dict:
    """Labels, ids and probabilities of a neural member on splits of ``data/prepared``.

    Returns
    -------
    dict of split -> (labels ndarray (n,) int64, probabilities ndarray (n, k) float32,
    ids ndarray (n,) str)
        Rows in the order of the manifest.
    """
    from artstyle.data.dataset import load_split
    from artstyle.models.zoo import load_model

    path = paths.keras_model_file(name)
    if not path.is_file():
        raise MissingModel(f"{path} not found: run `{build_command(name)}`")
    model = load_model(path)
    out = {}
    for split in splits:
        data, _ = load_split(paths.PREPARED, split)
        out[split] = (data.labels, predict_proba(model, data.images, input_size),
                      np.asarray(data.ids, str))
    return out
