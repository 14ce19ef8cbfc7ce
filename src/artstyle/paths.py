"""Every pipeline path in one place, relative to the repository root (the stages' cwd).

``dvc.yaml`` spells the same paths. Data flows one way: raw -> prepared -> models ->
features -> evaluations -> reports.
"""

from __future__ import annotations

from pathlib import Path

PARAMS = Path("params.yaml")

DATA = Path("data")
RAW = DATA / "raw"                      # stage download: <Movement>/[<Artist>/]<file>
DOWNLOADS = DATA / "downloads"          # cached archives (not a DVC output; resumable)
PREPARED = DATA / "prepared"            # stage prepare; inside any prepared folder:
IMAGES_DIRNAME = "images"               #   <content hash>.png, resized, 8-bit RGB
MANIFEST_NAME = "manifest.csv"          #   path, class, artist, split, content hash, ...
CLASSES_NAME = "classes.json"           #   the one fixed class order
DATASET_NAME = "dataset.json"           #   provenance, e.g. the synthetic notice
FEATURES = DATA / "features"            # stage features: <model>.npz

MODELS = Path("models")
PRETRAINED = MODELS / "pretrained"
VGG19_WEIGHTS = PRETRAINED / "vgg19_notop.weights.h5"
PRETRAINED_EFFICIENTNET = MODELS / "pretrained_efficientnet"
#: ``artstyle.models.efficientnet_lite.WEIGHTS_FILENAME`` in that folder.
EFFICIENTNET_WEIGHTS = PRETRAINED_EFFICIENTNET / "efficientnet_lite0.weights.h5"
#: ImageNet weights of each frozen backbone, with the stage that writes them.
BACKBONE_WEIGHTS = {"vgg19": (VGG19_WEIGHTS, "pretrained"),
                    "efficientnet_lite0": (EFFICIENTNET_WEIGHTS, "pretrained_efficientnet")}
#: Stage pretrained_feedforward: the two ONNX networks of :mod:`artstyle.nst.feedforward`.
PRETRAINED_FEEDFORWARD = MODELS / "pretrained_feedforward"
#: Stage train_grid: the study's dense units x dropout grid, one folder per cell
#: (``grid_u<units>_d<dropout>``, :func:`artstyle.config.grid_model_name`).
GRID_MODELS = MODELS / "grid"
GRID_PREFIX = "grid_u"

REPORTS = Path("reports")
DATA_REPORT = REPORTS / "data"
TRAIN_REPORTS = REPORTS / "train"
EVAL_REPORTS = REPORTS / "eval"
COMPARE = REPORTS / "compare"
MODELS_TABLE = REPORTS / "models.md"
STYLIZED = REPORTS / "stylized"
STYLIZE_REPORT = REPORTS / "stylize"
PATTERNS_REPORT = REPORTS / "patterns"  # stage patterns: index.html, PNGs, CSVs
GRID_REPORT = REPORTS / "grid"          # stage train_grid: metrics.json, val_accuracy.png,
GRID_CELL_REPORTS = GRID_REPORT / "cells"  # and each cell's training curves

SPLITS = ("train", "validation", "test")


def is_grid_cell(name: str) -> bool:
    """Whether ``name`` is a cell of the grid (``grid_u<units>_d<dropout>``)."""
    return name.startswith(GRID_PREFIX)


def model_dir(name: str) -> Path:
    """``models/<name>/``: a trained classifier (Keras ``model.keras`` or XGBoost ``model.json``);
    ``models/grid/<name>/`` for a cell of the grid."""
    return (GRID_MODELS if is_grid_cell(name) else MODELS) / name


def keras_model_file(name: str) -> Path:
    """The saved Keras model of a neural classifier."""
    return model_dir(name) / "model.keras"


def booster_file(name: str) -> Path:
    """The saved XGBoost model (JSON) of an ``xgb_<source>`` classifier."""
    return model_dir(name) / "model.json"


def train_report(name: str) -> Path:
    """``reports/train/<name>/``: dvclive curves and ``metrics.json`` of one training run
    (``reports/grid/cells/<name>/`` for a cell of the grid)."""
    return (GRID_CELL_REPORTS if is_grid_cell(name) else TRAIN_REPORTS) / name


def eval_report(name: str) -> Path:
    """``reports/eval/<name>/``: metrics, per-class table and confusion matrix of one model."""
    return EVAL_REPORTS / name


def features_file(source: str) -> Path:
    """Penultimate-layer embeddings of every split for one source model."""
    return FEATURES / f"{source}.npz"


def style_features_file(feature_set: str) -> Path:
    """``data/features/style_<set>.npz``: the cached style descriptors of one feature set."""
    return FEATURES / f"style_{feature_set}.npz"


def style_features_report(feature_set: str) -> Path:
    """``reports/features/style_<set>.json``: how long describing the paintings took (a
    metrics file: timings stay out of the cached descriptors, whose hash they would change)."""
    return REPORTS / "features" / f"style_{feature_set}.json"


def probabilities_file(name: str) -> Path:
    """``data/probabilities/<name>.npz``: a member's class probabilities of the validation
    and test paintings, written by its evaluate stage and read by the ensembles."""
    return DATA / "probabilities" / f"{name}.npz"


def head_file(name: str) -> Path:
    """``models/<name>/head.joblib``: the fitted head of a style model."""
    return model_dir(name) / "head.joblib"
