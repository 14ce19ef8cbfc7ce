"""Side-by-side comparison of every model: ``reports/models.md`` and the study's curve chart."""

from __future__ import annotations

import logging

import pandas as pd

from artstyle import paths
from artstyle.evaluation import (
    comparison_table,
    plot_validation_curves,
    validation_curves,
)
from artstyle.io import atomic_file, write_csv

logger = logging.getLogger(__name__)


def write_comparison(names: list[str], *, notice: str = "") -> pd.DataFrame:
    """Write ``reports/models.md``, ``reports/compare/val_accuracy.csv`` and ``.png``.

    Parameters
    ----------
    names : list of str
        Models in table order (neural models, then ``xgb_*``).
    notice : str
        Dataset notice shown above the table and in the chart title.

    Returns
    -------
    pandas.DataFrame
        The table (see :func:`artstyle.evaluation.comparison_table`).
    """
    table = comparison_table(names, paths.style_features_report("x").parent)
    curves = validation_curves(names)
    paths.COMPARE.mkdir(parents=True, exist_ok=True)
    write_csv(curves, paths.COMPARE / "val_accuracy.csv", index=False)
    plot_validation_curves(curves, paths.COMPARE / "val_accuracy.png", notice)
    lines = ["# Model comparison", ""]
    if notice:
        lines += [f"> **{notice}**", ""]
    lines += ["Test split of `data/prepared`; training figures from `reports/train/<model>/`. "
              "The grid's cells (`grid_u*`) are compared on the validation split only "
              "(`reports/grid/`).",
              "", table.astype(object).where(table.notna(), "").to_markdown(
                  index=False, floatfmt=".3f"), "",
              "![validation accuracy per epoch](compare/val_accuracy.png)", ""]
    with atomic_file(paths.MODELS_TABLE, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    return table
