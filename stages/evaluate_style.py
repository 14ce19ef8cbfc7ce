"""Stage evaluate_style: test and validation metrics of one style member.

``python stages/evaluate_style.py <name>``.
"""

from _common import run


def main(params, argv):
    from artstyle.members import style
    from artstyle.members.evaluate import evaluate_member

    (name,) = argv
    results = style.split_probabilities(name, params.style_model(name).features)
    return evaluate_member(name, results, style.build_command(name))


if __name__ == "__main__":
    run("evaluate_style", main)
