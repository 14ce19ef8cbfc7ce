"""Style members: a scikit-learn head on style descriptors of a frozen ImageNet network.

``style_fit`` writes ``models/<name>/head.joblib`` and ``spec.json``, whose
``feature_meta`` records how the descriptors were made (backbone, layers, input side,
patches), so a new painting is described exactly as the training paintings were:
letterboxed to the prepared side, resized to the descriptor's input side, cut into the
same patches (:func:`artstyle.patches.patch_images`), described
(:class:`artstyle.models.style_features.StyleDescriptor`), and the head's probabilities
averaged over the patches (:func:`artstyle.heads.head_proba`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from artstyle import paths
from artstyle.members.base import (
    MissingModel,
    TrainedClassifier,
    prepared_side,
    read_folder,
)


def build_command(name: str) -> str:
    """The command that fits style member ``name`` (and the descriptors it reads)."""
    return f"dvc repro style_fit@{name}"


def load_descriptor(meta: dict):
    """The :class:`~artstyle.models.style_features.StyleDescriptor` that ``meta`` describes.

    Parameters
    ----------
    meta : dict
        ``feature_meta`` of a style member's ``spec.json`` (a ``style_features`` entry).

    Raises
    ------
    MissingModel
        The backbone's ImageNet weights are missing; names the stage that writes them.
    """
    from artstyle.models.style_features import StyleDescriptor

    weights, stage = paths.BACKBONE_WEIGHTS[meta["backbone"]]
    if not weights.is_file():
        raise MissingModel(f"{weights} not found: run `dvc repro {stage}`")
    return StyleDescriptor(weights, meta["stat_layers"], meta.get("gram_layers", []),
                           backbone=meta["backbone"])


def load(name: str) -> TrainedClassifier:
    """A fitted style member, ready for images of any size.

    Returns
    -------
    TrainedClassifier
        ``kind="style"``; ``info`` is its ``spec.json`` (``feature_meta``: the descriptor).

    Raises
    ------
    MissingModel
        The head, its spec or the backbone weights are missing.
    """
    from artstyle.data.dataset import resize_batch
    from artstyle.heads import head_proba, load_head
    from artstyle.patches import patch_images

    folder = paths.model_dir(name)
    classes, spec = read_folder(folder, [paths.head_file(name).name], build_command(name))
    meta = spec["feature_meta"]
    head = load_head(paths.head_file(name))
    describe = load_descriptor(meta)
    side = prepared_side(int(meta.get("input_size") or 0) or 64)
    input_size = int(meta.get("input_size") or side)
    patches, fraction = int(meta.get("patches", 1)), float(meta.get("patch_fraction", 0.75))

    def proba_squares(squares: np.ndarray) -> np.ndarray:
        x = squares if squares.shape[1] == input_size else resize_batch(squares, input_size)
        X = describe(patch_images(np.asarray(x), patches, fraction))
        return head_proba(head, X, len(classes), patches)

    return TrainedClassifier(name=name, kind="style", classes=classes, input_size=input_size,
                             prepared_side=side, proba_squares=proba_squares, info=spec,
                             parts={"descriptor": describe, "head": head,
                                    "input_size": input_size})


def split_probabilities(name: str, feature_set: str,
                        splits: Sequence[str] = ("validation", "test")) -> dict:
    """Labels, ids and probabilities of a style member on the cached descriptors.

    Returns
    -------
    dict of split -> (labels (n,) int64, probabilities (n, k) float32, ids (n,) str)
        One row per painting (its patches averaged), in the manifest's order.
    """
    from artstyle.features import load_features
    from artstyle.heads import head_proba, load_head

    features_file = paths.style_features_file(feature_set)
    if not (features_file.is_file() and paths.head_file(name).is_file()):
        raise MissingModel(f"{paths.head_file(name)} or {features_file} not found: run "
                           f"`{build_command(name)}`")
    feats = load_features(features_file)
    patches = int(feats.meta.get("patches", 1))
    head = load_head(paths.head_file(name))
    out = {}
    for split in splits:
        X, y, ids = feats.splits[split]
        paintings = np.asarray([i.split("#")[0] for i in ids[::patches]], str)
        out[split] = (y[::patches], head_proba(head, X, len(feats.classes), patches), paintings)
    return out
