"""Stage evaluate: test and validation metrics of one neural member.

``python stages/evaluate.py <name>``.

The other kinds have their own evaluate scripts (``evaluate_style.py``,
``evaluate_boost.py``, ``evaluate_ensemble.py``), so that each stage depends on the code
its kind runs; all of them write the same files through
:func:`artstyle.evaluation.evaluate_member`. The only stages that read the test labels.
"""

from _common import run


def main(params, argv):
    from artstyle.determinism import configure

    # Before TensorFlow starts: the same outputs on any x86-64 CPU (train.repeatable).
    configure(params.train.repeatable, params.train.threads)
    from artstyle.members import neural
    from artstyle.members.evaluate import evaluate_member

    (name,) = argv
    results = neural.split_probabilities(name, params.model(name).input_size)
    return evaluate_member(name, results, neural.build_command(name))


if __name__ == "__main__":
    run("evaluate", main)
