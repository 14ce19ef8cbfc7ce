"""Stage train_grid: every cell of the study's dense units x dropout grid, in one process.

``python stages/train_grid.py``: ``models/grid/<cell>/``, each cell's training curves in
``reports/grid/cells/<cell>/``, and the comparison on the validation split in
``reports/grid/`` (:mod:`artstyle.grid`).
"""

from _common import run


def main(params, argv):
    from artstyle.determinism import configure

    # Before TensorFlow starts: the same weights on any x86-64 CPU (train.repeatable).
    configure(params.train.repeatable, params.train.threads)
    from artstyle import paths
    from artstyle.data.dataset import dataset_notice, load_split
    from artstyle.distribute import chief_output, is_chief, make_strategy
    from artstyle.grid import grid_summary, write_grid_report
    from artstyle.training import train_model

    cells = params.grid_cells()
    strategy = make_strategy(params.train.distribution)
    train, classes = load_split(paths.PREPARED, "train")
    validation, _ = load_split(paths.PREPARED, "validation")
    weights = paths.VGG19_WEIGHTS if params.model(params.grid.base).family == "vgg19_transfer" else None
    results = {}
    # Under multi-worker training only the chief's outputs are kept; each appears whole.
    with chief_output(paths.GRID_MODELS) as models_dir, \
            chief_output(paths.GRID_CELL_REPORTS) as reports_dir:
        for name, spec in cells.items():
            results[name] = train_model(spec, train, validation, classes, models_dir / name,
                                        reports_dir / name, seed=params.base.seed,
                                        vgg19_weights=weights, strategy=strategy, name=name)
    summary = grid_summary({n: (s.dense_units, s.dropout) for n, s in cells.items()}, results)
    if is_chief():
        write_grid_report(summary, paths.GRID_REPORT, dataset_notice(paths.PREPARED))
    best = summary["best"]
    return (f"{len(cells)} cells on {len(train.labels)} training images; best on validation: "
            f"{best['dense_units']} units, dropout {best['dropout']:g} "
            f"(val accuracy {best['val_accuracy']:.3f}); wrote {paths.GRID_MODELS}, {paths.GRID_REPORT}")


if __name__ == "__main__":
    run("train_grid", main)
