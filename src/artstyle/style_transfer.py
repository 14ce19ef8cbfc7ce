"""Gatys neural style transfer with a VGG19 or an own art-movement CNN as feature extractor.

Method: L. A. Gatys, A. S. Ecker, M. Bethge, "A Neural Algorithm of Artistic Style",
arXiv:1508.06576 (2015); optimisation-based: the pixels of one image are optimised so
that its CNN feature maps match the *content* image at the content layer(s) and its
Gram matrices (feature correlations) match the *style* image at the style layers.

Loss definition (shared by every optimiser; the same as the TensorFlow core tutorial
"Neural style transfer", https://www.tensorflow.org/tutorials/generative/style_transfer)::

    L(x) = content_weight / |C| * sum_{l in C} mean((F_l(x) - F_l(p))**2)
         + style_weight   / |S| * sum_{l in S} mean((G_l(x) - G_l(a))**2)
         + tv_weight * TV(x)

* ``x`` is the image in RGB **[0, 1] units**; the extractor sees ``255 * x`` (so the
  VGG19 input is ``vgg_preprocess(255 * x)``, exactly as in the tutorial).
* ``F_l`` is the feature map of layer ``l`` (shape ``(1, H_l, W_l, C_l)``), ``mean`` is
  over all its elements.
* ``G_l = F_l^T F_l / (H_l * W_l)``: the Gram matrix is normalised **once**, by the
  number of spatial positions ``H_l * W_l`` (:func:`gram_matrix`); ``mean`` over the
  ``C_l x C_l`` entries then divides once more by ``C_l**2`` as an averaging, not as
  part of the Gram definition. With this normalisation ``style_weight`` is independent
  of the image size; the tutorial's ``style_weight=1e-2`` with ``content_weight=1e4``
  applies. Our default ``style_weight`` is 1.0 (100x the tutorial's): at 256-512 px and
  150 L-BFGS evaluations the tutorial's weight keeps only a faint trace of the style's
  palette, 1.0 shows the painting's swirls and palette clearly on the photo's
  structure. (Gatys et al., eq. 4: ``E_l = sum((G'_l - A'_l)**2) / (4 N_l**2 M_l**2)``
  with un-normalised Grams ``G' = M_l * G``, which equals ``mean((G_l - A_l)**2) / 4``
  here; their style weights are 4x ours.)
* ``TV`` is the anisotropic total variation, the sum of absolute differences of
  vertically and horizontally neighbouring pixels (``tf.image.total_variation``), of
  the image in [0, 1] units. It grows with the number of pixels, so ``tv_weight`` is
  resolution dependent (the tutorial's 30 was chosen for 512 px).

The loss terms recorded in :class:`StylizeResult.history` are the **weighted** terms,
so ``content + style + tv == total``.

Optimisers: ``"lbfgs"`` (default) runs ``scipy.optimize.minimize(method="L-BFGS-B")``,
loss and gradient from a ``tf.function`` (float32 inside, float64 at the scipy
boundary). By default it optimises the change to the start image as 2-D Fourier
coefficients with per-frequency gains ``(f / f_max) ** -0.25`` (:func:`fourier_scale`,
:func:`fourier_image`; the image is clipped to [0, 1] in the graph), a preconditioner
that lets low frequencies move sooner; ``fourier_exponent=0`` optimises the flattened
[0, 1] pixels with box bounds [0, 1] instead. ``"adam"`` is the
tutorial's recipe (``keras.optimizers.Adam(learning_rate, beta_1=0.99, epsilon=0.1)``,
clipping to [0, 1] after each step). One *iteration* is one loss-and-gradient
evaluation (one forward and backward pass) for both, so iteration counts compare cost.

Start image (``init``): by default the content photo re-coloured to the style painting's
colour mean and covariance (:func:`match_colour`; ``"colour_matched"``), so the
optimiser starts with the palette in place; ``"content"`` (the tutorial's start) and
``"noise"`` are the alternatives. On the tutorial's own loss (china.jpg / *The Starry
Night*, 256 px, VGG19, ``benchmarks/style_transfer.py``, 2 CPU cores) the Adam recipe
with TensorFlow's automatic gradients needs 500 steps (479 s) for a loss of 1.082e7;
L-BFGS over the Fourier coefficients from the colour-matched start reaches it after 114
evaluations, in 94.6 s (5.1x sooner): 4.4x from fewer evaluations, 1.15x from cheaper
ones (the hand-written gradients of :class:`PlainConvChain` and :func:`gram_matrix`;
0.83 s per evaluation against 0.96). Over the pixels it needs 131 evaluations, from the
content photo 178. A
coarse-to-fine ``schedule`` did not pay off there (VGG
Gram statistics are scale dependent, so an upsampled coarse result starts the
full-resolution stage with a high style loss), so the default is a single stage.

Sizes: the content image is reduced uniformly so that its longest side is at most
``max_side`` (never enlarged); the output keeps its aspect ratio and has this working
size. The style image is scaled uniformly so that its *area* equals the working
content area times ``style_scale**2`` (never stretched to the content's shape). An
image whose shorter side is below the extractor's :attr:`FeatureExtractor.min_side`
(VGG19 up to ``block5_conv2``: 4 max-pools, so 2**4 = 16 px) is upscaled uniformly to
that minimum with a logged warning.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: ImageNet channel means in BGR order, as subtracted by ``keras.applications.vgg19.preprocess_input``.
IMAGENET_MEAN_BGR: tuple[float, float, float] = (103.939, 116.779, 123.68)
#: Style layers of the keras.io / TensorFlow tutorial examples.
VGG19_STYLE_LAYERS: tuple[str, ...] = (
    "block1_conv1", "block2_conv1", "block3_conv1", "block4_conv1", "block5_conv1",
)
#: Content layer of the keras.io / TensorFlow tutorial examples.
VGG19_CONTENT_LAYERS: tuple[str, ...] = ("block5_conv2",)

#: Loss weights (Grams normalised by H*W); content and TV as the TensorFlow core tutorial.
DEFAULT_CONTENT_WEIGHT = 1e4
DEFAULT_STYLE_WEIGHT = 1.0  # tutorial: 1e-2 (see the module docstring)
DEFAULT_TV_WEIGHT = 30.0
#: Default optimiser settings (chosen with ``benchmarks/style_transfer.py``).
DEFAULT_OPTIMIZER = "lbfgs"
DEFAULT_ITERATIONS = 150
DEFAULT_MAX_SIDE = 512
DEFAULT_SCHEDULE: tuple[float, ...] | None = None
#: Start image: the content image with the style image's colour mean and covariance
#: (:func:`match_colour`); ``"content"`` (the tutorial's) and ``"noise"`` also exist.
DEFAULT_INIT = "colour_matched"
INITS: tuple[str, ...] = ("colour_matched", "content", "noise")
#: Adam settings of the tutorial recipe (learning rate in [0, 1] image units).
DEFAULT_ADAM_LEARNING_RATE = 0.02
ADAM_BETA_1 = 0.99
ADAM_EPSILON = 0.1

_CONV_CLASS_NAMES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")


class StyleTransferDiverged(RuntimeError):
    """The style-transfer loss became NaN/Inf (or the result is degenerate) and no usable image exists."""


class _StopOptimisation(Exception):
    """Internal: ends an optimiser run (budget spent, callback asked, or divergence)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- images


def as_rgb_uint8(image: Any, *, what: str = "image") -> np.ndarray:
    """Validate an image and return it as a C-contiguous ``uint8`` RGB array.

    Parameters
    ----------
    image : array-like, shape (H, W, 3), (H, W, 4) or (H, W)
        ``uint8``, or float/int values in [0, 255] (rounded and clipped). An alpha
        channel is dropped; a grey image is repeated to three channels.
    what : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray, shape (H, W, 3), dtype uint8

    Raises
    ------
    ValueError
        Wrong rank/channel count, an empty image, or non-finite values.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"{what} must have shape (H, W, 3); got {arr.shape}")
    arr = arr[..., :3]
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{what} is empty: shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} contains NaN or Inf values")
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as RGB ``uint8`` (H, W, 3) through the project's safe loader
    (:func:`artstyle.images.load_rgb_array`: EXIF orientation, alpha on white, greyscale,
    CMYK and 16-bit to 8-bit RGB; raises :class:`artstyle.images.ImageRejected`)."""
    from artstyle.images import load_rgb_array

    return load_rgb_array(path)


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an RGB ``uint8`` image to ``(height, width)`` with Pillow (Lanczos, antialiased).

    Returns the input unchanged when it already has that size.
    """
    image = as_rgb_uint8(image)
    if image.shape[:2] == (height, width):
        return image
    from PIL import Image

    resized = Image.fromarray(image).resize((int(width), int(height)), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8).copy()


def scaled_shape(shape: Sequence[int], factor: float) -> tuple[int, int]:
    """``(H, W)`` multiplied uniformly by ``factor``, rounded, at least 1 px each."""
    h, w = int(shape[0]), int(shape[1])
    return max(1, round(h * factor)), max(1, round(w * factor))


def fit_max_side(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Reduce an image uniformly so that its longest side is at most ``max_side`` px.

    Never enlarges; ``max_side=None`` returns the image unchanged. Aspect ratio is kept
    (up to rounding to whole pixels).
    """
    image = as_rgb_uint8(image)
    if max_side is None:
        return image
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1; got {max_side}")
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    return resize_image(image, *scaled_shape((h, w), max_side / max(h, w)))


