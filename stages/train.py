"""Stage train: fit one zoo model (``python stages/train.py <model name>``)."""

from _common import run


def main(params, argv):
    from artstyle.determinism import configure

    # Before TensorFlow starts: the same weights on any x86-64 CPU (train.repeatable).
    configure(params.train.repeatable, params.train.threads)
    from artstyle import paths
    from artstyle.data.dataset import load_split
    from artstyle.distribute import chief_output, make_strategy
    from artstyle.training import train_model

    (name,) = argv
    spec = params.model(name)
    strategy = make_strategy(params.train.distribution)
    train, classes = load_split(paths.PREPARED, "train")
    validation, _ = load_split(paths.PREPARED, "validation")
    weights = paths.VGG19_WEIGHTS if spec.family == "vgg19_transfer" else None
    # Under multi-worker training only the chief's outputs are kept; each appears whole.
    with chief_output(paths.model_dir(name)) as model_dir, \
            chief_output(paths.train_report(name)) as report_dir:
        r = train_model(spec, train, validation, classes, model_dir, report_dir,
                        seed=params.base.seed, vgg19_weights=weights, strategy=strategy, name=name)
    return (f"{name}: {r.train_images} training images, best epoch {r.best_epoch}/{r.epochs_run}, "
            f"val accuracy {r.best_val_accuracy:.3f}; wrote {paths.model_dir(name)}")


if __name__ == "__main__":
    run("train", main)
