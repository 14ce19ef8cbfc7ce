"""Stage evaluate: test and validation metrics of one zoo member (``python stages/evaluate.py <name>``).

A neural model, a style model or an ensemble (:mod:`artstyle.members`): the same metrics
and files for each. The only stage that reads the test split's labels.
"""

from _common import run


def main(params, argv):
    from artstyle.determinism import configure

    # Before TensorFlow starts: the same outputs on any x86-64 CPU (train.repeatable).
    configure(params.train.repeatable, params.train.threads)
    from artstyle import paths
    from artstyle.data.dataset import dataset_notice, load_manifest
    from artstyle.evaluation import write_evaluation
    from artstyle.members import split_probabilities

    (name,) = argv
    results = split_probabilities(params, name, ("validation", "test"))
    _, classes = load_manifest(paths.PREPARED)
    m = write_evaluation(paths.eval_report(name), name, classes, results,
                         notice=dataset_notice(paths.PREPARED))
    return (f"{name}: test accuracy {m['test']['accuracy']:.3f}, macro-F1 "
            f"{m['test']['macro_f1']:.3f}; wrote {paths.eval_report(name)}")


if __name__ == "__main__":
    run("evaluate", main)
