"""Stage compare: ``reports/models.md`` and the validation-accuracy chart of every model."""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.compare import write_comparison
    from artstyle.data.dataset import dataset_notice

    names = (list(params.all_models()) + [f"xgb_{s}" for s in params.boost.sources]
             + list(params.style_models) + list(params.ensembles))
    table = write_comparison(names, notice=dataset_notice(paths.PREPARED))
    # The best model is chosen on the validation split; its test figure is only reported.
    best = table.sort_values("validation accuracy", ascending=False, kind="stable").iloc[0]
    return (f"{len(table)} models; best on validation {best['model']} (validation accuracy "
            f"{best['validation accuracy']:.3f}, test accuracy {best['test accuracy']:.3f}); "
            f"wrote {paths.MODELS_TABLE}, {paths.COMPARE}")


if __name__ == "__main__":
    run("compare", main)
