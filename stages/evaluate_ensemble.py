"""Stage ensemble_<name>: combine members, write ``models/<name>/`` and its metrics.

``python stages/evaluate_ensemble.py <name>``.

A ``stack`` ensemble fits its stacker on the validation split here; ``models/<name>/``
then lets :func:`artstyle.classifier.load_classifier` classify new images with it.
"""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.io import atomic_dir
    from artstyle.members import ensemble
    from artstyle.members.evaluate import evaluate_member

    (name,) = argv
    results, classes, stacker = ensemble.split_probabilities(params, name)
    line = evaluate_member(name, results, ensemble.build_command(name), classes)
    with atomic_dir(paths.model_dir(name)) as tmp:
        ensemble.save(tmp, params, name, classes, stacker)
    return line


if __name__ == "__main__":
    run("evaluate_ensemble", main)
