"""Tests for artstyle.embeddings (penultimate-layer models, extraction) and artstyle.features
(feature files)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from artstyle.embeddings import embedding_model, extract_embeddings
from artstyle.features import Features, load_features, save_features

CLASSES = ["Romanticism", "Baroque", "Cubism"]


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(10, 8, 8, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def sequential():
    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Rescaling(1 / 255),  # preprocessing inside the graph
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(6, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(3, activation="softmax"),
    ], name="tiny_seq")


@pytest.fixture(scope="module")
def functional():
    """VGG-like: nested base model, pooling, hidden Dense, logits, separate softmax."""
    keras.utils.set_random_seed(1)
    base = keras.Sequential([keras.Input((8, 8, 3)),
                             keras.layers.Conv2D(5, 3, activation="relu")], name="base")
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inp)
    x = base(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(7, activation="relu", name="hidden")(x)
    x = keras.layers.Dense(3, name="logits")(x)
    out = keras.layers.Activation("softmax")(x)
    return keras.Model(inp, out, name="tiny_fn")


def test_sequential_embedding_is_the_input_of_the_final_dense(sequential, images):
    emb = embedding_model(sequential)
    assert emb.outputs[0].shape[-1] == 6
    z = np.asarray(emb.predict_on_batch(images))
    assert z.shape == (10, 6)
    # The classifier's last layer applied to the embedding reproduces the classifier.
    np.testing.assert_allclose(np.asarray(sequential.layers[-1](z)),
                               np.asarray(sequential.predict_on_batch(images)), rtol=1e-5,
                               atol=1e-6)


def test_functional_embedding_skips_separate_softmax(functional, images):
    emb = embedding_model(functional)
    z = np.asarray(emb.predict_on_batch(images))
    assert z.shape == (10, 7)
    hidden = keras.Model(functional.inputs[0], functional.get_layer("hidden").output)
    np.testing.assert_allclose(z, np.asarray(hidden.predict_on_batch(images)), rtol=1e-6)
    logits = functional.get_layer("logits")
    np.testing.assert_allclose(np.asarray(keras.activations.softmax(logits(z))),
                               np.asarray(functional.predict_on_batch(images)), rtol=1e-5,
                               atol=1e-6)


def test_layer_name_escape_hatch(functional):
    assert embedding_model(functional, layer_name="pool").outputs[0].shape[-1] == 5


def test_model_without_final_dense_is_rejected():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D()])
    with pytest.raises(ValueError, match="final classification Dense"):
        embedding_model(model)


def test_unbuilt_model_is_rejected():
    with pytest.raises(ValueError, match="no defined inputs"):
        embedding_model(keras.Sequential([keras.layers.Dense(3)]))


def test_extract_from_array_in_batches(sequential, images):
    X = extract_embeddings(sequential, images, batch_size=4, progress=False)
    assert X.dtype == np.float32 and X.shape == (10, 6)
    np.testing.assert_allclose(
        X, np.asarray(embedding_model(sequential).predict_on_batch(images)), rtol=1e-5,
        atol=1e-6)


def test_extract_from_unbatched_dataset_with_extras(functional, images):
    ids = [f"Cubism/artist/{i}.jpg" for i in range(10)]
    labels = np.arange(10) % 3
    ds = tf.data.Dataset.from_tensor_slices((images, labels, ids))
    X, (y, got_ids) = extract_embeddings(functional, ds, batch_size=3, progress=False,
                                         return_extras=True)
    assert X.shape == (10, 7)
    assert y.tolist() == labels.tolist()
    assert got_ids.tolist() == ids
    X_arr = extract_embeddings(functional, images, progress=False)
    np.testing.assert_allclose(X, X_arr, rtol=1e-5, atol=1e-6)


def test_extract_from_batched_dataset_of_images(sequential, images):
    ds = tf.data.Dataset.from_tensor_slices(images).batch(4)
    X = extract_embeddings(sequential, ds, progress=False)
    assert X.shape == (10, 6)


def test_extract_rejects_wrong_rank(sequential, images):
    with pytest.raises(ValueError, match="rank"):
        extract_embeddings(sequential, images[0], progress=False)


# --------------------------------------------------------------------------- files


def _splits():
    rng = np.random.default_rng(3)
    return {
        "train": (rng.normal(size=(6, 4)), ["Cubism", "Baroque", "Romanticism"] * 2,
                  [f"tr{i}" for i in range(6)]),
        "validation": (rng.normal(size=(2, 4)).astype(np.float32), np.array([0, 0]),
                       ["va0", "va1"]),
        "test": (np.zeros((0, 4)), [], []),
    }


def test_features_round_trip(tmp_path):
    splits = _splits()
    path = save_features(tmp_path / "f" / "best_cnn.npz", splits=splits, classes=CLASSES,
                         meta={"source_model": "best_cnn"})
    assert sorted(p.name for p in path.parent.iterdir()) == ["best_cnn.npz"]  # no temp left
    feats = load_features(path)
    assert isinstance(feats, Features)
    assert feats.classes == CLASSES
    assert feats.meta == {"source_model": "best_cnn"}
    assert list(feats.splits) == ["train", "validation", "test"]
    X, y, ids = feats.splits["train"]
    assert X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(X, splits["train"][0].astype(np.float32))
    assert y.tolist() == [2, 1, 0, 2, 1, 0]
    assert ids.tolist() == splits["train"][2]
    assert feats.splits["validation"][1].tolist() == [0, 0]
    assert feats.splits["test"][0].shape == (0, 4)
    with np.load(path, allow_pickle=False) as raw:  # plain arrays, no pickles
        assert json.loads(str(raw["meta"]))["source_model"] == "best_cnn"


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.update(train=(s["train"][0], ["Dada"] * 6, s["train"][2])), "Dada"),
    (lambda s: s.update(validation=(np.zeros((2, 5)), [0, 0], ["a", "b"])), "features"),
    (lambda s: s.update(validation=(np.zeros((2, 4)), [0, 0], ["a", "a"])), "duplicate"),
    (lambda s: s.update(validation=(np.zeros((2, 4)), [0, 0], ["tr0", "b"])), "both split"),
    (lambda s: s.update(validation=(np.zeros((2, 4)), [0], ["a", "b"])), "labels"),
    (lambda s: s.update({"bad-name": s.pop("test")}), "split name"),
])
def test_save_features_rejects_bad_input(tmp_path, mutate, message):
    splits = _splits()
    mutate(splits)
    with pytest.raises(ValueError, match=message):
        save_features(tmp_path / "f.npz", splits=splits, classes=CLASSES)
    assert list(tmp_path.iterdir()) == []
