"""Stage evaluate_boost: test and validation metrics of one XGBoost member.

``python stages/evaluate_boost.py <source>`` scores ``models/xgb_<source>/``.
"""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.members.evaluate import evaluate_member
    from artstyle.io import read_json
    from artstyle.members import boosted

    (source,) = argv
    name = f"{boosted.PREFIX}{source}"
    results = boosted.split_probabilities(name)
    classes = read_json(paths.model_dir(name) / "classes.json")
    return evaluate_member(name, results, classes, boosted.build_command(name))


if __name__ == "__main__":
    run("evaluate_boost", main)
