"""Stage patterns: where a model looks, what it confuses, the collection's map, palettes
(``python stages/patterns.py``)."""

from _common import run


def main(params, argv):  # argv: none
    from artstyle.determinism import configure

    # Before TensorFlow starts: the same outputs on any x86-64 CPU (train.repeatable).
    configure(params.train.repeatable, params.train.threads)
    from artstyle import paths
    from artstyle.data.dataset import dataset_notice
    from artstyle.members import neural
    from artstyle.members.base import best_member
    from artstyle.patterns.report import PATTERN_KINDS, write_patterns

    from artstyle.features import load_features
    from artstyle.members import style
    from artstyle.members.base import MissingModel, folder_kind

    settings = params.patterns
    members = [*params.all_models(), *params.style_models]
    name = settings.model if settings.model != "best" else best_member(PATTERN_KINDS,
                                                                       names=members)
    clf = style.load(name) if folder_kind(paths.model_dir(name)) == "style" else neural.load(name)
    style_member, style_X = None, None
    if params.style_models:               # the best style member's layer weights, if trained
        try:
            best_style = best_member(("style",), names=list(params.style_models))
            style_member = clf if best_style == clf.name else style.load(best_style)
            feats = paths.style_features_file(params.style_model(best_style).features)
            style_X = load_features(feats).splits["train"][0]
        except MissingModel:
            style_member = None
    m = write_patterns(paths.PATTERNS_REPORT, clf, paths.PREPARED, settings,
                       seed=params.base.seed, notice=dataset_notice(paths.PREPARED),
                       style_member=style_member, style_X=style_X)
    return (f"{name}: Grad-CAM on {m['layer']}, {m['paintings']} paintings mapped, test "
            f"accuracy {m['test_accuracy']:.3f}; wrote {paths.PATTERNS_REPORT}/index.html")


if __name__ == "__main__":
    run("patterns", main)