def ensure_min_side(image: np.ndarray, min_side: int, *, what: str = "image",
                    log_level: int = logging.WARNING) -> np.ndarray:
    """Upscale an image uniformly so that its shorter side is at least ``min_side`` px.

    A message (by default a warning) is logged when the image is upscaled (the deepest
    chosen layer would otherwise have an empty feature map). Both sides are at least
    ``min_side`` afterwards; the aspect ratio is kept up to rounding.
    """
    image = as_rgb_uint8(image, what=what)
    h, w = image.shape[:2]
    if min(h, w) >= min_side:
        return image
    new_h, new_w = scaled_shape((h, w), min_side / min(h, w))
    new_h, new_w = max(new_h, min_side), max(new_w, min_side)
    logger.log(
        log_level, "%s of %dx%d px is smaller than the extractor's minimum side of %d px; upscaled to %dx%d",
        what, h, w, min_side, new_h, new_w,
    )
    return resize_image(image, new_h, new_w)


def style_shape_for(style_shape: Sequence[int], content_shape: Sequence[int],
                    style_scale: float = 1.0) -> tuple[int, int]:
    """Uniform target size of the style image: area = content area * ``style_scale**2``.

    Parameters
    ----------
    style_shape, content_shape : (H, W)
    style_scale : float
        > 1 makes the style's brush strokes and patterns larger relative to the content.

    Returns
    -------
    (H, W) of the style image, same aspect ratio as ``style_shape``.
    """
    if style_scale <= 0:
        raise ValueError(f"style_scale must be > 0; got {style_scale}")
    factor = style_scale * math.sqrt(
        (content_shape[0] * content_shape[1]) / (style_shape[0] * style_shape[1])
    )
    return scaled_shape(style_shape, factor)


