"""Fourier parametrisation of the image for L-BFGS: a preconditioner, the same loss.

After Olah et al., "Feature Visualization", Distill 2017, and Mordvintsev et al.,
"Differentiable Image Parameterizations", Distill 2018.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


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
    (the exponents measured are in ``docs/benchmarks.md``).

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
