"""Scoring a zoo member on the prepared splits: what every ``evaluate`` stage ends with."""

from __future__ import annotations

from artstyle.evaluation import write_evaluation


def evaluate_member(name: str, results: dict, member_classes: list[str], fix: str) -> str:
    """Score one zoo member on ``data/prepared``'s splits and write ``reports/eval/<name>/``.

    Every ``evaluate`` stage (one per member kind) ends here, so every row of the
    comparison is computed the same way.

    Parameters
    ----------
    name : str
    results : dict of split -> (labels (n,) int, probabilities (n, k) float, ids (n,) str)
        From the member kind's ``split_probabilities``.
    member_classes : list of str
        The classes the member was fitted on (``models/<name>/classes.json``).
    fix : str
        The command that re-makes the member, for a mismatch.

    Returns
    -------
    str
        The stage's one-line summary.

    Raises
    ------
    artstyle.members.base.MembersDisagree
        The member was fitted on other classes than ``data/prepared`` holds now.
    """
    from artstyle import paths
    from artstyle.data.dataset import dataset_notice, load_manifest
    from artstyle.members.base import check_same_classes

    _, classes = load_manifest(paths.PREPARED)
    check_same_classes(name, member_classes, str(paths.PREPARED), classes, fix)
    m = write_evaluation(paths.eval_report(name), name, classes,
                         {s: (r[0], r[1]) for s, r in results.items()},
                         notice=dataset_notice(paths.PREPARED))
    return (f"{name}: test accuracy {m['test']['accuracy']:.3f}, macro-F1 "
            f"{m['test']['macro_f1']:.3f}; wrote {paths.eval_report(name)}")
