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


# ---------------------------------------------------------------------------
# Style heads: a scikit-learn head on statistics of a frozen network's layers
# ---------------------------------------------------------------------------

def head_scores_fn(head: Any) -> tuple[Any, np.ndarray]:
    """A style head's class scores as a TensorFlow function of its descriptors.

    Parameters
    ----------
    head : sklearn.pipeline.Pipeline
        From :func:`artstyle.heads.fit_head`: ``StandardScaler`` -> ``PCA`` (optional,
        not whitened) -> ``LogisticRegression``, ``MLPClassifier`` (ReLU) or
        ``CalibratedClassifierCV(LinearSVC)``.

    Returns
    -------
    (callable, ndarray of int)
        ``scores(x)``: descriptors ``(n, d)`` float32 tensor -> scores ``(n, k_head)``,
        the logits (logistic, MLP; with two classes ``[-z/2, z/2]`` for the log-odds
        ``z``, whose softmax is the head's probability) or, for the calibrated SVMs,
        the logarithm of their mean Platt-scaled probability; and ``head.classes_`` (the class index of
        each score column).

    Raises
    ------
    TypeError
        A pipeline step this function does not know.
    """
    import tensorflow as tf
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    steps = [step for _, step in head.steps]
    affine = []                                   # (matrix or None, shift) applied in order
    for step in steps[:-1]:
        if isinstance(step, StandardScaler):
            mean = step.mean_ if step.mean_ is not None else 0.0
            scale = step.scale_ if step.scale_ is not None else 1.0
            affine.append(("scale", np.asarray(mean, np.float32), np.asarray(scale, np.float32)))
        elif isinstance(step, PCA) and not step.whiten:
            affine.append(("project", step.mean_.astype(np.float32),
                           step.components_.T.astype(np.float32)))
        else:
            raise TypeError(f"style-head Grad-CAM does not know the step {type(step).__name__}")
    clf = steps[-1]

    def features(x):
        for kind, a, b in affine:
            x = (x - a) / b if kind == "scale" else tf.matmul(x - a, b)
        return x

    if isinstance(clf, LogisticRegression):
        W, b = clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32)

        def scores(x):
            s = tf.matmul(features(x), W, transpose_b=True) + b
            return tf.concat([-s / 2, s / 2], axis=1) if W.shape[0] == 1 else s
    elif isinstance(clf, MLPClassifier):
        if clf.activation != "relu":
            raise TypeError(f"style-head Grad-CAM needs a ReLU MLP, not {clf.activation}")
        layers = [(w.astype(np.float32), c.astype(np.float32))
                  for w, c in zip(clf.coefs_, clf.intercepts_)]

        def scores(x):
            x = features(x)
            for i, (w, c) in enumerate(layers):
                x = tf.matmul(x, w) + c
                if i < len(layers) - 1:
                    x = tf.nn.relu(x)
            return tf.concat([-x / 2, x / 2], axis=1) if x.shape[1] == 1 else x
    elif isinstance(clf, CalibratedClassifierCV):
        folds = []
        for c in clf.calibrated_classifiers_:
            if any(not hasattr(cal, "a_") for cal in c.calibrators):
                raise TypeError("style-head Grad-CAM needs sigmoid (Platt) calibration")
            folds.append((c.estimator.coef_.astype(np.float32),
                          c.estimator.intercept_.astype(np.float32),
                          np.array([cal.a_ for cal in c.calibrators], np.float32),
                          np.array([cal.b_ for cal in c.calibrators], np.float32)))

        def scores(x):
            z, total = features(x), 0.0
            for W, b, a, c in folds:      # Platt: p = 1 / (1 + exp(a f + c)), normalised
                p = tf.sigmoid(-(a * (tf.matmul(z, W, transpose_b=True) + b) + c))
                p = (tf.concat([1 - p, p], axis=1) if W.shape[0] == 1
                     else p / tf.maximum(tf.reduce_sum(p, axis=1, keepdims=True), 1e-12))
                total += p
            return tf.math.log(tf.maximum(total / len(folds), 1e-12))
    else:
        raise TypeError(f"style-head Grad-CAM does not know the classifier {type(clf).__name__}")
    return scores, np.asarray(clf.classes_, int)


