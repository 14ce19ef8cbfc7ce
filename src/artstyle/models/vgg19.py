"""VGG19 (Simonyan & Zisserman, ICLR 2015) and its ImageNet preprocessing, in one place.

Everything in the project that builds the no-top VGG19, loads its ImageNet weights or
prepares pixels for it comes from here: the transfer model of the zoo
(:mod:`artstyle.models.zoo`), the ``pretrained`` stage
(:mod:`artstyle.models.pretrained`) and the style-transfer feature extractor
(:mod:`artstyle.nst.extractor`).

Preprocessing is Keras' ``keras.applications.vgg19.preprocess_input`` ("caffe" mode):
RGB in [0, 255] -> BGR, minus the ImageNet channel means :data:`IMAGENET_MEAN_BGR`.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np

from artstyle.imagenet import IMAGENET_MEAN_BGR

logger = logging.getLogger(__name__)


#: The 16 convolutional layers of VGG19 (configuration E), in Keras' names.
VGG19_CONV_LAYERS: tuple[str, ...] = (
    "block1_conv1", "block1_conv2",
    "block2_conv1", "block2_conv2",
    "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4",
    "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4",
    "block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4",
)


def vgg_preprocess(image: Any) -> Any:
    """VGG (Caffe-style) preprocessing: RGB -> BGR, minus the ImageNet channel means.

    Equal to ``keras.applications.vgg19.preprocess_input`` (mode ``"caffe"``).

    Parameters
    ----------
    image : numpy.ndarray or tf.Tensor, shape (..., 3)
        RGB, ``uint8`` or float in [0, 255].

    Returns
    -------
    float32 array or tensor of the same shape (BGR, zero-centred per channel); a tensor
    when the input is a tensor (usable inside a ``tf.function``).

    Raises
    ------
    ValueError
        The last axis of a NumPy input does not have 3 channels.
    """
    import tensorflow as tf

    if tf.is_tensor(image):
        x = tf.cast(image, tf.float32)
        return tf.reverse(x, axis=[-1]) - tf.constant(IMAGENET_MEAN_BGR, tf.float32)
    x = np.asarray(image, dtype=np.float32)
    if x.shape[-1] != 3:
        raise ValueError(f"expected 3 channels in the last axis; got shape {x.shape}")
    return x[..., ::-1] - np.asarray(IMAGENET_MEAN_BGR, dtype=np.float32)


def vgg_preprocess_layer(inputs, name: str = "vgg19_preprocess"):
    """Apply :func:`vgg_preprocess` inside a Keras model with plain Keras layers.

    A fixed, non-trainable 1x1 ``Conv2D`` whose kernel swaps the R and B channels and
    whose bias is minus :data:`IMAGENET_MEAN_BGR`: with weights of exactly 0 and 1 the
    result equals :func:`vgg_preprocess` bit for bit, and a saved ``.keras`` file needs
    nothing of this project to load (``keras.saving.load_model`` in a plain process).

    Parameters
    ----------
    inputs : KerasTensor, shape (batch, H, W, 3)
        RGB float in [0, 255].
    name : str
        Layer name (the transfer model addresses it as ``vgg19_preprocess``).

    Returns
    -------
    KerasTensor, shape (batch, H, W, 3)
        BGR minus the ImageNet channel means.
    """
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for out_channel, in_channel in enumerate((2, 1, 0)):   # BGR out of RGB
        kernel[0, 0, in_channel, out_channel] = 1.0
    # Zero initialisers, not Keras' default Glorot: a random initialiser without a seed
    # draws one number from Python's ``random`` when it is created, which shifts the
    # default seed of every layer built after it (a different training run).
    layer = keras.layers.Conv2D(3, 1, name=name, trainable=False,
                                kernel_initializer="zeros", bias_initializer="zeros")
    outputs = layer(inputs)
    layer.set_weights([kernel, -np.asarray(IMAGENET_MEAN_BGR, np.float32)])
    return outputs


def build_vgg19_notop(weights: str | os.PathLike | None = None, *,
                      input_shape: tuple[int | None, int | None, int] = (None, None, 3),
                      seed: int = 0):
    """VGG19 without its classifier top, with ImageNet weights from a file or random ones.

    Parameters
    ----------
    weights : path-like or None
        A Keras 3 ``.weights.h5`` (stage ``pretrained``) or a legacy Keras ``.h5``
        weights file (the format is sniffed); every variable must be filled.
        ``None``: deterministic He-normal random kernels from ``seed`` and zero biases
        (tests and offline examples; no download).
    input_shape : tuple (height, width, 3)
        Input shape in pixels, channels last; ``None`` for any size. Inputs must be
        preprocessed with :func:`vgg_preprocess`.
    seed : int
        Seed of the random weights (``weights=None`` only).

    Returns
    -------
    keras.Model
        Named ``vgg19``; its top-level layers are ``input_layer``, ``block<b>_conv<i>``
        and ``block<b>_pool``; output ``block5_pool``, shape (batch, H/32, W/32, 512)
        float32. The input layer is named explicitly: Keras otherwise numbers it per
        process, and that name is written into a ``.weights.h5``.

    Raises
    ------
    FileNotFoundError
        ``weights`` does not exist.
    ValueError
        The file does not match the architecture or leaves variables unset.
    """
    if weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"VGG19 weights file not found: {weights}")
    inp = keras.Input(shape=input_shape, name="input_layer")
    base = keras.applications.VGG19(include_top=False, weights=None, input_tensor=inp)
    # Re-wrap so that the model takes a single tensor (``input_tensor`` makes Keras
    # record a one-element input list, and calls then warn).
    model = keras.Model(inp, base.output, name="vgg19")
    if weights is None:
        rng = np.random.default_rng(seed)
        for layer in model.layers:
            if layer.name in VGG19_CONV_LAYERS:
                kernel, bias = layer.get_weights()
                fan_in = int(np.prod(kernel.shape[:-1]))
                layer.set_weights([
                    rng.normal(0.0, math.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32),
                    np.zeros_like(bias)])
    else:
        load_weights_checked(model, Path(weights))
    return model


def _is_legacy_h5(path: Path) -> bool:
    """True for Keras 2 / legacy HDF5 weights, False for Keras 3 ``.weights.h5``."""
    import h5py

    with h5py.File(path, "r") as f:
        return "layer_names" in f.attrs or "model_weights" in f


def load_weights_checked(model, path: Path) -> None:
    """Load ``path`` into ``model`` and insist every variable was filled.

    All variables are first set to NaN; any variable still NaN afterwards was not in
    the file (Keras 3 only warns about such gaps). The file format is sniffed, and the
    name given to Keras carries the suffix it dispatches on.

    Raises
    ------
    ValueError
        The file is not HDF5, does not match the architecture, leaves variables unset
        or holds non-finite values.
    """
    path = Path(path)
    try:
        legacy = _is_legacy_h5(path)
    except OSError as e:
        raise ValueError(f"{path} is not a readable HDF5 weights file: {e}") from e
    for v in model.weights:
        v.assign(np.full(v.shape, np.nan, dtype=v.dtype))
    suffix = ".h5" if legacy else ".weights.h5"
    with tempfile.TemporaryDirectory(prefix="artstyle-weights-") as td:
        alias = Path(td) / f"weights{suffix}"
        try:
            alias.symlink_to(path.resolve())
        except OSError:  # no symlinks (e.g. some Windows setups): copy instead
            shutil.copyfile(path, alias)
        try:
            model.load_weights(alias)
        except Exception as e:  # Keras raises ValueError/KeyError/OSError variously
            raise ValueError(f"{path} does not load into {model.name}: "
                             f"{type(e).__name__}: {e}") from e
    unset = [v.path for v in model.weights if not np.all(np.isfinite(v.numpy()))]
    if unset:
        raise ValueError(f"{path} left {len(unset)} variable(s) unset or non-finite, "
                         f"e.g. {unset[:3]}")
