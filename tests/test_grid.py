"""The study's dense units x dropout grid: its summary (a DVC metrics file) and heat map."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from PIL import Image

from artstyle.grid import grid_summary, write_grid_report


@dataclass
class _Result:          # the fields of artstyle.training.TrainResult the summary reads
    best_val_accuracy: float
    best_epoch: int
    epochs_run: int


CELLS = {"grid_u8_d0.0": (8, 0.0), "grid_u8_d0.5": (8, 0.5),
         "grid_u16_d0.0": (16, 0.0), "grid_u16_d0.5": (16, 0.5)}
RESULTS = {"grid_u8_d0.0": _Result(0.75, 25, 25), "grid_u8_d0.5": _Result(0.7, 25, 25),
           "grid_u16_d0.0": _Result(0.825, 21, 25), "grid_u16_d0.5": _Result(0.825, 24, 25)}


def test_summary_names_each_cell_and_the_best_first_of_equals():
    summary = grid_summary(CELLS, RESULTS)
    assert list(summary["cells"]) == list(CELLS)
    assert summary["cells"]["grid_u16_d0.0"] == {"dense_units": 16, "dropout": 0.0,
                                                 "val_accuracy": 0.825, "best_epoch": 21,
                                                 "epochs_run": 25}
    # 16 units tie at 0.825: the earlier cell (dropout 0.0) is the best.
    assert summary["best"] == {"dense_units": 16, "dropout": 0.0, "val_accuracy": 0.825}


def test_report_is_numbers_only_and_a_heat_map(tmp_path):
    write_grid_report(grid_summary(CELLS, RESULTS), tmp_path, notice="synthetic sample")
    metrics = json.loads((tmp_path / "metrics.json").read_text())

    def numbers(node):
        return all(numbers(v) for v in node.values()) if isinstance(node, dict) else \
            isinstance(node, (int, float))

    assert numbers(metrics)      # `dvc metrics show` shows every value
    png = np.asarray(Image.open(tmp_path / "val_accuracy.png").convert("RGB"))
    assert png.shape[0] > 150 and png.shape[1] > 250
    assert len(np.unique(png.reshape(-1, 3), axis=0)) > 50   # colours, not a blank figure
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "val_accuracy.png"]
