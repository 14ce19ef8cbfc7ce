"""Stage compare: ``reports/models.md`` and the validation-accuracy chart of every model."""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.compare import write_comparison
    from artstyle.members.base import rank_by_validation
    from artstyle.data.dataset import dataset_notice

    names = (list(params.all_models()) + [f"xgb_{s}" for s in params.boost.sources]
             + list(params.style_models) + list(params.ensembles))
    table = write_comparison(names, notice=dataset_notice(paths.PREPARED))
    # The best member is chosen on the validation split, by the rule `best` follows
    # everywhere (artstyle.members.base.rank_by_validation); its test figure is only reported.
    stacked = {n for n, e in params.ensembles.items() if e.method == "stack"}  # in-sample
    best = table.set_index("model").loc[rank_by_validation(
        [n for n in names if n not in stacked])[0]]
    return (f"{len(table)} models; best on validation {best.name} (validation accuracy "
            f"{best['validation accuracy']:.3f}, test accuracy {best['test accuracy']:.3f}); "
            f"wrote {paths.MODELS_TABLE}, {paths.COMPARE}")


if __name__ == "__main__":
    run("compare", main)
