"""Stage features: penultimate-layer embeddings of every split (``python stages/features.py <model>``)."""

from _common import run


def main(params, argv):
    from artstyle.determinism import configure

    # Before TensorFlow starts: the same outputs on any x86-64 CPU (train.repeatable).
    configure(params.train.repeatable, params.train.threads)
    from artstyle import paths
    from artstyle.data.dataset import load_split, make_dataset
    from artstyle.embeddings import extract_embeddings
    from artstyle.features import save_features
    from artstyle.models.zoo import load_model

    (source,) = argv
    spec = params.model(source)
    model = load_model(paths.keras_model_file(source))
    splits = {}
    for split in paths.SPLITS:
        data, classes = load_split(paths.PREPARED, split)
        ds = make_dataset(data, input_size=spec.input_size, batch_size=64, shuffle=False, seed=0)
        X = extract_embeddings(model, ds, desc=f"{source} {split}")
        splits[split] = (X, data.labels, data.ids)
    out = save_features(paths.features_file(source), splits=splits, classes=classes,
                        meta={"source_model": source, "input_size": spec.input_size})
    shape = {s: tuple(v[0].shape) for s, v in splits.items()}
    return f"{source}: embeddings {shape}; wrote {out}"


if __name__ == "__main__":
    run("features", main)