def style_head_grad_cam(descriptor: Any, head: Any, images: np.ndarray,
                        class_index: np.ndarray | None = None, *, n_classes: int | None = None,
                        layer: str | None = None, batch_size: int = 8,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where a style head looks: gradient-weighted activations of a frozen network's layer.

    A style member's class score is a differentiable function of the frozen network's
    feature maps: per-channel means and standard deviations of its ``stat_layers``
    (and Gram matrices of its ``gram_layers``), standardised, optionally projected (PCA)
    and fed to a linear or MLP classifier. The gradient of the class score therefore
    reaches a convolutional layer as it does in a Keras classifier.

    The map is the gradient times the activation, summed over the channels, ReLU:
    ``ReLU(sum_k dy_c/dA_ijk A_ijk)`` (HiResCAM, Draelos & Carin 2020, "Use HiResCAM
    instead of Grad-CAM for faithful explanations of convolutional neural networks",
    arXiv:2011.08891). Grad-CAM's spatially averaged gradient (Selvaraju et al. 2017)
    would be blind here: the gradient of a channel's standard deviation,
    ``(A_ijk - mean_k) / (H W sd_k)``, averages to exactly zero over the positions, so
    only the means would count. Summed over the positions, this map is the first-order
    share of the score carried by the layer's statistics, position by position.

    Parameters
    ----------
    descriptor : artstyle.models.style_features.StyleDescriptor
        The frozen network and layers the head was fitted on.
    head : sklearn.pipeline.Pipeline
        A fitted head (:func:`artstyle.heads.fit_head`; see :func:`head_scores_fn`).
    images : ndarray of shape (n, H, W, 3)
        RGB in [0, 255] at the descriptor's input size (the whole painting; a head fitted
        on patches is explained on the whole painting).
    class_index : ndarray of shape (n,), int, optional
        The class explained per image (an index into the member's classes); default the
        head's prediction.
    n_classes : int, optional
        Columns of ``proba`` (classes the head never saw get 0); default
        ``max(head.classes_) + 1``.
    layer : str, optional
        The layer whose activations make the map; default the deepest described layer
        (``descriptor.deepest``: ``head`` of EfficientNet-Lite at 1/32 of the image side,
        ``block5_conv1``-``block5_conv4`` of VGG19 at 1/16). The gradient reaches it
        through its own statistics and those of every deeper layer; shallower layers'
        statistics do not depend on it and are not in the map.
    batch_size : int

    Returns
    -------
    maps : ndarray of shape (n, h, w), float32
        In [0, 1]: maximum 1, or all 0 when no position raises the score.
    proba : ndarray of shape (n, n_classes), float32
        The head's class probabilities (``predict_proba``) of each whole image.
    descriptors : ndarray of shape (n, descriptor.dim), float32
        The descriptors of the images (as :meth:`StyleDescriptor.__call__`).

    Raises
    ------
    ValueError
        ``layer`` is not one of the descriptor's layers.
    TypeError
        A head step :func:`head_scores_fn` does not know.
    """
    import tensorflow as tf

    layer = layer or descriptor.deepest
    names = descriptor._names
    if layer not in names:
        raise ValueError(f"layer {layer!r} is not described; the descriptor's layers: "
                         + ", ".join(names))
    scores_of, head_classes = head_scores_fn(head)
    n_classes = n_classes or int(head_classes.max()) + 1
    column = {int(c): i for i, c in enumerate(head_classes)}

    def stats(maps):
        parts = []
        for n in descriptor.stat_layers:
            f = tf.cast(maps[n], tf.float32)
            mu = tf.reduce_mean(f, axis=(1, 2))
            var = tf.reduce_mean(tf.square(f - mu[:, None, None, :]), axis=(1, 2))
            parts += [mu, tf.sqrt(var + 1e-8)]
        for n in descriptor.gram_layers:
            f = tf.cast(maps[n], tf.float32)
            hw = tf.cast(tf.shape(f)[1] * tf.shape(f)[2], tf.float32)
            g = tf.einsum("bhwi,bhwj->bij", f, f) / hw
            rows, cols = np.triu_indices(int(f.shape[-1]))
            upper = tf.gather(tf.reshape(g, (tf.shape(g)[0], -1)),
                              rows * int(f.shape[-1]) + cols, axis=1)
            parts.append(tf.sign(upper) * tf.sqrt(tf.abs(upper) + 1e-12))
        return tf.concat(parts, axis=1)

    # The network split at ``layer``: the image -> every described map up to it, then
    # ``layer``'s map -> the deeper described maps, so that the gradient reaches it.
    net = descriptor._model
    known = [n for n in names]
    deeper = [n for n in known if n != layer
              and _depends_on(net, n, layer)]
    front_names = [n for n in known if n not in deeper]
    front = keras.Model(net.inputs[0], [net.get_layer(n).output for n in front_names])
    back = (_subgraph(net, layer, deeper) if deeper else None)

    wanted_all = (None if class_index is None else
                  np.array([column.get(int(c), -1) for c in class_index], np.int64))
    maps_out, proba_out, desc_out = [], [], []
    for start in range(0, len(images), batch_size):
        x = descriptor._preprocess(np.asarray(images[start:start + batch_size], np.float32))
        outs = front(x, training=False)
        outs = dict(zip(front_names, outs if isinstance(outs, (list, tuple)) else [outs]))
        fmap = tf.convert_to_tensor(outs[layer])
        with tf.GradientTape() as tape:
            tape.watch(fmap)
            maps = dict(outs)
            maps[layer] = fmap
            if back is not None:
                extra = back(fmap, training=False)
                maps.update(zip(deeper, extra if isinstance(extra, (list, tuple)) else [extra]))
            d = stats(maps)
            s = scores_of(d)
            if wanted_all is None:
                target = tf.argmax(s, axis=1)
            else:
                w = wanted_all[start:start + batch_size]
                target = tf.where(w < 0, tf.argmax(s, axis=1), w)
            score = tf.gather(s, target, axis=1, batch_dims=1)
        grads = tape.gradient(score, fmap)
        cam = tf.nn.relu(tf.reduce_sum(grads * fmap, axis=-1)).numpy()
        peak = cam.max(axis=(1, 2), keepdims=True)
        maps_out.append(np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0))
        d = d.numpy()
        p = head.predict_proba(d)
        full = np.zeros((len(d), n_classes), np.float32)
        full[:, head_classes] = p
        proba_out.append(full)
        desc_out.append(d)
    return (np.concatenate(maps_out).astype(np.float32), np.concatenate(proba_out),
            np.concatenate(desc_out).astype(np.float32))


def _depends_on(model: Any, name: str, on: str) -> bool:
    """Whether layer ``name``'s output of ``model`` is computed from layer ``on``'s."""
    seen, todo = set(), [model.get_layer(name)]
    while todo:
        layer = todo.pop()
        if layer.name == on:
            return True
        if layer.name in seen:
            continue
        seen.add(layer.name)
        for node in layer._inbound_nodes:
            for t in node.input_tensors:
                producer = _producer(t)
                if producer is not None:
                    todo.append(producer)
    return False


def _subgraph(model: Any, start: str, outputs: list[str]) -> Any:
    """``model``'s layers after ``start`` as a model from ``start``'s output to the
    outputs of ``outputs`` (a functional graph, re-applied layer by layer)."""
    first = model.get_layer(start)
    x0 = keras.Input(tuple(first.output.shape[1:]), name=f"{start}_in")
    tensors = {id(first.output): x0}

    def value(t):
        key = id(t)
        if key not in tensors:
            producer = _producer(t)
            node = producer._inbound_nodes[0]
            args = [value(i) for i in node.input_tensors]
            tensors[key] = producer(args[0] if len(args) == 1 else args)
        return tensors[key]

    outs = [value(model.get_layer(n).output) for n in outputs]
    return keras.Model(x0, outs, name=f"{model.name}_after_{start}")
