"""Grad-CAM: where a classifier looks (Selvaraju et al., "Grad-CAM: Visual Explanations from
Deep Networks via Gradient-based Localization", ICCV 2017).

For a class ``c`` with pre-softmax score ``y_c`` and the feature map ``A`` (``h x w x K``)
of the last convolutional layer, the channel weights are the spatially averaged gradients
``alpha_k = mean_ij d y_c / d A_ijk`` and the map is ``ReLU(sum_k alpha_k A_k)``, scaled
to a maximum of 1 and resized (bilinear) to the painting.

The layer is the **last convolutional layer** of the model, after its ReLU:

- the zoo's ``cnn`` family: ``block<n>_conv1`` of the last block (``block3_conv1`` for
  three blocks; at 64 px input its map is 16 x 16);
- ``vgg19_transfer``: ``block5_conv4`` inside the nested base model ``vgg19``, named
  ``vgg19/block5_conv4`` (4 x 4 at 64 px input, 14 x 14 at 224 px).

A nested base model has no tensor of the outer graph for its inner layers, so the model
is rebuilt by re-applying its layers in order, the nested base split into "input to
feature map" and "feature map to its output" (:func:`gradcam_model`); the layers and
weights are shared, nothing is copied. The score ``y_c`` is the logit: when the last
layer is a softmax ``Dense``, its kernel and bias are applied to its input inside the
gradient tape (the softmax saturates for confident predictions).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from artstyle.errors import ArtstyleError

#: Layer types whose output is a feature map usable by Grad-CAM.
CONV_LAYERS: tuple[type, ...] = (keras.layers.Conv2D, keras.layers.SeparableConv2D,
                                 keras.layers.DepthwiseConv2D)


class NoFeatureMap(ArtstyleError, ValueError):
    """The model has no convolutional layer (or is not a chain Grad-CAM can rebuild)."""


@dataclass(frozen=True)
class GradCamModel:
    """A model's feature map and class scores, ready for :func:`grad_cam`.

    Attributes
    ----------
    model : keras.Model
        Image batch ``(n, H, W, 3)`` float RGB in [0, 255] -> ``[feature map (n, h, w, K),
        head (n, d)]``; ``head`` is the input of the final ``Dense`` layer when
        ``kernel`` is set, otherwise the class scores ``(n, n_classes)``.
    layer : str
        The feature map's layer, nested names joined by ``/`` (``vgg19/block5_conv4``).
    kernel, bias : keras.Variable or None
        The final softmax ``Dense`` layer's weights, to compute logits from ``head``.
    """

    model: Any
    layer: str
    kernel: Any = None
    bias: Any = None
    # The traced Grad-CAM step, made once per model: a new tf.function per call would
    # trace again on every image (slow, and TensorFlow warns of retracing).
    _steps: dict = field(default_factory=dict, init=False, repr=False, compare=False)


def last_conv_path(model: Any) -> list[str]:
    """Names leading to the last convolutional layer, through nested models.

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    list of str
        ``["block3_conv1"]`` for a flat model, ``["vgg19", "block5_conv4"]`` when the
        last convolution sits in the nested model ``vgg19``.

    Raises
    ------
    NoFeatureMap
        No convolutional layer anywhere in the model.
    """
    for layer in reversed(model.layers):
        if isinstance(layer, keras.Model):
            try:
                return [layer.name, *last_conv_path(layer)]
            except NoFeatureMap:
                continue
        if isinstance(layer, CONV_LAYERS):
            return [layer.name]
    raise NoFeatureMap(f"model {model.name!r} has no convolutional layer: Grad-CAM needs "
                       "a feature map (XGBoost and dense-only models have none)")


def _producer(tensor: Any) -> Any:
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history[0]


def _own_node(model: Any, layer: Any) -> Any:
    """The call of ``layer`` that belongs to ``model``'s graph (a layer may be shared, and
    a nested functional model also has a node of its own), or None.

    Keras 3 keeps a functional model's nodes in ``_nodes`` under the keys
    ``f"{id(layer)}_ib-{node_index}"`` (``keras.src.ops.function.make_node_key``).
    """
    own = getattr(model, "_nodes", set())
    nodes = [node for i, node in enumerate(layer._inbound_nodes)
             if f"{id(layer)}_ib-{i}" in own]
    return nodes[0] if len(nodes) == 1 else None


def _check_chain(model: Any) -> list[Any]:
    """The layers of a chain model (each layer fed by the one before), inputs excluded.

    Read from each layer's call in ``model``'s graph; a nested model's own
    ``input``/``output`` are its inner tensors, not those of the outer graph.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    previous = model.inputs[0]
    for layer in layers:
        node = _own_node(model, layer)
        if node is None or len(node.input_tensors) != 1 or node.input_tensors[0] is not previous:
            raise NoFeatureMap(f"model {model.name!r} is not a chain of layers (layer "
                               f"{layer.name!r}); Grad-CAM cannot rebuild it around a "
                               "nested model")
        previous = node.output_tensors[0]
    return layers


