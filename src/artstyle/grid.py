"""The study's dense units x dropout grid: every cell trained, compared on validation.

The study tuned its CNN by training one model per pair of dense-layer neurons and dropout
rate and comparing their validation accuracy. ``params.yaml``'s ``grid`` declares the
pairs over a base model (:meth:`artstyle.config.Params.grid_cells`); the stage
``train_grid`` trains every cell in one process (``models/grid/<cell>/``, training curves
in ``reports/grid/cells/<cell>/``) and this module summarises them:
``reports/grid/metrics.json`` (a DVC metrics file) and ``reports/grid/val_accuracy.png``
(validation accuracy over dense units x dropout). The cells are a choice made on the
validation split, so none of them is evaluated on the test split; a cell worth keeping
goes into ``models:`` as a member of the zoo.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from artstyle.figures import new_figure, save_figure, set_title
from artstyle.io import write_json


def grid_summary(cells: Mapping[str, tuple[int, float]],
                 results: Mapping[str, object]) -> dict:
    """The grid's metrics: each cell's validation figures and the best cell.

    Parameters
    ----------
    cells : mapping of str to (int, float)
        Cell name to ``(dense_units, dropout)``, in the grid's order.
    results : mapping of str to artstyle.training.TrainResult
        Each cell's training result (``best_val_accuracy``, ``best_epoch``, ``epochs_run``).

    Returns
    -------
    dict
        ``{"cells": {name: {"dense_units", "dropout", "val_accuracy", "best_epoch",
        "epochs_run"}}, "best": {"dense_units", "dropout", "val_accuracy"}}``: numbers
        only (``dvc metrics show``); the best cell has the highest validation accuracy,
        ties going to the earlier cell.
    """
    table = {name: {"dense_units": int(units), "dropout": float(dropout),
                    "val_accuracy": round(float(results[name].best_val_accuracy), 4),
                    "best_epoch": int(results[name].best_epoch),
                    "epochs_run": int(results[name].epochs_run)}
             for name, (units, dropout) in cells.items()}
    best = max(table, key=lambda n: table[n]["val_accuracy"])   # first of equals
    return {"cells": table, "best": {k: table[best][k]
                                     for k in ("dense_units", "dropout", "val_accuracy")}}


def plot_grid(summary: dict, path: str | Path, notice: str = "") -> Path:
    """Heat map of validation accuracy: dense units (rows) x dropout (columns).

    Parameters
    ----------
    summary : dict
        :func:`grid_summary`'s result.
    path : path
        PNG written atomically.
    notice : str
        Dataset notice, as a caption.
    """
    cells = summary["cells"].values()
    units = sorted({c["dense_units"] for c in cells})
    dropouts = sorted({c["dropout"] for c in cells})
    acc = np.full((len(units), len(dropouts)), np.nan)
    for c in cells:
        acc[units.index(c["dense_units"]), dropouts.index(c["dropout"])] = c["val_accuracy"]
    # At least 5 inches wide, so that the dataset notice under it stays a short caption.
    fig, ax = new_figure(max(5.0, 1.4 + 1.1 * len(dropouts)), 1.2 + 0.7 * len(units))
    image = ax.imshow(acc, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    best = summary["best"]
    for i, u in enumerate(units):
        for j, d in enumerate(dropouts):
            if np.isfinite(acc[i, j]):
                mark = "*" if (u, d) == (best["dense_units"], best["dropout"]) else ""
                ax.text(j, i, f"{acc[i, j]:.3f}{mark}", ha="center", va="center",
                        color="black" if acc[i, j] > 0.6 else "white", fontsize=9)
    ax.set_xticks(range(len(dropouts)), [f"{d:g}" for d in dropouts])
    ax.set_yticks(range(len(units)), [str(u) for u in units])
    ax.set_xlabel("dropout")
    ax.set_ylabel("dense units")
    fig.colorbar(image, ax=ax, label="validation accuracy")
    set_title(ax, "Grid: validation accuracy (* best)", notice)
    return save_figure(fig, path)


def write_grid_report(summary: dict, report_dir: str | Path, notice: str = "") -> None:
    """``<report_dir>/metrics.json`` and ``<report_dir>/val_accuracy.png``, each atomic."""
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    write_json(report_dir / "metrics.json", summary)
    plot_grid(summary, report_dir / "val_accuracy.png", notice)
