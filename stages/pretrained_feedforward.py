"""Stage pretrained_feedforward: Magenta's arbitrary style networks -> ``models/pretrained_feedforward/``."""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.models.feedforward import resolve_models

    out = resolve_models(paths.PRETRAINED_FEEDFORWARD, params.pretrained_feedforward)
    return f"wrote {out}"


if __name__ == "__main__":
    run("pretrained_feedforward", main)
