"""Stage style_features: VGG19 or EfficientNet-Lite0 style descriptors of every split (``python stages/style_features.py <set>``)."""

from _common import run


def main(params, argv):
    import numpy as np
    from artstyle.determinism import configure

    # Before TensorFlow starts: the same outputs on any x86-64 CPU (train.repeatable).
    configure(params.train.repeatable, params.train.threads)

    from artstyle import paths
    from artstyle.data.dataset import load_split, resize_batch
    from artstyle.errors import ArtstyleError
    from artstyle.features import save_features
    from artstyle.io import write_json
    from artstyle.models.style_features import StyleDescriptor

    (name,) = argv
    spec = params.style_feature_set(name)
    weights, stage = paths.BACKBONE_WEIGHTS[spec.backbone]
    if not weights.is_file():
        raise ArtstyleError(f"{weights} not found; run: dvc repro {stage}")
    describe = StyleDescriptor(weights, spec.stat_layers, spec.gram_layers, backbone=spec.backbone)
    splits, timing = {}, {"images": 0, "seconds": 0.0}
    for split in paths.SPLITS:
        data, classes = load_split(paths.PREPARED, split)
        images = data.images
        if spec.input_size and images.shape[1] != spec.input_size:
            images = resize_batch(images, spec.input_size)
        X, t = describe.describe(images, patches=spec.patches, fraction=spec.patch_fraction,
                                 batch_size=spec.batch_size, desc=f"{name} {split}")
        ids = [f"{i}#{p}" for i in data.ids for p in range(spec.patches)]
        splits[split] = (X, np.repeat(data.labels, spec.patches), ids)
        timing["images"] += t["images"]
        timing["seconds"] += t["seconds"]
    ips = round(timing["images"] / max(timing["seconds"], 1e-9), 2)
    out = save_features(paths.style_features_file(name), splits=splits, classes=classes, meta={
        "feature_set": name, "patches": spec.patches, "dim": describe.dim, **spec.model_dump()})
    write_json(paths.style_features_report(name), {
        "paintings": timing["images"], "seconds": round(timing["seconds"], 1),
        "images_per_second": ips})
    return (f"{name}: {describe.dim} numbers x {spec.patches} patch(es) per painting, "
            f"{ips} paintings/s; wrote {out}")


if __name__ == "__main__":
    run("style_features", main)
