"""Stage patterns: where a model looks, what it confuses, the collection's map, palettes
(``python stages/patterns.py``)."""

from _common import run


def main(params, argv):  # argv: none
    from artstyle import paths
    from artstyle.data.dataset import dataset_notice
    from artstyle.patterns.report import (
        load_model_for_patterns,
        select_model,
        write_patterns,
    )

    settings = params.patterns
    name = select_model(settings.model, candidates=list(params.all_models()))
    model, classes, input_size = load_model_for_patterns(name)
    m = write_patterns(paths.PATTERNS_REPORT, name, model, classes, input_size, paths.PREPARED,
                       settings, seed=params.base.seed, notice=dataset_notice(paths.PREPARED))
    return (f"{name}: Grad-CAM on {m['layer']}, {m['paintings']} paintings mapped, test "
            f"accuracy {m['test_accuracy']:.3f}; wrote {paths.PATTERNS_REPORT}/index.html")


if __name__ == "__main__":
    run("patterns", main)
