"""Stage boost: XGBoost on one model's embeddings (``python stages/boost.py <source model>``).

Writes ``models/xgb_<source>/`` (``model.json``, ``classes.json``, ``spec.json``) and
``reports/train/xgb_<source>/metrics.json`` (the device param, what it resolved to and
the device that ran, threads, best iteration, fit seconds);
``evaluate_boost@<source>`` scores it like every other member.
"""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.boosting import fit_booster, save_booster, select_device
    from artstyle.features import load_features
    from artstyle.io import atomic_dir, write_json
    from artstyle.labels import check_training_classes

    (source,) = argv
    name = f"xgb_{source}"
    b = params.boost
    feats = load_features(paths.features_file(source))
    classes = feats.classes
    X_train, y_train, _ = feats.splits["train"]
    X_val, y_val, _ = feats.splits["validation"]
    check_training_classes(y_train, classes)
    model, info = fit_booster(X_train, y_train, X_val, y_val, n_classes=len(classes), params=b,
                              device=select_device(b.device), seed=params.base.seed,
                              n_jobs=b.threads, classes=classes)
    with atomic_dir(paths.model_dir(name)) as tmp:
        save_booster(model, tmp / paths.booster_file(name).name)
        write_json(tmp / "classes.json", classes)
        write_json(tmp / "spec.json", {"name": name, "source_model": source,
                                       "input_size": feats.meta.get("input_size")})
    write_json(paths.train_report(name) / "metrics.json", {
        # The device is a choice with its own digits (hist on a GPU sums in another order):
        # the param, what it resolved to and what ran (XGBoost falls back to the CPU).
        "device": info["device"], "ran_on_gpu": int(info["device"].startswith("cuda")),
        "device_param": b.device, "device_requested": info["device_requested"],
        "tree_method": info["tree_method"], "threads": b.threads or 0,
        "best_iteration": info["best_iteration"],
        "best_epoch": info["best_iteration"] + 1, "epochs_run": info.get("n_rounds"),
        "train_seconds": info["fit_seconds"], "train_images": len(y_train),
        "images_per_second": round(len(y_train) * (info.get("n_rounds") or 1)
                                   / max(info["fit_seconds"], 1e-9), 1)})
    return (f"{name}: device {info['device']}, best iteration {info['best_iteration']}; "
            f"wrote {paths.model_dir(name)}")


if __name__ == "__main__":
    run("boost", main)
