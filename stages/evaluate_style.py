"""Stage evaluate_style: test and validation metrics of one style member.

``python stages/evaluate_style.py <name>``.
"""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.members.evaluate import evaluate_member
    from artstyle.io import read_json
    from artstyle.members import style

    (name,) = argv
    results = style.split_probabilities(name, params.style_model(name).features)
    classes = read_json(paths.model_dir(name) / "classes.json")
    return evaluate_member(name, results, classes, style.build_command(name))


if __name__ == "__main__":
    run("evaluate_style", main)
