"""XGBoost members: gradient-boosted trees on a neural member's penultimate embeddings.

``boost@<source>`` fits ``models/xgb_<source>/model.json`` on the embeddings of
``data/features/<source>.npz`` (:mod:`artstyle.features`). A new image is embedded by
the source network exactly as the training images were, then scored by the trees.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from artstyle import paths
from artstyle.members.base import MissingModel, TrainedClassifier, read_folder

#: Prefix of XGBoost member names: ``xgb_<source>``.
PREFIX = "xgb_"


def build_command(name: str) -> str:
    """The command that fits XGBoost member ``name``."""
    return f"dvc repro boost@{name.removeprefix(PREFIX)}"


def load(name: str) -> TrainedClassifier:
    """A fitted XGBoost member with its source network, ready for images.

    Returns
    -------
    TrainedClassifier
        ``kind="xgboost"``; its input and prepared sides are the source network's.

    Raises
    ------
    MissingModel
        The booster, its spec or the source network is missing.
    """
    from artstyle.boosting import load_booster
    from artstyle.data.dataset import resize_batch
    from artstyle.embeddings import embedding_model
    from artstyle.members import neural

    classes, spec = read_folder(paths.model_dir(name), [paths.booster_file(name).name],
                                build_command(name))
    source = neural.load(spec["source_model"])
    booster = load_booster(paths.booster_file(name))
    embed = embedding_model(source.keras_model)

    def proba_squares(squares: np.ndarray) -> np.ndarray:
        x = resize_batch(squares, source.input_size)
        return booster.predict_proba(np.asarray(embed(x, training=False))).astype(np.float32)

    return TrainedClassifier(name=name, kind="xgboost", classes=classes,
                             input_size=source.input_size, prepared_side=source.prepared_side,
                             proba_squares=proba_squares, info=spec)


def split_probabilities(name: str, splits: Sequence[str] = ("validation", "test")) -> dict:
    """Labels, ids and probabilities of an XGBoost member on its source's cached embeddings.

    Returns
    -------
    dict of split -> (labels (n,) int64, probabilities (n, k) float32, ids (n,) str)
    """
    from artstyle.boosting import load_booster
    from artstyle.features import load_features

    source = name.removeprefix(PREFIX)
    features_file = paths.features_file(source)
    if not (features_file.is_file() and paths.booster_file(name).is_file()):
        raise MissingModel(f"{paths.booster_file(name)} or {features_file} not found: run "
                           f"`{build_command(name)}`")
    feats = load_features(features_file)
    booster = load_booster(paths.booster_file(name))
    return {split: (feats.splits[split][1],
                    booster.predict_proba(feats.splits[split][0]).astype(np.float32),
                    feats.splits[split][2]) for split in splits}
