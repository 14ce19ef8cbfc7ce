"""Penultimate-layer CNN embeddings ("deep features") for downstream classifiers.

The ``features`` stage runs each trained CNN (e.g. ``best_cnn``, ``vgg19_transfer``)
up to its penultimate layer — the input of the final classification ``Dense``
layer — over the train/validation/test splits and stores the embeddings with their
labels and file ids in one feature file per source model
(:func:`artstyle.features.save_features`). The ``boost`` stage
(:mod:`artstyle.boosting`) fits XGBoost on them.

Using a trained CNN as a fixed feature extractor follows Razavian et al. (2014),
"CNN Features off-the-shelf: an Astounding Baseline for Recognition", CVPR
Workshops, and Yosinski et al. (2014), "How transferable are features in deep
neural networks?", NeurIPS.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

#: Weight-free layers allowed between the penultimate tensor and the model output
#: (after the final ``Dense``), e.g. ``Dense(k)`` followed by ``Activation("softmax")``.
PASS_THROUGH_LAYERS: tuple[type, ...] = (
    keras.layers.Activation,
    keras.layers.Softmax,
    keras.layers.Dropout,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.ActivityRegularization,
    keras.layers.Identity,
)



# --------------------------------------------------------------------------- model


def _model_inputs(model: keras.Model) -> list[Any]:
    try:
        inputs = list(model.inputs)
    except (AttributeError, ValueError) as exc:
        raise ValueError(
            f"model {model.name!r} has no defined inputs yet; build it with an "
            "Input layer (or call it once) before taking embeddings"
        ) from exc
    if not inputs:
        raise ValueError(f"model {model.name!r} has no defined inputs yet")
    return inputs


def _producer(tensor: Any) -> Any:
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history[0]


def embedding_model(model: keras.Model, *, layer_name: str | None = None) -> keras.Model:
    """Build a model that outputs a classifier's penultimate-layer embedding.

    The embedding is the input of the final classification ``Dense`` layer: the
    graph is walked back from the model output over weight-free layers listed in
    :data:`PASS_THROUGH_LAYERS` (a separate softmax ``Activation``, ``Dropout``) to
    the first ``Dense`` layer, whose input tensor becomes the new output. The new
    model shares layers and weights with `model` and keeps everything between the
    model input and that tensor, so preprocessing inside the graph (``Rescaling``,
    VGG19's ``preprocess_input``, augmentation layers, which are inactive at
    inference) is applied as in the classifier. Works for ``Sequential`` and
    functional models, including ones with a nested base model such as VGG19.

    Parameters
    ----------
    model : keras.Model
        A built classifier (Sequential or functional) with one output.
    layer_name : str, optional
        Take the output of this layer instead (escape hatch for heads that the walk
        cannot handle, e.g. a nested head model).

    Returns
    -------
    keras.Model
        Maps the same inputs to embeddings of shape (batch, d), d being the input
        width of the final ``Dense`` layer (or the chosen layer's output shape).

    Raises
    ------
    ValueError
        If the model is not built, has several outputs, or the walk from the output
        meets a layer that is neither a pass-through layer nor ``Dense``.
    """
    inputs = _model_inputs(model)
    outputs = list(model.outputs)
    if len(outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(outputs)} outputs; expected one")
    if layer_name is not None:
        target = model.get_layer(layer_name).output
        source = f"layer {layer_name!r}"
    else:
        layer = _producer(outputs[0])
        if layer is None:
            layer = model.layers[-1]
        skipped = []
        while isinstance(layer, PASS_THROUGH_LAYERS):
            skipped.append(layer.name)
            layer = _producer(layer.input)
        if not isinstance(layer, keras.layers.Dense):
            kind = type(layer).__name__ if layer is not None else "nothing"
            raise ValueError(
                f"cannot find the final classification Dense layer of {model.name!r}: "
                f"walking back from the output (past {skipped or 'no pass-through layers'}) "
                f"reached {kind}; pass layer_name= to choose the embedding layer"
            )
        target = layer.input
        source = f"input of Dense layer {layer.name!r} ({layer.units} units)"
    emb = keras.Model(inputs[0] if len(inputs) == 1 else inputs, target,
                      name=f"{model.name}_embedding")
    logger.info("Embedding model for %r: %s, output shape %s", model.name, source,
                tuple(emb.outputs[0].shape))
    return emb


def _extras_to_numpy(parts: list[list[np.ndarray]]) -> tuple[np.ndarray, ...]:
    out = []
    for chunks in parts:
        arr = np.concatenate(chunks) if chunks else np.zeros(0)
        if arr.dtype.kind in "SO":  # tf.string arrives as bytes
            arr = np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v)
                            for v in arr.tolist()])
        out.append(arr)
    return tuple(out)


def extract_embeddings(
    model: keras.Model,
    images: tf.data.Dataset | np.ndarray,
    batch_size: int = 64,
    progress: bool = True,
    *,
    penultimate: bool = True,
    return_extras: bool = False,
    desc: str = "embeddings",
) -> np.ndarray | tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Run images through a model, batch by batch, and collect the embeddings.

    Parameters
    ----------
    model : keras.Model
        The trained classifier when `penultimate` is True (its embedding model is
        built with :func:`embedding_model`); otherwise a model whose output already
        is the embedding.
    images : tf.data.Dataset or ndarray
        ndarray of shape (n, H, W, C) (any dtype the model accepts; preprocessing
        is the model's), or a dataset of images or of tuples whose first element is
        the image (e.g. ``(image, label)`` or ``(image, label, file_id)``). A
        dataset whose image rank equals the model's input rank is taken as already
        batched; one rank lower is batched here with `batch_size`.
    batch_size : int, default 64
        Images per forward pass (ndarray or unbatched dataset).
    progress : bool, default True
        Show a tqdm bar (one step per batch).
    penultimate : bool, default True
        See `model`.
    return_extras : bool, default False
        Also return the dataset's other tuple elements (labels, file ids),
        concatenated in the same order; ``tf.string`` values become ``str``.
    desc : str
        Label of the progress bar.

    Returns
    -------
    X : ndarray of float32, shape (n, d)
    extras : tuple of ndarray, only when `return_extras`
        One array per extra tuple element (empty tuple for ndarray input).

    Raises
    ------
    ValueError
        If `batch_size` < 1, the image rank does not fit the model, a dataset
        yields dicts, or the model output is not 2-D.
    TypeError
        If `images` is neither an ndarray nor a ``tf.data.Dataset``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    emb = embedding_model(model) if penultimate else model
    in_rank = len(_model_inputs(emb)[0].shape)
    d = emb.outputs[0].shape[-1]

    n_extras = 0
    if isinstance(images, np.ndarray):
        if images.ndim != in_rank:
            raise ValueError(f"images must have shape (n, ...) of rank {in_rank}, "
                             f"got shape {images.shape}")
        total = math.ceil(len(images) / batch_size)
        batches = (images[i:i + batch_size] for i in range(0, len(images), batch_size))
    elif isinstance(images, tf.data.Dataset):
        spec = images.element_spec
        if isinstance(spec, Mapping):
            raise ValueError("datasets of dicts are not supported; map them to "
                             "(image, label, ...) tuples")
        is_tuple = isinstance(spec, (tuple, list))
        x_spec = spec[0] if is_tuple else spec
        n_extras = len(spec) - 1 if is_tuple else 0
        rank = len(x_spec.shape)
        ds = images
        if rank == in_rank - 1:
            ds = ds.batch(batch_size)
        elif rank != in_rank:
            raise ValueError(f"dataset images have rank {rank}; the model takes rank "
                             f"{in_rank} batches (or rank {in_rank - 1} single images)")
        card = int(ds.cardinality())
        total = card if card >= 0 else None
        batches = ds.as_numpy_iterator()
    else:
        raise TypeError(f"images must be a numpy array or tf.data.Dataset, got {type(images)}")

    chunks: list[np.ndarray] = []
    extras: list[list[np.ndarray]] = [[] for _ in range(n_extras)]
    for batch in tqdm(batches, total=total, desc=desc, unit="batch", disable=not progress):
        if n_extras:
            x, rest = batch[0], batch[1:]
            for store, value in zip(extras, rest):
                store.append(np.asarray(value))
        else:
            x = batch[0] if isinstance(batch, tuple) else batch
        out = np.asarray(emb.predict_on_batch(x))
        if out.ndim != 2:
            raise ValueError(f"embedding output must be 2-D (batch, d), got shape {out.shape}")
        chunks.append(out.astype(np.float32, copy=False))
    X = np.concatenate(chunks) if chunks else np.zeros((0, d or 0), dtype=np.float32)
    logger.info("Extracted %d embeddings of dimension %d", X.shape[0], X.shape[1])
    if return_extras:
        return X, _extras_to_numpy(extras)
    return X
