"""Architectures of the model zoo: the study's custom CNNs and VGG19 ImageNet transfer.

Every model takes float RGB images in [0, 255] of any side (``Input((None, None, 3))``;
the data pipeline resizes to the spec's ``input_size``) and does its own scaling
inside the graph, so a saved ``.keras`` file is all a user needs for inference and
our own CNN can serve as a style-transfer feature extractor at any image size.

Layer names are stable and documented because style transfer and the ``features``
stage address layers by name:

``cnn``
    ``augment`` (optional) -> ``rescale`` -> ``block<i>_conv1`` (3x3, ReLU) ->
    ``block<i>_bn`` -> ``block<i>_pool`` for each entry of ``conv_filters`` ->
    ``gap`` -> [``feature_norm``] -> ``pooled_dropout`` -> ``embedding`` (Dense, ReLU) ->
    ``dropout`` -> ``predictions`` (softmax).
``vgg19_transfer``
    ``augment`` -> ``vgg19_preprocess`` (a fixed 1x1 convolution equal to
    ``keras.applications.vgg19.preprocess_input``,
    :func:`artstyle.models.vgg19.vgg_preprocess_layer`) -> ``vgg19`` (the ImageNet base,
    Simonyan & Zisserman 2015, no top) -> ``gap`` -> [``feature_norm``] ->
    ``pooled_dropout`` -> ``embedding`` -> ``dropout`` -> ``predictions``.

``feature_norm`` (LayerNormalization, only when the spec's ``feature_norm`` is
``"layer"``) rescales each pooled feature vector: frozen ImageNet features have a
scale that has nothing to do with the new head's initialisation.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from artstyle.config import ModelSpec
from artstyle.models.vgg19 import build_vgg19_notop, vgg_preprocess_layer


def _augmentation(seed: int) -> keras.Sequential:
    """Label-preserving augmentation for paintings: flips, small rotations, zoom, contrast."""
    return keras.Sequential([
        layers.RandomFlip("horizontal", seed=seed),
        layers.RandomRotation(0.05, fill_mode="reflect", seed=seed + 1),
        layers.RandomZoom((-0.15, 0.0), fill_mode="reflect", seed=seed + 2),
        layers.RandomContrast(0.1, seed=seed + 3),
    ], name="augment")


def _head(x, spec: ModelSpec, n_classes: int):
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if spec.feature_norm == "layer":
        x = layers.LayerNormalization(name="feature_norm")(x)
    x = layers.Dropout(spec.pooled_dropout, name="pooled_dropout")(x)
    x = layers.Dense(spec.dense_units, activation="relu", name="embedding")(x)
    x = layers.Dropout(spec.dropout, name="dropout")(x)
    return layers.Dense(n_classes, activation="softmax", name="predictions")(x)


def build_cnn(spec: ModelSpec, n_classes: int, *, seed: int = 0, name: str = "cnn") -> keras.Model:
    """The study's custom CNN family (baseline, grid, best, balanced).

    Parameters
    ----------
    spec : ModelSpec
        ``conv_filters`` (one conv block per entry), ``pooled_dropout``, ``dense_units``,
        ``dropout``, ``augmentation``.
    n_classes : int
        Number of art movements (softmax width).

    Returns
    -------
    keras.Model
        Input ``(batch, H, W, 3)`` float32 RGB in [0, 255]; output ``(batch, n_classes)``
        probabilities.
    """
    inputs = keras.Input((None, None, 3), name="image")
    x = _augmentation(seed)(inputs) if spec.augmentation else inputs
    x = layers.Rescaling(1.0 / 255, name="rescale")(x)
    for i, filters in enumerate(spec.conv_filters, start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu",
                          name=f"block{i}_conv1")(x)
        # momentum 0.9: the running statistics must settle within the few steps
        # per epoch of a small dataset, or validation sees untrained statistics.
        x = layers.BatchNormalization(momentum=0.9, name=f"block{i}_bn")(x)
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    return keras.Model(inputs, _head(x, spec, n_classes), name=name)


def build_vgg19_transfer(spec: ModelSpec, n_classes: int, weights_path: str | Path | None, *,
                         seed: int = 0, name: str = "vgg19_transfer") -> keras.Model:
    """VGG19 (ImageNet, no top) with a new dense head; the base starts frozen.

    Parameters
    ----------
    spec : ModelSpec
        Head sizes and augmentation.
    n_classes : int
        Number of art movements.
    weights_path : path or None
        Keras ``.weights.h5`` of the no-top VGG19 (stage ``pretrained``); ``None`` gives
        seeded random weights (tests only).

    Returns
    -------
    keras.Model
        As :func:`build_cnn`; the nested base model is the layer named ``vgg19``.
    """
    base = build_vgg19_notop(weights_path, seed=seed)
    base.trainable = False
    inputs = keras.Input((None, None, 3), name="image")
    x = _augmentation(seed)(inputs) if spec.augmentation else inputs
    x = vgg_preprocess_layer(x)
    x = base(x)
    return keras.Model(inputs, _head(x, spec, n_classes), name=name)


def unfreeze_top_blocks(model: keras.Model, blocks: int) -> list[str]:
    """Make the last ``blocks`` convolution blocks of the nested VGG19 base trainable.

    Parameters
    ----------
    model : keras.Model
        Built by :func:`build_vgg19_transfer`.
    blocks : int
        0..5; ``2`` unfreezes ``block4_*`` and ``block5_*``.

    Returns
    -------
    list of str
        Names of the layers made trainable. The model must be compiled again.
    """
    base = model.get_layer("vgg19")
    wanted = {f"block{b}_" for b in range(6 - blocks, 6)} if blocks else set()
    base.trainable = bool(wanted)
    opened = []
    for layer in base.layers:
        layer.trainable = any(layer.name.startswith(p) for p in wanted)
        if layer.trainable and layer.weights:
            opened.append(layer.name)
    return opened


def build_model(spec: ModelSpec, n_classes: int, *, seed: int = 0, name: str = "model",
                vgg19_weights: str | Path | None = None) -> keras.Model:
    """Build any zoo model from its spec (the single dispatch on ``spec.family``)."""
    if spec.family == "cnn":
        return build_cnn(spec, n_classes, seed=seed, name=name)
    if spec.family == "vgg19_transfer":
        return build_vgg19_transfer(spec, n_classes, vgg19_weights, seed=seed, name=name)
    raise ValueError(f"unknown model family {spec.family!r}")


def load_model(path: str | Path) -> keras.Model:
    """Load a saved zoo model (plain Keras: ``keras.saving.load_model`` does the same).

    Returns
    -------
    keras.Model
        Uncompiled; input (batch, H, W, 3) float RGB in [0, 255], output class
        probabilities (batch, n_classes).
    """
    return keras.saving.load_model(str(path), compile=False)
