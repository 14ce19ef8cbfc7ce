"""Scoring a zoo member on the prepared splits: what every ``evaluate`` stage ends with.

Besides ``reports/eval/<name>/``, each evaluate stage keeps the member's probabilities of
the validation and test paintings in ``data/probabilities/<name>.npz`` (the
:mod:`artstyle.features` format: ``X`` the probabilities, ``y`` the labels, ``ids`` the
paintings): the ensembles combine those files, so an ensemble's stage depends on its
members' probabilities alone, not on the code of their kinds.
"""

from __future__ import annotations

from artstyle.evaluation import write_evaluation


def evaluate_member(name: str, results: dict, fix: str,
                    member_classes: list[str] | None = None) -> str:
    """Score one zoo member on ``data/prepared``'s splits; write its reports and probabilities.

    Every ``evaluate`` stage (one per member kind) ends here, so every row of the
    comparison is computed the same way.

    Parameters
    ----------
    name : str
    results : dict of split -> (labels (n,) int, probabilities (n, k) float, ids (n,) str)
        From the member kind's ``split_probabilities``.
    fix : str
        The command that re-makes the member, for a mismatch.
    member_classes : list of str, optional
        The classes the member was fitted on; default ``models/<name>/classes.json``.

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
    from artstyle.features import save_features
    from artstyle.members.base import check_same_classes

    _, classes = load_manifest(paths.PREPARED)
    if member_classes is None:
        from artstyle.io import read_json

        member_classes = read_json(paths.model_dir(name) / "classes.json")
    check_same_classes(name, member_classes, str(paths.PREPARED), classes, fix)
    m = write_evaluation(paths.eval_report(name), name, classes,
                         {s: (r[0], r[1]) for s, r in results.items()},
                         notice=dataset_notice(paths.PREPARED))
    save_features(paths.probabilities_file(name), classes=classes, meta={"member": name},
                  splits={s: (r[1], r[0], r[2]) for s, r in results.items()})
    return (f"{name}: test accuracy {m['test']['accuracy']:.3f}, macro-F1 "
            f"{m['test']['macro_f1']:.3f}; wrote {paths.eval_report(name)}")
