"""Working sizes of the content and style images, and the colour-matched start image.

Sizes: the content image is reduced uniformly so that its longest side is at most
``max_side`` (never enlarged); the output keeps its aspect ratio. The style image is
scaled uniformly so that its *area* equals the working content area times
``style_scale**2`` (never stretched to the content's shape). An image whose shorter
side is below the extractor's ``min_side`` (VGG19 up to ``block5_conv2``: 4 max-pools,
so 16 px) is upscaled uniformly to that minimum with a logged warning.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from artstyle.images import as_rgb_uint8, resize_image

logger = logging.getLogger(__name__)


def scaled_shape(shape: Sequence[int], factor: float) -> tuple[int, int]:
    """``(H, W)`` multiplied uniformly by ``factor``, rounded, at least 1 px each."""
    h, w = int(shape[0]), int(shape[1])
    return max(1, round(h * factor)), max(1, round(w * factor))


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


def prepare_images(content: np.ndarray, style: np.ndarray, *, max_side: int | None,
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
    photo's colours; :func:`artstyle.nst.stylize` applies it the other way round to
    build its default start image (``init="colour_matched"``): the optimiser then
    starts with the painting's palette already in place (fewer evaluations to a given
    loss, ``docs/benchmarks.md``).

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
