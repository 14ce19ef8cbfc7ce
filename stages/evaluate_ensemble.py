"""Stage ensemble_<name>: combine members, write ``models/<name>/`` and its metrics.

``python stages/evaluate_ensemble.py <name>``.

A ``stack`` ensemble fits its stacker on the validation split here; ``models/<name>/``
then lets :func:`artstyle.classifier.load_classifier` classify new images with it.
"""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.members.evaluate import evaluate_member
    from artstyle.io import atomic_dir
    from artstyle.members import ensemble

    (name,) = argv
    results, stacker = ensemble.split_probabilities(params, name)
    classes = ensemble.member_classes(params.ensembles[name].members[0])
    line = evaluate_member(name, results, classes, ensemble.build_command(name))
    with atomic_dir(paths.model_dir(name)) as tmp:
        ensemble.save(tmp, params, name, classes, stacker)
    return line


if __name__ == "__main__":
    run("evaluate_ensemble", main)
