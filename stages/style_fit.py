"""Stage style_fit: a head on cached style descriptors (``python stages/style_fit.py <model>``).

Fits one head per value of ``C`` on the training split and keeps the best on the
validation split; writes ``models/<model>/head.joblib`` and ``spec.json`` and
``reports/train/<model>/metrics.json``. The test split is scored by ``evaluate``.
"""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.features import load_features
    from artstyle.heads import fit_head, save_head
    from artstyle.io import atomic_dir, write_json
    from artstyle.labels import check_training_classes

    (name,) = argv
    spec = params.style_model(name)
    feats = load_features(paths.style_features_file(spec.features))
    patches = int(feats.meta.get("patches", 1))
    X_train, y_train, _ = feats.splits["train"]
    X_val, y_val, _ = feats.splits["validation"]
    check_training_classes(y_train, feats.classes)
    head, info = fit_head(spec, X_train, y_train, X_val, y_val, n_classes=len(feats.classes),
                          patches=patches, seed=params.base.seed)
    with atomic_dir(paths.model_dir(name)) as tmp:
        save_head(head, tmp / paths.head_file(name).name)
        write_json(tmp / "spec.json", {"name": name, **spec.model_dump(), "chosen_C": info["C"],
                                       "feature_meta": feats.meta})
        write_json(tmp / "classes.json", feats.classes)
    n_train = len(y_train) // patches
    write_json(paths.train_report(name) / "metrics.json", {
        "fit_seconds": info["fit_seconds"], "feature_set": spec.features,
        "train_images": n_train, "patches": patches,
        "chosen_C": info["C"], "val_accuracy_by_C": info["val_accuracy_by_C"],
        "parameters": int(X_train.shape[1])})
    return (f"{name}: {spec.head} head, C={info['C']} chosen on validation "
            f"({info['val_accuracy_by_C']}); wrote {paths.model_dir(name)}")


if __name__ == "__main__":
    run("style_fit", main)
