"""Stage evaluate: test and validation metrics of one Keras model (``python stages/evaluate.py <name>``)."""

from _common import run


def main(params, argv):
    from artstyle import paths
    from artstyle.data.dataset import dataset_notice
    from artstyle.data.dataset import load_split
    from artstyle.evaluation import write_evaluation
    from artstyle.models.zoo import load_model
    from artstyle.predict import predict_proba

    (name,) = argv
    spec = params.model(name)
    model = load_model(paths.keras_model_file(name))
    results = {}
    for split in ("validation", "test"):
        data, classes = load_split(paths.PREPARED, split)
        results[split] = (data.labels, predict_proba(model, data.images, spec.input_size))
    m = write_evaluation(paths.eval_report(name), name, classes, results,
                         notice=dataset_notice(paths.PREPARED))
    return (f"{name}: test accuracy {m['test']['accuracy']:.3f}, macro-F1 "
            f"{m['test']['macro_f1']:.3f}; wrote {paths.eval_report(name)}")


if __name__ == "__main__":
    run("evaluate", main)
