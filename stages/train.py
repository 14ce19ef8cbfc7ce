"""Stage train: fit one zoo model (``python stages/train.py <model name>``)."""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.data.dataset import load_split
    from artstyle.distribute import make_strategy, worker_output_path
    from artstyle.training import configure_threads, train_model

    (name,) = argv
    spec = params.model(name)
    strategy = make_strategy(params.train.distribution)
    configure_threads(params.train.threads)
    train, classes = load_split(paths.PREPARED, "train")
    validation, _ = load_split(paths.PREPARED, "validation")
    weights = paths.VGG19_WEIGHTS if spec.family == "vgg19_transfer" else None
    # Under multi-worker training only the chief writes the real outputs.
    r = train_model(spec, train, validation, classes, worker_output_path(paths.model_dir(name)),
                    worker_output_path(paths.train_report(name)), seed=params.base.seed,
                    vgg19_weights=weights, strategy=strategy, name=name)
    return (f"{name}: {r.train_images} training images, best epoch {r.best_epoch}/{r.epochs_run}, "
            f"val accuracy {r.best_val_accuracy:.3f}; wrote {paths.model_dir(name)}")


if __name__ == "__main__":
    run("train", main)