def _split(model: Any, path: list[str], *, stop_before: Any = None) -> Any:
    """``model`` rebuilt to output ``[feature map at path, last tensor]``.

    The last tensor is the model's output, or the input of ``stop_before`` (a layer of
    ``model``) when given.
    """
    if len(path) == 1 and stop_before is None:
        return keras.Model(model.inputs, [model.get_layer(path[0]).output, model.outputs[0]])
    if len(path) == 1:
        return keras.Model(model.inputs, [model.get_layer(path[0]).output, stop_before.input])
    layers = _check_chain(model)
    x = inputs = keras.Input(tuple(model.inputs[0].shape[1:]), name=f"{model.name}_image")
    fmap = None
    for layer in layers:
        if layer is stop_before:
            break
        if layer.name == path[0]:
            fmap, x = _split(layer, path[1:])(x)
        else:
            x = layer(x)
    return keras.Model(inputs, [fmap, x], name=f"{model.name}_gradcam")


def gradcam_model(model: Any) -> GradCamModel:
    """Prepare a trained classifier for Grad-CAM on its last convolutional layer.

    Parameters
    ----------
    model : keras.Model
        A classifier with one image input and one output; a nested base model (such as
        ``vgg19`` of ``vgg19_transfer``) must sit in a chain of layers.

    Returns
    -------
    GradCamModel
        Sharing the layers and weights of ``model``.

    Raises
    ------
    NoFeatureMap
        No convolutional layer, or a nested one in a graph that is not a chain.
    """
    path = last_conv_path(model)
    final = _producer(model.outputs[0]) or model.layers[-1]
    logits = (isinstance(final, keras.layers.Dense)
              and getattr(final.activation, "__name__", "") == "softmax")
    split = _split(model, path, stop_before=final if logits else None)
    return GradCamModel(split, "/".join(path), final.kernel if logits else None,
                        final.bias if logits else None)


