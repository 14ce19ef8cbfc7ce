"""A trained classifier on disk: load any member of the zoo by name, or the best one.

Every command that classifies (``artstyle classify``, ``explain``, the web page, the
``patterns`` stage, the style-transfer judge) goes through :func:`load_classifier`,
which returns a :class:`~artstyle.members.base.TrainedClassifier` whatever the member's
kind (a Keras model, a style head, XGBoost on embeddings, an ensemble): its
``proba(images)`` prepares images exactly as the training images were prepared.

``best`` is the member :func:`~artstyle.members.base.best_member` names: the best
validation accuracy in ``reports/eval``, whatever the kind.
"""

from __future__ import annotations

from collections.abc import Sequence

from artstyle import paths
from artstyle.io import read_json
from artstyle.members import boosted, ensemble, neural, style
from artstyle.members.base import (
    KINDS,
    MissingModel,
    TrainedClassifier,
    best_member,
    folder_kind,
    trained_members,
)

__all__ = ["KINDS", "MissingModel", "TrainedClassifier", "best_member", "folder_kind",
           "load_classifier", "trained_members"]

def load_classifier(name: str = "best", kinds: Sequence[str] = KINDS) -> TrainedClassifier:
    """A trained member of any kind, ready to classify images.

    Parameters
    ----------
    name : str, default "best"
        A member under ``models/``, a ``.keras`` file (its folder holds ``classes.json``
        and ``spec.json``), or ``best`` (see :func:`best_member`).
    kinds : sequence of str, default all kinds
        For ``best``: the kinds to choose from.

    Returns
    -------
    TrainedClassifier

    Raises
    ------
    MissingModel
        The member is not trained (the message names the stage to run and the trained
        members), or ``best`` finds no evaluated member.
    artstyle.members.base.MembersDisagree
        An ensemble's members know other classes than the ensemble.
    """
    if name == "best":
        name = best_member(kinds)
    if name.endswith(".keras"):
        return neural.load(name)
    kind = folder_kind(paths.model_dir(name))
    if kind == "neural":
        return neural.load(name)
    if kind == "style":
        return style.load(name)
    if kind == "xgboost":
        return boosted.load(name)
    if kind == "ensemble":
        spec = read_json(paths.model_dir(name) / "spec.json")
        return ensemble.load(name, [load_classifier(m) for m in spec["members"]])
    trained = ", ".join(trained_members()) or "none (run `dvc repro`)"
    raise MissingModel(f"no trained model named {name!r} in {paths.MODELS}/: "
                       f"{build_hint(name)}; trained: {trained}")


def build_hint(name: str) -> str:
    """How to build member ``name``: its stage when ``params.yaml`` here names it."""
    from artstyle.config import ParamsError, load_params
    from artstyle.members.base import kind_of

    commands = {"neural": neural.build_command, "style": style.build_command,
                "xgboost": boosted.build_command, "ensemble": ensemble.build_command}
    if paths.PARAMS.is_file():
        try:
            return f"run `{commands[kind_of(load_params(paths.PARAMS), name)](name)}`"
        except ParamsError:
            pass
    return "a member of params.yaml is built by `dvc repro` (or `dvc pull`)"