def prepare_images(content: np.ndarray, style: np.ndarray, *, max_side: int | None = DEFAULT_MAX_SIDE,
                   min_side: int = 1, style_scale: float = 1.0,
                   scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Working-size content and style images for one optimisation stage.

    Parameters
    ----------
    content, style : numpy.ndarray, (H, W, 3) uint8
    max_side : int or None
        Longest side of the working content image (never enlarged).
    min_side : int
        Minimum shorter side for both images (see :attr:`FeatureExtractor.min_side`).
    style_scale : float
        Style area = content area * ``style_scale**2``.
    scale : float
        Stage scale (coarse-to-fine schedules), relative to the working size.

    Returns
    -------
    (content, style) : uint8 arrays, resized from the originals in one resampling each.
    """
    content = as_rgb_uint8(content, what="content image")
    style = as_rgb_uint8(style, what="style image")
    h, w = content.shape[:2]
    base = 1.0 if max_side is None or max(h, w) <= max_side else max_side / max(h, w)
    c_shape = scaled_shape((h, w), base * scale)
    # Coarse stages (scale < 1) are expected to be small: clamping them is routine.
    level = logging.WARNING if scale >= 1.0 else logging.INFO
    content_w = ensure_min_side(resize_image(content, *c_shape), min_side, what="content image",
                                log_level=level)
    s_shape = style_shape_for(style.shape[:2], content_w.shape[:2], style_scale)
    style_w = ensure_min_side(resize_image(style, *s_shape), min_side, what="style image",
                              log_level=level)
    return content_w, style_w


def match_colour(image: np.ndarray, reference: np.ndarray, *, eps: float = 1e-5) -> np.ndarray:
    """Linear colour transfer: ``image`` re-coloured to the RGB mean and covariance of ``reference``.

    Every pixel ``x`` (RGB in [0, 1]) becomes ``A (x - mu_i) + mu_r`` with
    ``A = S_r^(1/2) S_i^(-1/2)`` (symmetric matrix square roots of the 3x3 colour
    covariances ``S``, eigenvalues floored at ``eps``), then clipped to [0, 1]. Before
    clipping, the result has exactly the reference's colour mean and covariance; the
    image's spatial structure (edges, shading) is untouched.

    This is the colour-histogram-matching transform of Gatys et al., "Controlling
    Perceptual Factors in Neural Style Transfer" (CVPR 2017, sec. 5.1, after Hertzmann
    et al., "Image Analogies", 2001). They apply it to the style image to keep the
    photo's colours; :func:`stylize` applies it the other way round to build its default
    start image (``init="colour_matched"``): the optimiser then starts with the
    painting's palette already in place, which on ``benchmarks/style_transfer.py`` cut
    the L-BFGS evaluations to the recipe's loss by about a quarter.

    Parameters
    ----------
    image, reference : numpy.ndarray, (H, W, 3) and (h, w, 3) uint8 RGB (any sizes)
    eps : float
        Floor of both covariances' eigenvalues (colour units of [0, 1]); keeps flat or
        greyscale images finite (a constant image becomes the reference's mean colour).

    Returns
    -------
    numpy.ndarray (H, W, 3) float32 in [0, 1].
    """
    src = as_rgb_uint8(image, what="image").reshape(-1, 3).astype(np.float64) / 255.0
    ref = as_rgb_uint8(reference, what="reference image").reshape(-1, 3).astype(np.float64) / 255.0

    def sqrtm(cov: np.ndarray, power: float) -> np.ndarray:
        vals, vecs = np.linalg.eigh(cov)
        return (vecs * np.maximum(vals, eps) ** power) @ vecs.T

    mu_src, mu_ref = src.mean(axis=0), ref.mean(axis=0)
    cov_src = np.cov(src, rowvar=False, bias=True)
    cov_ref = np.cov(ref, rowvar=False, bias=True)
    a = sqrtm(cov_ref, 0.5) @ sqrtm(cov_src, -0.5)
    out = (src - mu_src) @ a.T + mu_ref
    return np.clip(out, 0.0, 1.0).reshape(np.shape(image)[:2] + (3,)).astype(np.float32)


# --------------------------------------------------------------------------- preprocessing


def vgg_preprocess(image: Any) -> Any:
    """VGG (Caffe-style) preprocessing: RGB -> BGR, minus the ImageNet channel means.

    Equal to ``keras.applications.vgg19.preprocess_input`` (mode ``"caffe"``).

    Parameters
    ----------
    image : numpy.ndarray or tf.Tensor, shape (..., 3)
        RGB, ``uint8`` or float in [0, 255].

    Returns
    -------
    float32 array/tensor of the same shape (BGR, zero-centred per channel), a tensor
    when the input is a tensor (usable inside a ``tf.function``).
    """
    import tensorflow as tf

    if tf.is_tensor(image):
        x = tf.cast(image, tf.float32)
        return tf.reverse(x, axis=[-1]) - tf.constant(IMAGENET_MEAN_BGR, tf.float32)
    x = np.asarray(image, dtype=np.float32)
    if x.shape[-1] != 3:
        raise ValueError(f"expected 3 channels in the last axis; got shape {x.shape}")
    return x[..., ::-1] - np.asarray(IMAGENET_MEAN_BGR, dtype=np.float32)


def vgg_deprocess(x: Any) -> np.ndarray:
    """Invert :func:`vgg_preprocess`: add the means, BGR -> RGB, round, clip to 0..255.

    Parameters
    ----------
    x : numpy.ndarray or tf.Tensor, shape (..., 3), BGR zero-centred float.

    Returns
    -------
    numpy.ndarray, same shape, dtype uint8 (RGB).
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.shape[-1] != 3:
        raise ValueError(f"expected 3 channels in the last axis; got shape {arr.shape}")
    rgb = (arr + np.asarray(IMAGENET_MEAN_BGR))[..., ::-1]
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- losses


def gram_matrix(features: Any, *, fast_gradient: bool = True) -> Any:
    """Gram matrix of a feature map, normalised ONCE by the number of positions ``H * W``.

    ``G[c, d] = sum_{i, j} F[i, j, c] * F[i, j, d] / (H * W)`` (as the TensorFlow
    tutorial; Gatys et al. 2015 eq. 3 without normalisation).

    Parameters
    ----------
    features : array-like or tf.Tensor, shape (H, W, C) or (B, H, W, C)
    fast_gradient : bool
        ``True``: one matrix product ``F^T F`` with a hand-written gradient,
        ``dL/dF = F (dL/dG + dL/dG^T) / (H * W)``, a single further product. ``False``:
        the tutorial's ``tf.einsum("bijc,bijd->bcd", F, F)`` with TensorFlow's automatic
        gradient (two einsums with transposes; for VGG19 at 256 px about 4x the time
        of the forward Gram on 2 CPU cores). The values are the same either way.

    Returns
    -------
    tf.Tensor float32, shape (C, C) or (B, C, C).

    Raises
    ------
    ValueError
        ``features`` is not of rank 3 or 4.
    """
    import tensorflow as tf

    f = tf.cast(tf.convert_to_tensor(features), tf.float32)
    if f.shape.rank == 3:
        return gram_matrix(f[None], fast_gradient=fast_gradient)[0]
    if f.shape.rank != 4:
        raise ValueError(f"features must have rank 3 or 4; got shape {f.shape}")
    shape = tf.shape(f)
    positions = tf.cast(shape[1] * shape[2], tf.float32)
    if not fast_gradient:
        return tf.einsum("bijc,bijd->bcd", f, f) / positions

    @tf.custom_gradient
    def gram(flat):  # (B, H*W, C) -> (B, C, C)
        def grad(dg):
            return tf.matmul(flat, dg + tf.linalg.matrix_transpose(dg)) / positions

        return tf.matmul(flat, flat, transpose_a=True) / positions, grad

    return gram(tf.reshape(f, (shape[0], -1, shape[3])))


def content_loss(features: Any, target: Any) -> Any:
    """Content loss of one layer: mean squared difference of feature maps (scalar tf.Tensor).

    ``features`` and ``target`` must have the same shape, e.g. (1, H, W, C).
    """
    import tensorflow as tf

    f = tf.cast(features, tf.float32)
    return tf.reduce_mean(tf.square(f - tf.cast(target, tf.float32)))


def style_loss(features: Any, target_gram: Any, *, fast_gradient: bool = True) -> Any:
    """Style loss of one layer: mean squared difference between ``gram_matrix(features)`` and ``target_gram``.

    Parameters
    ----------
    features : (H, W, C) or (B, H, W, C)
    target_gram : (C, C) or (B, C, C), from :func:`gram_matrix` of the style image.
    fast_gradient : bool
        Passed to :func:`gram_matrix`.

    Returns
    -------
    scalar tf.Tensor (float32).
    """
    import tensorflow as tf

    gram = gram_matrix(features, fast_gradient=fast_gradient)
    return tf.reduce_mean(tf.square(gram - tf.cast(target_gram, tf.float32)))


def total_variation_loss(image: Any) -> Any:
    """Anisotropic total variation: sum of absolute differences of neighbouring pixels.

    ``sum |x[i+1, j] - x[i, j]| + sum |x[i, j+1] - x[i, j]|`` over all channels (and
    images of a batch), as ``tf.image.total_variation`` summed over the batch.

    Parameters
    ----------
    image : (H, W, C) or (B, H, W, C), in the units the caller uses (stylize: [0, 1]).

    Returns
    -------
    scalar tf.Tensor (float32).
    """
    import tensorflow as tf

    x = tf.cast(image, tf.float32)
    return tf.reduce_sum(tf.image.total_variation(x))


# --------------------------------------------------------------------------- feature extractor


def _is_conv(layer: Any) -> bool:
    return any(cls.__name__ in _CONV_CLASS_NAMES for cls in type(layer).__mro__)


def _spatial_layers(model: Any) -> list[str]:
    """Names of the (top-level) layers with a rank-4 (B, H, W, C) output."""
    names = []
    for layer in model.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            names.append(layer.name)
    return names


def default_own_cnn_layers(model: Any, *, max_style_layers: int = 5) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Default content/style layers for an own CNN: EARLIER layers for content, DEEPER for style.

    Follows the project study's finding (content is best kept by earlier layers of our
    art-movement CNNs, style is best captured by deeper ones). Heuristic on the
    model's top-level convolution layers in graph order ``c_0 .. c_{n-1}``:

    * content: ``c_{(n-1)//3}`` (end of the first third);
    * style: up to ``max_style_layers`` layers evenly spaced over the deeper half
      ``c_{n//2} .. c_{n-1}`` (always including the last).

    Raises
    ------
    ValueError
        Fewer than two convolution layers.
    """
    convs = [layer.name for layer in model.layers if _is_conv(layer)]
    if len(convs) < 2:
        raise ValueError(
            f"model {model.name!r} has {len(convs)} top-level convolution layers; pass "
            f"content_layers/style_layers explicitly (layers with 4-D outputs: {_spatial_layers(model)})"
        )
    n = len(convs)
    content = (convs[(n - 1) // 3],)
    deep = convs[n // 2:]
    idx = np.unique(np.rint(np.linspace(0, len(deep) - 1, min(max_style_layers, len(deep)))).astype(int))
    style = tuple(deep[i] for i in idx)
    return content, style


class PlainConvChain:
    """A chain of stride-1 'same' convolutions (ReLU or linear) and max-pools, with a
    cheaper gradient with respect to the input.

    The loss-and-gradient pass of style transfer needs the gradient with respect to the
    *image* only. TensorFlow's stock CPU kernel for it (``Conv2DBackpropInput``, Eigen)
    costs about 1.3x the forward convolutions for VGG19 at 256 px on this project's CPU
    (TensorFlow profiler, per pass: 568 ms against 443 ms; the forward convolutions that
    replace it here took 337 ms against 359 ms).
    For a stride-1 convolution with an odd ``kh x kw`` kernel ``K`` and 'same' padding,
    the gradient with respect to its input is itself a stride-1 'same' *forward*
    convolution of the upstream gradient with ``K`` flipped in both spatial axes and its
    input/output channels swapped (the transposed convolution, Dumoulin & Visin, "A
    guide to convolution arithmetic for deep learning", arXiv:1603.07285, section 4).
    Each convolution here is a ``tf.custom_gradient`` that computes exactly that, with
    the ReLU mask folded in; max-pools keep TensorFlow's own gradient. Values are the
    same as the Keras model's, gradients equal within float32 rounding (relative
    difference ~1e-7 on VGG19). On 2 CPU cores a VGG19 style-transfer loss-and-gradient
    pass at 256 px takes ~0.80 s instead of ~0.95 s with this chain, ~0.7 s with
    :func:`gram_matrix`'s gradient as well (medians of calls in a loop; in the L-BFGS
    runs of ``benchmarks/style_transfer.py`` 0.83 s against 1.03 s per evaluation).
    No gradient flows to the weights: they are read once, at construction.

    Use :meth:`from_model`, which returns ``None`` when the model is not such a chain.
    Calling the object with a float32 tensor (B, H, W, C_in) returns the list of the
    requested layers' outputs (B, H_l, W_l, C_l), like the truncated Keras model.
    """

    def __init__(self, steps: Sequence[tuple[str, Callable[[Any], Any]]], outputs: Sequence[str]):
        self.steps = list(steps)
        self.outputs = tuple(outputs)

    @staticmethod
    def _conv_step(layer: Any) -> Callable[[Any], Any] | None:
        import tensorflow as tf

        cfg = layer.get_config()
        kh, kw = (int(k) for k in cfg["kernel_size"])
        activation = cfg.get("activation")
        if (tuple(cfg.get("strides", (1, 1))) != (1, 1) or cfg.get("padding") != "same"
                or tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1) or int(cfg.get("groups", 1)) != 1
                or cfg.get("data_format", "channels_last") != "channels_last"
                or kh % 2 == 0 or kw % 2 == 0 or activation not in ("relu", "linear")):
            return None
        weights = layer.get_weights()
        kernel = np.asarray(weights[0], np.float32)
        bias = tf.constant(np.asarray(weights[1], np.float32)) if len(weights) > 1 else None
        forward_kernel = tf.constant(kernel)
        # (kh, kw, C_in, C_out) -> flipped spatially, channels swapped: (kh, kw, C_out, C_in)
        input_grad_kernel = tf.constant(np.ascontiguousarray(np.transpose(kernel[::-1, ::-1], (0, 1, 3, 2))))
        relu = activation == "relu"

        @tf.custom_gradient
        def conv(x):
            y = tf.nn.conv2d(x, forward_kernel, 1, "SAME")
            if bias is not None:
                y = tf.nn.bias_add(y, bias)
            if relu:
                y = tf.nn.relu(y)

            def grad(dy):
                if relu:
                    dy = tf.raw_ops.ReluGrad(gradients=dy, features=y)
                return tf.nn.conv2d(dy, input_grad_kernel, 1, "SAME")

            return y, grad

        return conv

    @staticmethod
    def _pool_step(layer: Any) -> Callable[[Any], Any] | None:
        import tensorflow as tf

        cfg = layer.get_config()
        if cfg.get("data_format", "channels_last") != "channels_last":
            return None
        pool = tuple(int(v) for v in cfg["pool_size"])
        strides = tuple(int(v) for v in (cfg.get("strides") or pool))
        padding = str(cfg.get("padding", "valid")).upper()
        return lambda x: tf.nn.max_pool2d(x, pool, strides, padding)

    @classmethod
    def from_model(cls, model: Any, outputs: Sequence[str]) -> PlainConvChain | None:
        """The chain equivalent of ``model`` up to the deepest of ``outputs``, or ``None``.

        ``model`` qualifies when its top-level layers are an input layer followed by
        ``Conv2D`` (stride 1, 'same', odd kernel, no dilation or groups, ReLU or linear)
        and ``MaxPooling2D`` layers, each fed by the one before (checked numerically
        against the model on a small random image: any mismatch gives ``None``), as the
        Keras VGG16/VGG19 feature stacks.
        """
        import tensorflow as tf

        missing = set(outputs)
        steps: list[tuple[str, Callable[[Any], Any]]] = []
        for layer in model.layers:
            if not missing:
                break
            kind = type(layer).__name__
            if kind == "InputLayer":
                continue
            step = (cls._conv_step(layer) if kind == "Conv2D"
                    else cls._pool_step(layer) if kind == "MaxPooling2D" else None)
            if step is None:
                logger.debug("%s: layer %r (%s) is not part of a plain conv chain; using Keras gradients",
                             model.name, layer.name, kind)
                return None
            steps.append((layer.name, step))
            missing.discard(layer.name)
        if missing:
            return None
        chain = cls(steps, outputs)
        probe = np.random.default_rng(0).uniform(0.0, 255.0, (1, 37, 45, 3)).astype(np.float32)
        try:
            ours = chain(tf.constant(probe))
            theirs = model(probe, training=False)
            theirs = theirs if isinstance(theirs, (list, tuple)) else [theirs]
            same = len(ours) == len(theirs) and all(
                np.allclose(a.numpy(), np.asarray(b), rtol=1e-4, atol=1e-4 * (1.0 + float(np.abs(b).max())))
                for a, b in zip(ours, theirs))
        except Exception as exc:  # noqa: BLE001 - any failure means "not this chain"
            logger.debug("%s: plain conv chain check failed (%s); using Keras gradients", model.name, exc)
            return None
        return chain if same else None

    def __call__(self, x: Any) -> list[Any]:
        found = {}
        for name, step in self.steps:
            x = step(x)
            found[name] = x
        return [found[name] for name in self.outputs]


class FeatureExtractor:
    """Multi-output feature extractor (content and style layers) over a Keras CNN backbone.

    Call it with a float batch of RGB images in [0, 255], shape (B, H, W, 3); it returns
    ``(content_features, style_features)``, two lists of (B, H_l, W_l, C_l) tensors in
    the order of :attr:`content_layers` / :attr:`style_layers`. Only the part of the
    backbone up to the deepest chosen layer is run; the backbone is frozen (inference
    mode: ``training=False``).

    Parameters
    ----------
    backbone : keras.Model
        Functional or Sequential (built) model with one image input. Layer names refer
        to its top-level layers (for a nested base model pass that model itself).
    content_layers, style_layers : sequence of str
    preprocess : callable or None
        Applied inside the graph to the [0, 255] RGB input before the backbone
        (``vgg_preprocess`` for VGG19; ``None`` for own CNNs, which rescale inside).
    name : str
    min_side : int or None
        Override the smallest usable image side (otherwise measured, see below).
    fast_gradient : bool
        ``True`` (default): the library's hand-written gradients. The backbone runs as
        a :class:`PlainConvChain` when it is one (VGG19 is; the project's own CNNs, with
        batch normalisation and dense heads, are not), and :class:`StyleTransferLoss`
        over this extractor computes Gram matrices with :func:`gram_matrix`'s own
        gradient. ``False``: the Keras model and TensorFlow's automatic gradients
        throughout, as the TensorFlow tutorial (the reference of
        ``benchmarks/style_transfer.py``). Loss values are the same either way and the
        image gradients agree within float32 rounding; a VGG19 loss-and-gradient pass at
        256 px takes about 0.7 s instead of 0.95 s on 2 CPU cores.

    Notes
    -----
    Input size: if the backbone has a fixed spatial input size (e.g. an own CNN trained
    at 224x224), the truncated graph is rebuilt with ``(None, None, 3)`` input and the
    same layers and weights (``keras.models.clone_model`` with shared layers); this
    works for purely convolutional parts. If the rebuild fails (e.g. a ``Reshape`` or
    ``Dense`` before the chosen layers), images are instead resized (bilinear,
    differentiable) to the fixed size inside the graph, so the optimised image keeps
    its own size and aspect ratio; :attr:`input_size` is then set.

    :attr:`min_side` is the smallest image side for which every chosen layer still has
    a non-empty feature map, measured by running the truncated model on zero images
    (VGG19 up to ``block5_conv2``: 16 px; 1 in resize mode).
    """

    def __init__(self, backbone: Any, content_layers: Sequence[str], style_layers: Sequence[str], *,
                 preprocess: Callable[[Any], Any] | None = None, name: str | None = None,
                 min_side: int | None = None, fast_gradient: bool = True):
        import keras

        if len(backbone.inputs) != 1:
            raise ValueError(f"backbone must have exactly one image input; has {len(backbone.inputs)}")
        self.content_layers = tuple(content_layers)
        self.style_layers = tuple(style_layers)
        if not self.content_layers or not self.style_layers:
            raise ValueError("need at least one content layer and one style layer")
        self.name = name or backbone.name
        self.preprocess = preprocess
        self.layer_names = tuple(dict.fromkeys(self.content_layers + self.style_layers))
        available = _spatial_layers(backbone)
        missing = [n for n in self.layer_names if n not in available]
        if missing:
            raise ValueError(
                f"layers {missing} are not top-level layers with 4-D (B, H, W, C) outputs of "
                f"{backbone.name!r}; available: {available}"
            )
        outputs = [backbone.get_layer(n).output for n in self.layer_names]
        model = keras.Model(backbone.inputs[0], outputs, name=f"{self.name}_features")
        model.trainable = False
        in_shape = tuple(backbone.inputs[0].shape)
        if len(in_shape) != 4 or in_shape[-1] != 3:
            raise ValueError(f"backbone input must be (B, H, W, 3); got {in_shape}")
        self.input_size: tuple[int, int] | None = None
        if in_shape[1] is not None or in_shape[2] is not None:
            try:
                new_input = keras.Input((None, None, 3), name=f"{self.name}_image")
                structure = [new_input] if isinstance(model.input, (list, tuple)) else new_input
                flex = keras.models.clone_model(model, input_tensors=structure,
                                                clone_function=lambda layer: layer)
                flex = keras.Model(flex.inputs[0], flex.outputs, name=f"{self.name}_features")
                # Symbolic shapes may pass where runtime fails (e.g. a Reshape): run it once
                # at a size other than the native one.
                probe_h, probe_w = (int(in_shape[1] or 32) + 32, int(in_shape[2] or 32) + 48)
                flex(np.zeros((1, probe_h, probe_w, 3), np.float32), training=False)
                model = flex
                model.trainable = False
                logger.info("rebuilt %r with flexible (None, None, 3) input", self.name)
            except Exception as exc:  # noqa: BLE001 - any Keras failure means "cannot rebuild"
                self.input_size = (int(in_shape[1]), int(in_shape[2]))
                logger.warning(
                    "cannot rebuild %r with a flexible input size (%s: %s); images will be resized "
                    "to the fixed %dx%d inside the graph", self.name, type(exc).__name__, exc,
                    *self.input_size,
                )
        self.model = model
        #: Whether losses over these features use the library's hand-written gradients.
        self.fast_gradient = bool(fast_gradient)
        #: The :class:`PlainConvChain` used instead of ``model`` (cheaper image gradient), or None.
        self.chain = (PlainConvChain.from_model(model, self.layer_names)
                      if fast_gradient and self.input_size is None else None)
        self.min_side = int(min_side) if min_side is not None else self._measure_min_side()

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def vgg19(cls, weights: str | os.PathLike | None = None, *,
              content_layers: Sequence[str] = VGG19_CONTENT_LAYERS,
              style_layers: Sequence[str] = VGG19_STYLE_LAYERS, seed: int = 0,
              fast_gradient: bool = True) -> FeatureExtractor:
        """VGG19 (no top, flexible input size) extractor with VGG preprocessing.

        Parameters
        ----------
        weights : path, ``"imagenet"`` or None
            A Keras ``.weights.h5`` of ``keras.applications.VGG19(include_top=False)``
            (e.g. from ``artstyle.models.pretrained.resolve_vgg19_weights``);
            ``"imagenet"`` lets Keras download them; ``None`` gives deterministic random
            He-normal weights from ``seed`` (for tests; no download).
        content_layers, style_layers : layer names (defaults as the keras.io example).
        seed : int
            Seed of the random weights (``weights=None`` only).
        fast_gradient : bool
            See the class parameters (:class:`PlainConvChain`).

        Raises
        ------
        FileNotFoundError
            ``weights`` path does not exist.
        """
        import keras

        if weights is not None and str(weights) != "imagenet" and not Path(weights).is_file():
            raise FileNotFoundError(f"VGG19 weights file not found: {weights}")
        backbone = keras.applications.VGG19(
            include_top=False, weights="imagenet" if str(weights) == "imagenet" else None,
            input_shape=(None, None, 3),
        )
        if weights is None:
            rng = np.random.default_rng(seed)
            for layer in backbone.layers:
                if _is_conv(layer):
                    kernel, bias = layer.get_weights()
                    fan_in = int(np.prod(kernel.shape[:-1]))
                    layer.set_weights([
                        rng.normal(0.0, math.sqrt(2.0 / fan_in), kernel.shape).astype(np.float32),
                        np.zeros_like(bias),
                    ])
        elif str(weights) != "imagenet":
            backbone.load_weights(str(weights))
        return cls(backbone, content_layers, style_layers, preprocess=vgg_preprocess, name="vgg19",
                   fast_gradient=fast_gradient)

    @classmethod
    def from_model(cls, model: Any, *, content_layers: Sequence[str] | None = None,
                   style_layers: Sequence[str] | None = None, name: str | None = None,
                   fast_gradient: bool = True) -> FeatureExtractor:
        """Extractor over an own CNN (a ``keras.Model`` or a path to a ``.keras`` file).

        The model must take float RGB images in [0, 255] and do its own rescaling in the
        graph (as the project's zoo models), so no preprocessing is added. Missing layer
        lists default to :func:`default_own_cnn_layers` (earlier layers for content,
        deeper layers for style). ``fast_gradient``: see the class parameters.
        """
        import keras

        if not isinstance(model, keras.Model):
            path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"model file not found: {path}")
            model = keras.models.load_model(path, compile=False)
        if content_layers is None or style_layers is None:
            d_content, d_style = default_own_cnn_layers(model)
            content_layers = d_content if content_layers is None else content_layers
            style_layers = d_style if style_layers is None else style_layers
            logger.info("own CNN %r: content layers %s, style layers %s", model.name,
                        list(content_layers), list(style_layers))
        return cls(model, content_layers, style_layers, preprocess=None, name=name or model.name,
                   fast_gradient=fast_gradient)

    # -- calling ----------------------------------------------------------------------------
    def __call__(self, images: Any) -> tuple[list[Any], list[Any]]:
        """Features of a float batch (B, H, W, 3) of RGB images in [0, 255].

        Returns
        -------
        (content_features, style_features) : lists of tf.Tensor (B, H_l, W_l, C_l).
        """
        import tensorflow as tf

        x = tf.cast(images, tf.float32)
        if self.input_size is not None:
            x = tf.image.resize(x, self.input_size, method="bilinear", antialias=True)
        if self.preprocess is not None:
            x = self.preprocess(x)
        outs = self.chain(x) if self.chain is not None else self.model(x, training=False)
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        by_name = dict(zip(self.layer_names, outs, strict=True))
        return [by_name[n] for n in self.content_layers], [by_name[n] for n in self.style_layers]

    def _measure_min_side(self, limit: int = 1024) -> int:
        if self.input_size is not None:
            return 1

        def ok(side: int) -> bool:
            try:
                content, style = self(np.zeros((1, side, side, 3), np.float32))
            except Exception:  # noqa: BLE001 - too small for a 'valid' layer
                return False
            return all(int(np.prod(f.shape[1:3])) > 0 for f in content + style)

        hi = 1
        while not ok(hi):
            hi *= 2
            if hi > limit:
                raise ValueError(f"{self.name}: no input side up to {limit} px gives non-empty features")
        lo = hi // 2  # ok(lo) is False (or lo == 0)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def __repr__(self) -> str:
        return (f"FeatureExtractor(name={self.name!r}, content_layers={list(self.content_layers)}, "
                f"style_layers={list(self.style_layers)}, min_side={self.min_side}, "
                f"input_size={self.input_size})")


def build_extractor(backbone: str = "vgg19", *, weights: str | os.PathLike | None = None,
                    model_path: str | os.PathLike | None = None,
                    content_layers: Sequence[str] | None = None,
                    style_layers: Sequence[str] | None = None) -> FeatureExtractor:
    """Build a :class:`FeatureExtractor` from plain arguments (for the CLI / DVC stage).

    Parameters
    ----------
    backbone : ``"vgg19"`` or ``"own"``
    weights : path to the VGG19 no-top ``.weights.h5`` (``"vgg19"``; ``None`` = random).
    model_path : path to the own CNN ``.keras`` file (``"own"``).
    content_layers, style_layers : layer names, or None for the backbone's defaults.

    Raises
    ------
    ValueError
        Unknown backbone or missing ``model_path``.
    """
    if backbone == "vgg19":
        return FeatureExtractor.vgg19(
            weights,
            content_layers=content_layers or VGG19_CONTENT_LAYERS,
            style_layers=style_layers or VGG19_STYLE_LAYERS,
        )
    if backbone == "own":
        if model_path is None:
            raise ValueError("backbone 'own' needs model_path (a .keras file)")
        return FeatureExtractor.from_model(model_path, content_layers=content_layers,
                                           style_layers=style_layers)
    raise ValueError(f"unknown backbone {backbone!r}; expected 'vgg19' or 'own'")


# --------------------------------------------------------------------------- objective


class StyleTransferLoss:
    """The Gatys loss for one content/style pair at one working size (module docstring).

    Parameters
    ----------
    extractor : FeatureExtractor
    content, style : numpy.ndarray (H, W, 3) uint8 at working size (see :func:`prepare_images`).
    content_weight, style_weight, tv_weight : float

    Calling it with an image ``x`` of shape (1, H, W, 3), float32 RGB in [0, 1] (same
    H, W as ``content``) returns a dict of scalar tensors ``total``, ``content``,
    ``style``, ``tv`` (weighted terms). Traceable inside a ``tf.function``.
    """

    def __init__(self, extractor: FeatureExtractor, content: np.ndarray, style: np.ndarray, *,
                 content_weight: float = DEFAULT_CONTENT_WEIGHT,
                 style_weight: float = DEFAULT_STYLE_WEIGHT, tv_weight: float = DEFAULT_TV_WEIGHT):
        import tensorflow as tf

        self.extractor = extractor
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        content = as_rgb_uint8(content, what="content image")
        style = as_rgb_uint8(style, what="style image")
        self.shape = content.shape
        c_feats, _ = extractor(tf.constant(content[None], tf.float32))
        _, s_feats = extractor(tf.constant(style[None], tf.float32))
        self.content_targets = [tf.constant(f) for f in c_feats]
        self.style_targets = [tf.constant(gram_matrix(f)) for f in s_feats]

    def __call__(self, image01: Any) -> dict[str, Any]:
        import tensorflow as tf

        c_feats, s_feats = self.extractor(image01 * 255.0)
        c = tf.add_n([content_loss(f, t) for f, t in zip(c_feats, self.content_targets, strict=True)])
        fast = self.extractor.fast_gradient
        s = tf.add_n([style_loss(f, t, fast_gradient=fast)
                      for f, t in zip(s_feats, self.style_targets, strict=True)])
        c = self.content_weight / len(c_feats) * c
        s = self.style_weight / len(s_feats) * s
        tv = self.tv_weight * total_variation_loss(image01)
        return {"total": c + s + tv, "content": c, "style": s, "tv": tv}


# --------------------------------------------------------------------------- result


@dataclass
class StylizeResult:
    """Outcome of :func:`stylize`.

    Attributes
    ----------
    image : numpy.ndarray (H, W, 3) uint8
        The image with the lowest loss at the final scale (the working content size).
    history : list of dict
        One record per loss evaluation: ``step`` (1-based, counted over all stages),
        ``seconds`` (since the call started), ``total``, ``content``, ``style``, ``tv``
        (weighted loss terms), ``stage``, ``scale``, ``height``, ``width``.
    seconds : float
        Wall-clock seconds of the whole call.
    iterations : int
        Loss-and-gradient evaluations done (all stages).
    diverged : bool
        The loss became NaN/Inf and the last good image was returned instead.
    style_shape : (H, W)
        Working size of the style image at the final stage.
    optimizer : str
    """

    image: np.ndarray
    history: list[dict[str, float]]
    seconds: float
    iterations: int
    diverged: bool = False
    style_shape: tuple[int, int] = (0, 0)
    optimizer: str = DEFAULT_OPTIMIZER
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best_record(self) -> dict[str, float]:
        """The history record of the returned image: the lowest finite total loss at the
        final scale (its ``content``, ``style``, ``tv`` add up to its ``total``); empty
        when there is none. The *last* record can be a rejected line-search trial."""
        last_stage = max((r["stage"] for r in self.history), default=0)
        finite = [r for r in self.history if r["stage"] == last_stage and math.isfinite(r["total"])]
        return dict(min(finite, key=lambda r: r["total"])) if finite else {}

    @property
    def final_loss(self) -> float:
        """Lowest total loss recorded at the final scale (NaN when there is none)."""
        return float(self.best_record.get("total", float("nan")))

    def summary(self) -> dict[str, Any]:
        """Scalar metrics for reports/DVC (JSON-serialisable)."""
        return {
            "seconds": round(self.seconds, 3), "iterations": self.iterations,
            "final_loss": self.final_loss, "diverged": self.diverged, "optimizer": self.optimizer,
            "height": int(self.image.shape[0]), "width": int(self.image.shape[1]),
            "style_height": int(self.style_shape[0]), "style_width": int(self.style_shape[1]),
        }


# --------------------------------------------------------------------------- optimisation


class _Tracker:
    """Records every evaluation, keeps the best image, enforces budget, callback and NaN guard."""

    def __init__(self, start: float, budget_total: int, callback: Callable[[dict], Any] | None,
                 progress: bool):
        from tqdm.auto import tqdm

        self.start = start
        self.history: list[dict[str, float]] = []
        self.step = 0
        self.callback = callback
        self.pbar = tqdm(total=budget_total, disable=not progress, desc="stylize", unit="it")
        self.best_img: np.ndarray | None = None
        self.best_loss = math.inf
        self.stage = 0
        self.scale = 1.0
        self.stage_budget_end = 0

    def new_stage(self, stage: int, scale: float, iterations: int) -> None:
        self.stage, self.scale = stage, scale
        self.best_img, self.best_loss = None, math.inf
        self.stage_budget_end = self.step + iterations

    def record(self, losses: Mapping[str, Any], image01: np.ndarray, grad_finite: bool = True) -> None:
        """Record one evaluation of ``image01`` (1, H, W, 3); raise _StopOptimisation when done."""
        vals = {k: float(v) for k, v in losses.items()}
        self.step += 1
        rec = {"step": self.step, "seconds": time.perf_counter() - self.start, **vals,
               "stage": self.stage, "scale": self.scale,
               "height": int(image01.shape[1]), "width": int(image01.shape[2])}
        self.history.append(rec)
        self.pbar.update(1)
        self.pbar.set_postfix(loss=f"{vals['total']:.4g}", refresh=False)
        if not (math.isfinite(vals["total"]) and grad_finite):
            logger.warning("loss became non-finite at step %d (total=%s)", self.step, vals["total"])
            raise _StopOptimisation("diverged")
        if vals["total"] < self.best_loss:
            self.best_loss = vals["total"]
            self.best_img = np.array(image01, dtype=np.float32, copy=True)
        if self.callback is not None and self.callback(dict(rec)):
            raise _StopOptimisation("callback")
        if self.step >= self.stage_budget_end:
            raise _StopOptimisation("budget")


#: L-BFGS-B starts with an identity Hessian guess, so its first step moves by the raw
#: gradient (huge here: the image leaps to the box corners and the line search backs off
#: over several evaluations). The objective seen by scipy is therefore divided by a
#: constant chosen so that the first step moves no variable by more than this (pixels in
#: [0, 1], or Fourier coefficients in the same units).
LBFGS_FIRST_STEP = 0.05
#: L-BFGS memory (number of correction pairs).
LBFGS_MEMORY = 20
#: Exponent p of the Fourier-space parametrisation of the L-BFGS path (see
#: :func:`fourier_scale`); 0 optimises the pixels themselves.
DEFAULT_FOURIER_EXPONENT = 0.25


def fourier_scale(height: int, width: int, exponent: float) -> np.ndarray:
    """Per-frequency gain of the Fourier-space image parametrisation.

    The L-BFGS path optimises ``x = clip(x0 + irfft2(s * z) * sqrt(H * W), 0, 1)``: the
    change ``z`` to the start image ``x0`` is held as orthonormally scaled 2-D Fourier
    coefficients, each multiplied by ``s(f) = (f / f_max) ** -exponent``, where ``f`` is
    the radial frequency in cycles per pixel (floored at ``1 / max(H, W)``, the lowest
    non-zero one, so the DC term gets the largest gain) and ``f_max`` the highest. The
    gains make low frequencies cheaper to move, a diagonal preconditioner for the
    optimiser; the loss itself is unchanged. Idea: the 1/f "decorrelated" Fourier
    parametrisation of Olah et al., "Feature Visualization", Distill 2017 and Mordvintsev
    et al., "Differentiable Image Parameterizations", Distill 2018 (there with exponent
    1 and for gradient ascent); for L-BFGS on the Gatys loss a mild exponent works best
    (evaluations to the recipe's loss on the problem of ``benchmarks/style_transfer.py``,
    one-thread runs: exponent 0.15: 118, 0.2: 117, 0.25: 107, 0.3: 112, 0.35: 114,
    0.5: 127; pixels with box bounds: 125-129).

    Parameters
    ----------
    height, width : int
        Image size in pixels (>= 1).
    exponent : float
        ``p >= 0``; 0 gives all-ones.

    Returns
    -------
    numpy.ndarray, (height, width // 2 + 1) float32
        The gains, laid out as ``numpy.fft.rfft2`` / ``tf.signal.rfft2d`` output; the
        highest frequency has gain 1.

    Raises
    ------
    ValueError
        Non-positive size or negative / non-finite exponent.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive; got {height}x{width}")
    if not (math.isfinite(exponent) and exponent >= 0):
        raise ValueError(f"exponent must be finite and >= 0; got {exponent}")
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    freq = np.maximum(np.sqrt(fy**2 + fx**2), 1.0 / max(height, width))
    return ((freq / freq.max()) ** -float(exponent)).astype(np.float32)


def fourier_image(coeffs: Any, start: Any, gain: Any) -> Any:
    """The image of the Fourier-space parametrisation.

    ``clip(start + irfft2(gain * coeffs) * sqrt(H * W), 0, 1)`` per colour channel
    (:func:`fourier_scale`).

    Parameters
    ----------
    coeffs : tf.Tensor, (3, H, W // 2 + 1, 2) float32
        Real and imaginary parts of the per-channel 2-D Fourier coefficients of the
        change to ``start`` (orthonormal scaling: ``numpy.fft.rfft2(d) / sqrt(H * W)``
        gives the coefficients of a change ``d``).
    start : tf.Tensor, (1, H, W, 3) float32 in [0, 1]
    gain : tf.Tensor, (H, W // 2 + 1) float32
        Per-frequency gains (:func:`fourier_scale`).

    Returns
    -------
    tf.Tensor, (1, H, W, 3) float32 in [0, 1]
        Differentiable in ``coeffs`` (zero gradient where the clip is active).
    """
    import tensorflow as tf

    h, w = int(start.shape[1]), int(start.shape[2])
    scaled = gain * math.sqrt(h * w)
    delta = tf.signal.irfft2d(tf.complex(coeffs[..., 0] * scaled, coeffs[..., 1] * scaled), fft_length=(h, w))
    return tf.clip_by_value(start + tf.transpose(delta, (1, 2, 0))[None], 0.0, 1.0)


def _run_lbfgs(loss_fn: StyleTransferLoss, init01: np.ndarray, tracker: _Tracker,
               fourier_exponent: float = DEFAULT_FOURIER_EXPONENT) -> str:
    """L-BFGS (scipy L-BFGS-B) from ``init01`` (1, H, W, 3) in [0, 1].

    ``fourier_exponent > 0``: over the Fourier coefficients of the change to the start
    image (:func:`fourier_scale`), unbounded, the image clipped to [0, 1] in the graph;
    0: over the flattened pixels with box bounds [0, 1]. After L-BFGS-B ends on its own
    (converged or line search failed) it restarts from the best image with a fresh
    curvature memory while there is budget and progress.
    """
    import scipy.optimize
    import tensorflow as tf

    _, h, w, _ = init01.shape
    if fourier_exponent > 0:
        gain = tf.constant(fourier_scale(h, w, fourier_exponent))
        var_shape: tuple[int, ...] = (3, h, w // 2 + 1, 2)  # real and imaginary parts
        bounds = None
        base = tf.Variable(np.asarray(init01, np.float32), trainable=False)  # what z changes

        def to_image(z):
            return fourier_image(z, base, gain)

        def variables_at(image01: np.ndarray) -> np.ndarray:
            base.assign(np.asarray(image01, np.float32))
            return np.zeros(int(np.prod(var_shape)))
    else:
        var_shape = tuple(init01.shape)
        bounds = scipy.optimize.Bounds(np.zeros(init01.size), np.ones(init01.size))

        def to_image(z):
            return z

        def variables_at(image01: np.ndarray) -> np.ndarray:
            return image01.astype(np.float64).ravel()

    @tf.function
    def value_and_grad(z):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(z)
            image = to_image(z)
            losses = loss_fn(image)
        return losses, tape.gradient(losses["total"], z), image

    scale = [0.0]  # objective divisor, set at the first evaluation of each run

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        losses, grad, image = value_and_grad(tf.constant(x.reshape(var_shape), tf.float32))
        g = grad.numpy().astype(np.float64).ravel()
        tracker.record(losses, image.numpy(), grad_finite=bool(np.all(np.isfinite(g))))
        if scale[0] == 0.0:
            scale[0] = max(float(np.abs(g).max()) / LBFGS_FIRST_STEP, 1e-12)
        return float(losses["total"]) / scale[0], g / scale[0]

    x0 = variables_at(init01)
    while True:
        before = tracker.step
        scale[0] = 0.0
        try:
            res = scipy.optimize.minimize(
                fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                options={"maxiter": 10**9, "maxfun": 10**9, "ftol": 0.0, "gtol": 0.0,
                         "maxcor": LBFGS_MEMORY},
            )
        except _StopOptimisation as stop:
            return stop.reason
        logger.debug("L-BFGS-B stopped after %d evaluations: %s", tracker.step - before, res.message)
        if tracker.step - before < 3 or tracker.best_img is None:
            return "converged"
        x0 = variables_at(tracker.best_img)


def _run_adam(loss_fn: StyleTransferLoss, init01: np.ndarray, tracker: _Tracker,
              learning_rate: float) -> str:
    import keras
    import tensorflow as tf

    image = tf.Variable(init01.astype(np.float32))
    opt = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=ADAM_BETA_1, epsilon=ADAM_EPSILON)
    opt.build([image])

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            losses = loss_fn(image)
        grad = tape.gradient(losses["total"], image)
        finite = tf.reduce_all(tf.math.is_finite(grad))
        opt.apply_gradients([(grad, image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
        return losses, finite

    @tf.function
    def evaluate():
        return loss_fn(image)

    try:
        while True:
            before = image.numpy()  # the image whose loss this step computes
            losses, finite = train_step()
            tracker.record(losses, before, grad_finite=bool(finite))
    except _StopOptimisation as stop:
        if stop.reason != "budget":
            return stop.reason
    # The budget's last step updated the image: evaluate it too (one forward pass).
    final = image.numpy()
    losses = evaluate()
    tracker.stage_budget_end += 1
    try:
        tracker.record(losses, final)
    except _StopOptimisation as stop:
        return stop.reason
    return "budget"


def _upsample01(image01: np.ndarray, height: int, width: int) -> np.ndarray:
    import tensorflow as tf

    out = tf.image.resize(image01, (height, width), method="bicubic", antialias=False)
    return np.clip(out.numpy(), 0.0, 1.0).astype(np.float32)


def stylize(content: np.ndarray, style: np.ndarray, *, extractor: FeatureExtractor,
            content_weight: float = DEFAULT_CONTENT_WEIGHT, style_weight: float = DEFAULT_STYLE_WEIGHT,
            tv_weight: float = DEFAULT_TV_WEIGHT, optimizer: str = DEFAULT_OPTIMIZER,
            iterations: int | Sequence[int] = DEFAULT_ITERATIONS, max_side: int | None = DEFAULT_MAX_SIDE,
            init: str = DEFAULT_INIT, schedule: Sequence[float] | None = DEFAULT_SCHEDULE,
            fourier_exponent: float = DEFAULT_FOURIER_EXPONENT,
            learning_rate: float = DEFAULT_ADAM_LEARNING_RATE, style_scale: float = 1.0, seed: int = 0,
            on_divergence: str = "recover", callback: Callable[[dict], Any] | None = None,
            progress: bool = False) -> StylizeResult:
    """Gatys neural style transfer of ``content`` in the style of ``style``.

    Parameters
    ----------
    content, style : numpy.ndarray, (H, W, 3) uint8 RGB
    extractor : FeatureExtractor
        ``FeatureExtractor.vgg19(weights)`` or ``FeatureExtractor.from_model(own_cnn)``.
    content_weight, style_weight, tv_weight : float
        Loss weights (module docstring): content 1e4 and TV 30 as the TensorFlow
        tutorial, style 1.0 (tutorial: 1e-2) for a clearly visible style.
    optimizer : ``"lbfgs"`` or ``"adam"``
        L-BFGS (scipy L-BFGS-B) or the tutorial's Adam recipe.
    iterations : int or sequence of int
        Loss-and-gradient evaluations; with a ``schedule``, one count per stage (an int
        is used for every stage).
    max_side : int or None
        Longest side of the output (content reduced uniformly, never enlarged).
    init : ``"colour_matched"``, ``"content"`` or ``"noise"``
        Start image: the content image re-coloured to the style image's colour mean and
        covariance (:func:`match_colour`, the default: fewer evaluations to a given loss,
        see the module docstring), the content image itself (the tutorial's start), or
        uniform white noise (``seed``).
    schedule : sequence of float or None
        Coarse-to-fine scales relative to the output size, increasing and ending in 1.0
        (e.g. ``(0.5, 1.0)``); each stage starts from the previous result upsampled
        (bicubic). ``None`` = one stage at full size.
    fourier_exponent : float
        L-BFGS only: optimise the change to the start image as Fourier coefficients
        with gains ``(f / f_max) ** -fourier_exponent`` (:func:`fourier_scale`; default
        0.25: fewer evaluations to a given loss); 0 optimises the pixels with box bounds.
    learning_rate : float
        Adam step size in [0, 1] image units (ignored by L-BFGS).
    style_scale : float
        Style image area = content area * ``style_scale**2``.
    seed : int
        Seed for ``init="noise"``.
    on_divergence : ``"recover"`` or ``"raise"``
        On a NaN/Inf loss or gradient: return the last good (lowest-loss) image with
        ``diverged=True`` and a warning, or raise :class:`StyleTransferDiverged`.
    callback : callable or None
        Called with each history record (a dict); returning True stops early.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    StylizeResult

    Raises
    ------
    ValueError
        Bad images or arguments.
    StyleTransferDiverged
        Non-finite loss with ``on_divergence="raise"`` or before any good image, or a
        constant (e.g. black) result.
    """
    start = time.perf_counter()
    content = as_rgb_uint8(content, what="content image")
    style = as_rgb_uint8(style, what="style image")
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam'; got {optimizer!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}; got {init!r}")
    if not (math.isfinite(fourier_exponent) and fourier_exponent >= 0):
        raise ValueError(f"fourier_exponent must be finite and >= 0; got {fourier_exponent}")
    if on_divergence not in ("recover", "raise"):
        raise ValueError(f"on_divergence must be 'recover' or 'raise'; got {on_divergence!r}")
    scales = [1.0] if schedule is None else [float(s) for s in schedule]
    if not scales or any(s <= 0 for s in scales) or scales != sorted(scales) or scales[-1] != 1.0:
        raise ValueError(f"schedule must be increasing positive scales ending in 1.0; got {schedule}")
    iters = [int(iterations)] * len(scales) if np.isscalar(iterations) else [int(i) for i in iterations]
    if len(iters) != len(scales) or any(i < 1 for i in iters):
        raise ValueError(f"iterations must be >= 1, one per schedule stage; got {iterations}")
    for w_name, w in (("content_weight", content_weight), ("style_weight", style_weight),
                      ("tv_weight", tv_weight)):
        if not (math.isfinite(w) and w >= 0):
            raise ValueError(f"{w_name} must be finite and >= 0; got {w}")

    tracker = _Tracker(start, sum(iters) + (len(scales) if optimizer == "adam" else 0), callback, progress)
    image01: np.ndarray | None = None
    diverged = False
    style_w = style
    reason = "budget"
    try:
        for stage, (scale, n_iter) in enumerate(zip(scales, iters, strict=True)):
            content_w, style_w = prepare_images(content, style, max_side=max_side,
                                                min_side=extractor.min_side, style_scale=style_scale,
                                                scale=scale)
            h, w = content_w.shape[:2]
            if image01 is None:
                if init == "content":
                    image01 = content_w[None].astype(np.float32) / 255.0
                elif init == "colour_matched":
                    image01 = match_colour(content_w, style_w)[None]
                else:
                    image01 = np.random.default_rng(seed).uniform(0, 1, (1, h, w, 3)).astype(np.float32)
            else:
                image01 = _upsample01(image01, h, w)
            logger.info("stage %d: scale %.3g, content %dx%d, style %dx%d, %s for %d iterations",
                        stage, scale, h, w, *style_w.shape[:2], optimizer, n_iter)
            loss_fn = StyleTransferLoss(extractor, content_w, style_w, content_weight=content_weight,
                                        style_weight=style_weight, tv_weight=tv_weight)
            tracker.new_stage(stage, scale, n_iter)
            if optimizer == "lbfgs":
                reason = _run_lbfgs(loss_fn, image01, tracker, fourier_exponent)
            else:
                reason = _run_adam(loss_fn, image01, tracker, learning_rate)
            if tracker.best_img is None:
                raise StyleTransferDiverged(
                    f"the loss was non-finite from the first evaluation of stage {stage} "
                    f"(scale {scale}); no usable image")
            image01 = tracker.best_img
            if reason == "diverged":
                if on_divergence == "raise":
                    raise StyleTransferDiverged(
                        f"loss became non-finite at step {tracker.step} (stage {stage}, scale {scale})")
                diverged = True
                logger.warning("style transfer diverged; returning the last good image (loss %.6g)",
                               tracker.best_loss)
                break
            if reason == "callback":
                break
    finally:
        tracker.pbar.close()

    if scale != scales[-1]:  # stopped early in a coarse stage: bring it to the output size
        final_shape = prepare_images(content, style, max_side=max_side, min_side=extractor.min_side,
                                     style_scale=style_scale)[0].shape[:2]
        image01 = _upsample01(image01, *final_shape)
    result_img = np.clip(np.rint(image01[0] * 255.0), 0, 255).astype(np.uint8)
    if int(result_img.max()) == int(result_img.min()):
        raise StyleTransferDiverged(f"the result is a constant image (value {int(result_img.min())})")
    seconds = time.perf_counter() - start
    logger.info("stylize: %d evaluations in %.1f s, final loss %.6g", tracker.step, seconds,
                tracker.best_loss)
    return StylizeResult(image=result_img, history=tracker.history, seconds=seconds,
                         iterations=tracker.step, diverged=diverged,
                         style_shape=tuple(style_w.shape[:2]), optimizer=optimizer,
                         extra={"stop_reason": reason, "init": init,
                                **({"fourier_exponent": float(fourier_exponent)}
                                   if optimizer == "lbfgs" else {})})


# --------------------------------------------------------------------------- evaluation & outputs


def ssim_to_content(result: np.ndarray, content: np.ndarray) -> float:
    """Structural similarity (SSIM) of the result to the content image.

    ``skimage.metrics.structural_similarity(..., channel_axis=-1, data_range=255)``;
    the content is first resized (Lanczos) to the result's size if they differ.
    Both images need sides >= 7 px (SSIM window).

    Returns
    -------
    float in [-1, 1]; 1 = identical structure.
    """
    from skimage.metrics import structural_similarity

    result = as_rgb_uint8(result, what="result image")
    content = resize_image(as_rgb_uint8(content, what="content image"), *result.shape[:2])
    return float(structural_similarity(result, content, channel_axis=-1, data_range=255))


def save_image(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an RGB uint8 image atomically (format from the suffix, e.g. ``.png``)."""
    from PIL import Image

    from artstyle.io import atomic_path

    image = as_rgb_uint8(image)
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp)
    return Path(path)


def _save_figure(fig: Any, path: str | os.PathLike, dpi: int) -> Path:
    from artstyle.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return Path(path)


def save_panel(content: np.ndarray, style: np.ndarray, result: np.ndarray, path: str | os.PathLike, *,
               titles: Sequence[str] = ("content", "style", "result"), dpi: int = 120) -> Path:
    """Save a PNG panel ``content | style | result`` with titles (matplotlib, atomic write).

    Returns the written path.
    """
    from matplotlib.figure import Figure

    images = [as_rgb_uint8(im) for im in (content, style, result)]
    widths = [im.shape[1] / im.shape[0] for im in images]
    fig = Figure(figsize=(3.2 * sum(widths) + 0.4, 3.6))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": widths})
    for ax, im, title in zip(axes, images, titles, strict=True):
        ax.imshow(im)
        ax.set_title(f"{title} ({im.shape[1]}x{im.shape[0]})", fontsize=9)
        ax.axis("off")
    return _save_figure(fig, path, dpi)


def plot_losses(history: Sequence[Mapping[str, float]] | Mapping[str, Sequence[Mapping[str, float]]],
                path: str | os.PathLike, *, x: str = "seconds",
                keys: Iterable[str] | None = None, title: str | None = None,
                hline: float | None = None, dpi: int = 120) -> Path:
    """Save loss curves (log-scale y) as a PNG (atomic write).

    Parameters
    ----------
    history : list of records (one run; plots ``total``, ``content``, ``style``, ``tv``)
        or a mapping ``label -> records`` (several runs; plots ``total`` of each).
    x : ``"seconds"`` or ``"step"``
    keys : loss keys to plot (default as above).
    hline : optional horizontal reference line (e.g. a target loss).

    Non-positive and non-finite values are skipped (log scale).
    """
    from matplotlib.figure import Figure

    runs = dict(history) if isinstance(history, Mapping) else {"": history}
    keys = tuple(keys) if keys is not None else (
        ("total",) if len(runs) > 1 else ("total", "content", "style", "tv"))
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for label, recs in runs.items():
        for key in keys:
            pts = [(r[x], r[key]) for r in recs if key in r and math.isfinite(r[key]) and r[key] > 0]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, label=" ".join(p for p in (label, key) if p), lw=1.2)
    if hline is not None and hline > 0:
        ax.axhline(hline, color="k", ls="--", lw=0.8, label=f"target {hline:.4g}")
    ax.set_yscale("log")
    ax.set_xlabel("seconds" if x == "seconds" else "loss evaluations")
    ax.set_ylabel("loss (weighted terms)")
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save_figure(fig, path, dpi)
