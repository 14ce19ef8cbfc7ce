"""The model zoo's architectures and the two-phase VGG19 transfer training (random weights, tiny images)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artstyle.config import ModelSpec
from artstyle.data.dataset import Split


def _spec(**kw) -> ModelSpec:
    base = dict(family="vgg19_transfer", input_size=32, dense_units=8, dropout=0.5,
                batch_size=8, epochs=2, patience=2)
    return ModelSpec(**{**base, **kw})


def _split(n: int, n_classes: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    images[..., 0] = np.where(labels[:, None, None] == 0, 255, images[..., 0])
    return Split(images, labels.astype(np.int64), np.array([f"id{seed}_{i}" for i in range(n)]))


@pytest.mark.parametrize("norm, present", [("layer", True), ("none", False)])
def test_vgg19_head_feature_norm(norm, present):
    from artstyle.models.zoo import build_model

    model = build_model(_spec(feature_norm=norm), 3, name="m")
    names = [layer.name for layer in model.layers]
    assert ("feature_norm" in names) is present
    head = ["gap", *(["feature_norm"] if present else []), "pooled_dropout", "embedding",
            "dropout", "predictions"]
    assert names[-len(head):] == head
    assert model.get_layer("vgg19").trainable is False
    out = model.predict(np.zeros((2, 40, 56, 3), np.float32), verbose=0)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_unfreeze_top_blocks_names_only_the_last_blocks():
    from artstyle.models.zoo import build_model, unfreeze_top_blocks

    model = build_model(_spec(), 3)
    opened = unfreeze_top_blocks(model, 2)
    assert opened == [f"block{b}_conv{i}" for b in (4, 5) for i in (1, 2, 3, 4)]
    assert unfreeze_top_blocks(model, 0) == []
    assert model.get_layer("vgg19").trainable is False


@pytest.mark.slow  # trains two phases of a VGG19 transfer model: ~40 s on 2 cores
def test_two_phase_transfer_on_cached_front_trains_head_and_block5(tmp_path):
    """Phase 1 fits the head on cached block5_pool features, phase 2 also block5; the
    saved model holds the best epoch and loads with its feature_norm layer."""
    import keras

    from artstyle.models.zoo import load_model
    from artstyle.training import train_model

    spec = _spec(feature_norm="layer", fine_tune_blocks=1, fine_tune_epochs=2,
                 fine_tune_learning_rate=1e-3)
    result = train_model(spec, _split(24, 3, 0), _split(9, 3, 1), ["a", "b", "c"],
                         tmp_path / "model", tmp_path / "report", seed=0, name="vgg",
                         verbose=0)
    assert result.epochs_run == 4 and 1 <= result.best_epoch <= 4
    history = json.loads((tmp_path / "model" / "history.json").read_text())
    assert len(history["val_loss"]) == 4
    assert result.best_val_loss == pytest.approx(min(history["val_loss"]), rel=1e-5)

    saved = load_model(tmp_path / "model" / "model.keras")
    assert "feature_norm" in [layer.name for layer in saved.layers]
    # Phase 2 changed block5 (random init otherwise identical from the same seed).
    keras.utils.set_random_seed(0)
    from artstyle.models.zoo import build_model
    fresh = build_model(spec, 3, name="vgg")
    w_saved = saved.get_layer("vgg19").get_layer("block5_conv4").get_weights()[0]
    w_fresh = fresh.get_layer("vgg19").get_layer("block5_conv4").get_weights()[0]
    w1_saved = saved.get_layer("vgg19").get_layer("block1_conv1").get_weights()[0]
    w1_fresh = fresh.get_layer("vgg19").get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(w1_saved, w1_fresh)          # frozen front untouched
    if result.best_epoch > 2:                                    # best epoch in phase 2
        assert not np.array_equal(w_saved, w_fresh)
    else:
        np.testing.assert_array_equal(w_saved, w_fresh)


@pytest.mark.slow    # a fresh Python process imports TensorFlow: 10-20 s each
@pytest.mark.parametrize("family", ["cnn", "vgg19_transfer"])
def test_saved_model_loads_with_plain_keras_in_a_fresh_process(tmp_path, family):
    """A saved zoo model needs nothing of artstyle: keras.saving.load_model alone loads it."""
    import subprocess
    import sys

    from artstyle.models.zoo import build_model

    spec = _spec(family=family, augmentation=True,
                 **({"conv_filters": [4, 8]} if family == "cnn" else {}))
    model = build_model(spec, 3, seed=0, name="m")
    path = tmp_path / "model.keras"
    model.save(path)
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 40, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code = ("import sys, numpy as np, keras; "
            "m = keras.saving.load_model(sys.argv[1], compile=False); "
            "np.save(sys.argv[3], m.predict(np.load(sys.argv[2]), verbose=0)); "
            "print(sorted(k for k in sys.modules if k.startswith('artstyle')))")
    res = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.npy"),
                          str(tmp_path / "y.npy")], capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip().splitlines()[-1] == "[]"      # nothing of ours was imported
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_vgg19_preprocessing_layer_equals_keras_preprocess_input():
    import keras

    from artstyle.models.vgg19 import vgg_preprocess_layer

    inp = keras.Input((None, None, 3))
    model = keras.Model(inp, vgg_preprocess_layer(inp))
    x = np.random.default_rng(1).uniform(0, 255, (2, 9, 7, 3)).astype(np.float32)
    expected = keras.applications.vgg19.preprocess_input(x.copy())
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)
    assert model.get_layer("vgg19_preprocess").trainable is False


def test_vgg19_preprocessing_layer_leaves_the_layer_seeds_alone():
    """Building the layer draws nothing from Python's ``random``, which Keras uses for the
    default seed of every unseeded initialiser: the layers built after it (the transfer
    model's head) get the same initial weights with or without it, so adding it did not
    change the seeded training run (vgg19_transfer's sample metrics equal those before)."""
    import random

    import keras

    from artstyle.models.vgg19 import vgg_preprocess_layer

    keras.utils.set_random_seed(3)
    before = random.getstate()
    vgg_preprocess_layer(keras.Input((None, None, 3)))
    assert random.getstate() == before
