"""Stage evaluate_boost: test and validation metrics of one XGBoost member.

``python stages/evaluate_boost.py <source>`` scores ``models/xgb_<source>/``.
"""

from _common import run


def main(params, argv):
    from artstyle.members import boosted
    from artstyle.members.evaluate import evaluate_member

    (source,) = argv
    name = f"{boosted.PREFIX}{source}"
    return evaluate_member(name, boosted.split_probabilities(name), boosted.build_command(name))


if __name__ == "__main__":
    run("evaluate_boost", main)