def grad_cam(gmodel: GradCamModel, images: np.ndarray, class_index: np.ndarray | None = None,
             *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grad-CAM maps of a batch, at the feature map's resolution.

    Parameters
    ----------
    gmodel : GradCamModel
        From :func:`gradcam_model`.
    images : ndarray of shape (n, H, W, 3)
        Float RGB in [0, 255] at the model's input size (``resize_batch``).
    class_index : ndarray of shape (n,), int, optional
        The class explained for each image; default the predicted one.
    batch_size : int

    Returns
    -------
    maps : ndarray of shape (n, h, w), float32
        In [0, 1]: maximum 1, or all 0 when no location raises the score.
    proba : ndarray of shape (n, n_classes), float32
        The class probabilities.
    head : ndarray of shape (n, d), float32
        The input of the final ``Dense`` layer (the embedding of
        :func:`artstyle.embeddings.embedding_model`) when ``gmodel.kernel`` is set,
        otherwise the model's output.
    """
    import tensorflow as tf

    _step = gmodel._steps.get("grad_cam")
    if _step is None:
        _step = gmodel._steps.setdefault("grad_cam", _grad_cam_step(gmodel))

    wanted_all = (np.full(len(images), -1, np.int64) if class_index is None
                  else np.asarray(class_index, np.int64))
    maps, probas, heads = [], [], []
    for start in range(0, len(images), batch_size):
        cam, proba, head = _step(tf.convert_to_tensor(images[start:start + batch_size], tf.float32),
                                 tf.convert_to_tensor(wanted_all[start:start + batch_size]))
        cam = cam.numpy()
        peak = cam.max(axis=(1, 2), keepdims=True)
        maps.append(np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0))
        probas.append(proba.numpy())
        heads.append(head.numpy())
    return (np.concatenate(maps).astype(np.float32),
            np.concatenate(probas).astype(np.float32),
            np.concatenate(heads).astype(np.float32))


def _grad_cam_step(gmodel: GradCamModel):
    """The traced step of :func:`grad_cam` (any batch and image size)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32),
                                  tf.TensorSpec((None,), tf.int64)], reduce_retracing=True)
    def _step(x, wanted):
        with tf.GradientTape() as tape:
            fmap, head = gmodel.model(x, training=False)
            scores = head if gmodel.kernel is None else (
                tf.matmul(head, tf.convert_to_tensor(gmodel.kernel))
                + tf.convert_to_tensor(gmodel.bias))
            target = tf.where(wanted < 0, tf.argmax(scores, axis=1), wanted)
            score = tf.gather(scores, target, axis=1, batch_dims=1)
        grads = tape.gradient(score, fmap)
        weights = tf.reduce_mean(grads, axis=(1, 2))                  # (b, K)
        cam = tf.nn.relu(tf.einsum("bhwk,bk->bhw", fmap, weights))
        proba = tf.nn.softmax(scores) if gmodel.kernel is not None else scores
        return cam, proba, head

    return _step


def head_outputs(gmodel: GradCamModel, images: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """The ``head`` of :func:`grad_cam` without gradients (a forward pass).

    Parameters
    ----------
    images : ndarray of shape (n, H, W, 3)
        Float RGB in [0, 255] at the model's input size.

    Returns
    -------
    ndarray of shape (n, d), float32
        The embeddings when ``gmodel.kernel`` is set (see :func:`grad_cam`).
    """
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)],
                 reduce_retracing=True)
    def _forward(x):
        return gmodel.model(x, training=False)[1]

    parts = [_forward(tf.convert_to_tensor(images[i:i + batch_size], tf.float32)).numpy()
             for i in range(0, len(images), batch_size)]
    return (np.concatenate(parts) if parts else np.zeros((0, 0))).astype(np.float32)


def upsample(maps: np.ndarray, side: int | tuple[int, int]) -> np.ndarray:
    """Resize maps ``(n, h, w)`` bilinearly to ``(n, H, W)`` (``side`` or ``(H, W)``)."""
    import tensorflow as tf

    size = (side, side) if isinstance(side, int) else tuple(side)
    out = tf.image.resize(np.asarray(maps, np.float32)[..., None], size, method="bilinear")
    return np.clip(out.numpy()[..., 0], 0.0, 1.0)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """A heat map over a painting.

    Parameters
    ----------
    image : ndarray of shape (H, W, 3), uint8
    heat : ndarray of shape (H, W), float in [0, 1]
    alpha : float
        Opacity of the heat map's colours (matplotlib's ``jet``).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    from matplotlib import colormaps

    colours = colormaps["jet"](np.clip(heat, 0, 1))[..., :3] * 255.0
    mixed = (1 - alpha) * image.astype(np.float32) + alpha * colours
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def peak_cell(heat: np.ndarray, grid: int = 2) -> tuple[int, int]:
    """``(row, column)`` of the ``grid x grid`` cell holding the most heat of a map ``(H, W)``."""
    h, w = heat.shape
    sums = np.array([[heat[r * h // grid:(r + 1) * h // grid, c * w // grid:(c + 1) * w // grid].sum()
                      for c in range(grid)] for r in range(grid)])
    r, c = np.unravel_index(np.argmax(sums), sums.shape)
    return int(r), int(c)
