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

from artstyle.errors import InvalidInput
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


def match_colour(image: np.ndarray, reference: np.ndarray | Sequence[np.ndarray], *,
                 weights: Sequence[float] | None = None, eps: float = 1e-5) -> np.ndarray:
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

    Several references (a blend of paintings) stand for the mixture of their colour
    distributions with ``weights``: mean ``sum_k w_k mu_k`` and covariance
    ``sum_k w_k (S_k + mu_k mu_k^T) - mu mu^T`` (weights normalised to sum 1).

    Parameters
    ----------
    image, reference : numpy.ndarray, (H, W, 3) and (h, w, 3) uint8 RGB (any sizes)
        ``reference`` may also be a list of such images (with ``weights``).
    weights : sequence of float or None
        One weight >= 0 per reference image (several references only; None = equal).
    eps : float
        Floor of both covariances' eigenvalues (colour units of [0, 1]); keeps flat or
        greyscale images finite (a constant image becomes the reference's mean colour).

    Returns
    -------
    numpy.ndarray (H, W, 3) float32 in [0, 1].
    """
    src = as_rgb_uint8(image, what="image").reshape(-1, 3).astype(np.float64) / 255.0
    refs = [reference] if isinstance(reference, np.ndarray) else list(reference)
    refs = [as_rgb_uint8(r, what="reference image").reshape(-1, 3).astype(np.float64) / 255.0
            for r in refs]

    def sqrtm(cov: np.ndarray, power: float) -> np.ndarray:
        vals, vecs = np.linalg.eigh(cov)
        return (vecs * np.maximum(vals, eps) ** power) @ vecs.T

    mu_src = src.mean(axis=0)
    cov_src = np.cov(src, rowvar=False, bias=True)
    if len(refs) == 1:
        mu_ref, cov_ref = refs[0].mean(axis=0), np.cov(refs[0], rowvar=False, bias=True)
    else:
        w = np.ones(len(refs)) if weights is None else np.asarray(weights, np.float64)
        if w.shape != (len(refs),) or np.any(w < 0) or not w.sum() > 0:
            raise InvalidInput(f"need one weight >= 0 per reference image ({len(refs)}), not all 0")
        w = w / w.sum()
        mus = [r.mean(axis=0) for r in refs]
        mu_ref = sum(wk * mk for wk, mk in zip(w, mus, strict=True))
        second = sum(wk * (np.cov(r, rowvar=False, bias=True) + np.outer(mk, mk))
                     for wk, r, mk in zip(w, refs, mus, strict=True))
        cov_ref = second - np.outer(mu_ref, mu_ref)
    a = sqrtm(cov_ref, 0.5) @ sqrtm(cov_src, -0.5)
    out = (src - mu_src) @ a.T + mu_ref
    return np.clip(out, 0.0, 1.0).reshape(np.shape(image)[:2] + (3,)).astype(np.float32)


#: RGB -> YIQ (NTSC, FCC 1953 coefficients): Y luminance, I and Q chroma. Rows: Y, I, Q.
RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114],
                       [0.595716, -0.274453, -0.321263],
                       [0.211456, -0.522591, 0.311135]])
#: YIQ -> RGB (the exact inverse of :data:`RGB_TO_YIQ`).
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def rgb_to_yiq(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB uint8 (or float in grey levels) -> (H, W, 3) float64 YIQ, grey levels."""
    return np.asarray(image, np.float64) @ RGB_TO_YIQ.T


def keep_colours(result: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The result's luminance with the photo's chroma: "preserve colours" after a transfer.

    Luminance-only transfer of Gatys, Ecker, Bethge, Hertzmann & Shechtman, "Controlling
    Perceptual Factors in Neural Style Transfer" (CVPR 2017, sec. 5.2), applied after the
    optimisation: both images go to YIQ, the output takes Y from ``result`` and I, Q from
    ``content``, and returns to RGB (clipped to [0, 255] and rounded, so the chroma is the
    photo's up to that clipping and rounding). YIQ, as the paper, rather than CIELAB: it is
    linear (exact, cheap at 1024 px, no gamma or white point) and Y is the luminance the
    brush strokes live in.

    Parameters
    ----------
    result, content : numpy.ndarray, (H, W, 3) uint8 RGB
        ``content`` is resized (Lanczos) to the result's size if they differ.

    Returns
    -------
    numpy.ndarray (H, W, 3) uint8.
    """
    result = as_rgb_uint8(result, what="result image")
    content = as_rgb_uint8(content, what="content image")
    if content.shape != result.shape:
        content = resize_image(content, *result.shape[:2])
    yiq = rgb_to_yiq(content)
    yiq[..., 0] = rgb_to_yiq(result)[..., 0]
    rgb = yiq @ YIQ_TO_RGB.T
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def style_mask(mask: np.ndarray) -> np.ndarray:
    """A region mask as grey levels: white = paint in the style, black = keep the photo.

    Parameters
    ----------
    mask : numpy.ndarray, (H, W) or (H, W, 3 or 4), bool, uint8 or float in [0, 1]
        Colour masks count by their luminance (ITU-R 601 weights); alpha is ignored.
        Float values are read as [0, 1], uint8 as 0-255.

    Returns
    -------
    numpy.ndarray (H, W) uint8, 0 (keep the photo) .. 255 (style).

    Raises
    ------
    ValueError
        Not an image (shape, empty, dtype, non-finite values), or black everywhere (the
        style would apply nowhere).
    """
    m = np.asarray(mask)
    if m.ndim == 3 and m.shape[-1] in (3, 4):
        grey = m[..., :3]
    elif m.ndim == 2:
        grey = m
    else:
        raise InvalidInput(f"a mask is an (H, W), (H, W, 3) or (H, W, 4) image; got shape {m.shape}")
    if grey.size == 0:
        raise InvalidInput(f"the mask is empty (shape {m.shape})")
    if grey.dtype == bool or np.issubdtype(grey.dtype, np.floating):
        values = grey.astype(np.float32) * 255.0      # [0, 1] -> grey levels
    elif grey.dtype == np.uint8:
        values = grey.astype(np.float32)
    else:
        raise InvalidInput(f"mask values must be uint8 (0-255), bool or float in [0, 1]; "
                         f"got {grey.dtype}")
    if not np.isfinite(values).all():
        raise InvalidInput("the mask has non-finite values")
    if values.ndim == 3:
        values = values @ np.asarray([0.299, 0.587, 0.114], np.float32)
    m = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    if int(m.max()) == 0:
        raise InvalidInput("the mask is black everywhere: the style would apply nowhere "
                         "(white = style, black = the photo)")
    return m


def mask_at(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """:func:`style_mask`'s grey levels at ``height`` x ``width`` px (bilinear), as float32
    in [0, 1]."""
    from PIL import Image

    if mask.shape != (height, width):
        mask = np.asarray(Image.fromarray(mask, mode="L").resize((width, height),
                                                                 Image.Resampling.BILINEAR))
    return mask.astype(np.float32) / 255.0


def composite(result: np.ndarray, content: np.ndarray, mask01: np.ndarray) -> np.ndarray:
    """``mask * result + (1 - mask) * content``: the style inside the mask, the photo
    outside. All three at one size: (H, W, 3) uint8, (H, W, 3) uint8, (H, W) float [0, 1];
    returns (H, W, 3) uint8."""
    m = mask01[..., None]
    out = m * result.astype(np.float32) + (1.0 - m) * content.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
