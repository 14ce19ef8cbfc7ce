"""Classifier evaluation: accuracy, macro-F1, per-class scores, confusion matrices, comparison.

All metrics come from scikit-learn (``accuracy_score``, ``precision_recall_fscore_support``
with ``zero_division=0``, ``confusion_matrix``); the JSON holds plain numbers only, so
``dvc metrics diff`` compares runs without a pull. The same :func:`write_evaluation` serves
Keras models and XGBoost boosters, so every row of the comparison means the same thing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

from artstyle import paths
from artstyle.figures import new_figure, save_figure, set_title
from artstyle.io import atomic_dir, read_json, write_csv, write_json

logger = logging.getLogger(__name__)


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,), int
        Indices into ``classes``.
    classes : list of str
        The fixed class order.

    Returns
    -------
    dict
        ``{"accuracy", "macro_f1", "macro_precision", "macro_recall", "n",
        "per_class": {class: {"precision", "recall", "f1", "support"}}}``; a class with
        no prediction or no support scores 0 (never NaN). Macro averages run over every
        class of the list, so a class missing from ``y_true`` still counts as 0.
    """
    labels = np.arange(len(classes))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels,
                                                 zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(np.mean(f)),
        "macro_precision": float(np.mean(p)),
        "macro_recall": float(np.mean(r)),
        "n": len(y_true),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(s[i])} for i, c in enumerate(classes)},
    }


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], path: str | Path,
                   title: str, notice: str = "") -> None:
    """Confusion-matrix heatmap PNG with counts in every cell (rows: actual, columns: predicted).

    Parameters
    ----------
    y_true, y_pred : ndarray of int, shape (n,)
        Class indices into ``classes``.
    classes : list of str
        Art movements, in label order.
    path : path-like
        The PNG to write (atomically).
    title, notice : str
        Figure title and the dataset notice below it, both wrapped to the width.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    cm = confusion_matrix(y_true, y_pred, labels=np.arange(len(classes)))
    size = max(5.0, 0.55 * len(classes) + 2.5)
    fig, ax = new_figure(size + 1, size)
    ConfusionMatrixDisplay(cm, display_labels=classes).plot(ax=ax, cmap="Blues",
                                                            xticks_rotation=45, colorbar=False)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    ax.set_xlabel("predicted art movement")
    ax.set_ylabel("actual art movement")
    set_title(ax, title, notice)
    save_figure(fig, path)


def write_evaluation(out_dir: str | Path, name: str, classes: list[str],
                     results: dict[str, tuple[np.ndarray, np.ndarray]], *,
                     notice: str = "", extra: dict | None = None) -> dict:
    """Write every evaluation artefact of one model, atomically.

    Parameters
    ----------
    out_dir : path
        ``reports/eval/<name>/``. Receives ``metrics.json`` (per split: accuracy,
        macro-F1, macro precision/recall, n), ``per_class.csv``, ``confusion.csv``
        (one row per test image: ``actual``, ``predicted`` class names, for DVC's
        ``confusion`` template), ``confusion.png`` (test) and
        ``confusion_validation.png``.
    name : str
        Model name, for titles.
    classes : list of str
    results : dict of split -> (y_true, proba or y_pred)
        ``proba`` of shape (n, n_classes) float, or integer predictions of shape (n,).
    notice : str
        Dataset notice (e.g. synthetic) shown in the plot titles.
    extra : dict, optional
        More numbers to store at the top level of ``metrics.json``.

    Returns
    -------
    dict
        The metrics written.
    """
    metrics: dict = {}
    per_class_rows = []
    with atomic_dir(out_dir) as tmp:
        for split, (y_true, scores) in results.items():
            y_true = np.asarray(y_true)
            y_pred = scores.argmax(axis=1) if np.ndim(scores) == 2 else np.asarray(scores)
            m = classification_metrics(y_true, y_pred, classes)
            for c, row in m.pop("per_class").items():
                per_class_rows.append({"split": split, "class": c, **row})
            metrics[split] = m
            suffix = "" if split == "test" else f"_{split}"
            title = f"{name}: {split} (accuracy {m['accuracy']:.1%}, macro-F1 {m['macro_f1']:.3f})"
            plot_confusion(y_true, y_pred, classes, tmp / f"confusion{suffix}.png",
                           title, notice)
            if split == "test":
                write_csv(pd.DataFrame({"actual": [classes[i] for i in y_true],
                                        "predicted": [classes[i] for i in y_pred]}),
                          tmp / "confusion.csv", index=False)
        metrics.update(extra or {})
        write_json(tmp / "metrics.json", metrics)
        write_csv(pd.DataFrame(per_class_rows), tmp / "per_class.csv", index=False)
    if "test" in metrics:
        logger.info("%s: test accuracy %.3f, macro-F1 %.3f", name, metrics["test"]["accuracy"],
                    metrics["test"]["macro_f1"])
    return metrics


def comparison_table(names: list[str], features_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per model: test accuracy, macro-F1, parameters, epochs, timing.

    Reads ``reports/eval/<name>/metrics.json`` and the training summary
    (:func:`artstyle.paths.train_report`: dvclive's, or the ``boost`` / ``style_fit``
    stage's metrics); a missing file leaves its cells empty. A cell of the grid has no
    test figures (it is compared on validation only): its validation accuracy is its
    training's best. A style member's training seconds add the time its descriptors took
    (``<features_dir>/style_<set>.json``), and its images per second are the paintings
    described per second (the cost of classifying a new painting).
    """
    rows = []
    for name in names:
        ev = _maybe_json(paths.eval_report(name) / "metrics.json")
        tr = _maybe_json(paths.train_report(name) / "metrics.json")
        if "feature_set" in tr and features_dir is not None:
            ft = _maybe_json(Path(features_dir) / f"style_{tr['feature_set']}.json")
            tr = {**tr, "images_per_second": ft.get("images_per_second"),
                  "train_seconds": round(tr.get("fit_seconds", 0.0) + ft.get("seconds", 0.0), 2)}
        test = ev.get("test", {})
        val = ev.get("validation", {})
        rows.append({
            "model": name,
            "test accuracy": test.get("accuracy"),
            "test macro-F1": test.get("macro_f1"),
            "validation accuracy": val.get("accuracy", tr.get("best_val_accuracy")),
            "parameters": tr.get("parameters"),
            "epochs run": tr.get("epochs_run"),
            "best epoch": tr.get("best_epoch"),
            "training seconds": tr.get("train_seconds"),
            "images per second": tr.get("images_per_second"),
        })
    table = pd.DataFrame(rows)
    for col in ("parameters", "epochs run", "best epoch"):
        table[col] = table[col].astype("Int64")   # integers, blank when unknown
    return table


