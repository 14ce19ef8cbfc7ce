"""Stage patterns: where a model looks, what it confuses, the collection's map, palettes
(``python stages/patterns.py``)."""

from _common import run


def main(params, argv):  # argv: none
    from artstyle.determinism import configure

    # Before TensorFlow starts: the same outputs on any x86-64 CPU (train.repeatable).
    configure(params.train.repeatable, params.train.threads)
    from artstyle import paths
    from artstyle.data.dataset import dataset_notice
    from artstyle.members import neural
    from artstyle.members.base import best_member
    from artstyle.patterns.report import PATTERN_KINDS, write_patterns

    settings = params.patterns
    name = settings.model if settings.model != "best" else best_member(
        PATTERN_KINDS, names=list(params.all_models()))
    clf = neural.load(name)
    m = write_patterns(paths.PATTERNS_REPORT, clf, paths.PREPARED, settings,
                       seed=params.base.seed, notice=dataset_notice(paths.PREPARED))
    return (f"{name}: Grad-CAM on {m['layer']}, {m['paintings']} paintings mapped, test "
            f"accuracy {m['test_accuracy']:.3f}; wrote {paths.PATTERNS_REPORT}/index.html")


if __name__ == "__main__":
    run("patterns", main)
