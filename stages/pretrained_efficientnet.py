"""Stage pretrained_efficientnet: EfficientNet-Lite0 ImageNet weights -> ``models/pretrained_efficientnet/``."""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.models.efficientnet_lite import resolve_weights

    path = resolve_weights(paths.PRETRAINED_EFFICIENTNET, params.pretrained_efficientnet)
    return f"wrote {path}"


if __name__ == "__main__":
    run("pretrained_efficientnet", main)