def _maybe_json(path: Path) -> dict:
    return read_json(path) if path.exists() else {}


def validation_curves(names: list[str]) -> pd.DataFrame:
    """Long table ``model, epoch, val_accuracy`` from each model's dvclive TSV.

    dvclive's Keras callback logs ``val_accuracy`` as ``eval/accuracy``
    (``<train report>/plots/metrics/eval/accuracy.tsv``, :func:`artstyle.paths.train_report`,
    columns ``step``, ``accuracy``); models without such a file (e.g. XGBoost) are left out.
    """
    frames = []
    for name in names:
        tsv = paths.train_report(name) / "plots" / "metrics" / "eval" / "accuracy.tsv"
        if tsv.exists():
            df = pd.read_csv(tsv, sep="\t")
            frames.append(pd.DataFrame({"model": name, "epoch": df["step"] + 1,
                                        "val_accuracy": df["accuracy"]}))
    if not frames:
        return pd.DataFrame(columns=["model", "epoch", "val_accuracy"])
    return pd.concat(frames, ignore_index=True)


def plot_validation_curves(curves: pd.DataFrame, path: str | Path, notice: str = "") -> None:
    """The study's comparison figure: validation accuracy per epoch, one line per model."""
    fig, ax = new_figure(8, 5)
    for name, df in curves.groupby("model", sort=False):
        ax.plot(df["epoch"], df["val_accuracy"], marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    set_title(ax, "Validation accuracy per epoch", notice)
    save_figure(fig, path)

