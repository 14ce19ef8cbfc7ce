"""Gram matrices of CNN feature maps: the one owner of the maths.

The Gram matrix ``G = F^T F / (H * W)`` of a feature map ``F`` (H x W positions, C
channels) holds the correlations between channels that Gatys, Ecker & Bethge ("A Neural
Algorithm of Artistic Style", arXiv:1508.06576, 2015, eq. 3) take as a picture's *style*;
normalised once by the number of positions as in the TensorFlow tutorial "Neural style
transfer". Used by the style-transfer loss (:mod:`artstyle.nst.losses`) and by the
style descriptors of paintings (:mod:`artstyle.models.style_features`), which therefore
depend on this module and not on ``nst/``.

:func:`gram_matrix` is the plain definition; :func:`fast_gram_matrix` the same values
with a one-product hand-written gradient (the speed machinery of
:mod:`artstyle.nst.fast_gradient`); :func:`masked_gram_matrix` the Gram matrix of the
positions inside a mask (Gatys et al. 2017).
"""

from __future__ import annotations

from typing import Any


def gram_matrix(features: Any) -> Any:
    """Gram matrix of a feature map, normalised ONCE by the number of positions ``H * W``.

    ``G[c, d] = sum_{i, j} F[i, j, c] * F[i, j, d] / (H * W)``, as the TensorFlow
    tutorial (Gatys et al. 2015, eq. 3, without their normalisation).

    Parameters
    ----------
    features : array-like or tf.Tensor, shape (H, W, C) or (B, H, W, C)

    Returns
    -------
    tf.Tensor float32, shape (C, C) or (B, C, C).

    Raises
    ------
    ValueError
        ``features`` is not of rank 3 or 4.
    """
    import tensorflow as tf

    f, positions, single = feature_batch(features)
    gram = tf.einsum("bijc,bijd->bcd", f, f) / positions
    return gram[0] if single else gram


def feature_batch(features: Any) -> tuple[Any, Any, bool]:
    """A feature map as a float32 batch, its number of positions, and whether it was single.

    Parameters
    ----------
    features : array-like or tf.Tensor, shape (H, W, C) or (B, H, W, C)

    Returns
    -------
    (tf.Tensor (B, H, W, C) float32, tf.Tensor scalar float32 ``H * W``, bool)
        The batch (B = 1 for a single map), ``H * W``, and True for a rank-3 input.

    Raises
    ------
    ValueError
        ``features`` is not of rank 3 or 4.
    """
    import tensorflow as tf

    f = tf.cast(tf.convert_to_tensor(features), tf.float32)
    single = f.shape.rank == 3
    if single:
        f = f[None]
    if f.shape.rank != 4:
        raise ValueError(f"features must have rank 3 or 4; got shape {f.shape}")
    shape = tf.shape(f)
    return f, tf.cast(shape[1] * shape[2], tf.float32), single


def fast_gram_matrix(features: Any) -> Any:
    """:func:`gram_matrix` with a hand-written gradient.

    One matrix product ``F^T F / (H * W)`` forward and one backward,
    ``dL/dF = F (dL/dG + dL/dG^T) / (H * W)``, where TensorFlow differentiates the
    tutorial's ``tf.einsum("bijc,bijd->bcd", F, F)`` with two einsums and transposes.
    The values equal :func:`gram_matrix`'s within float32 rounding.

    Parameters
    ----------
    features : array-like or tf.Tensor, shape (H, W, C) or (B, H, W, C)

    Returns
    -------
    tf.Tensor float32, shape (C, C) or (B, C, C).

    Raises
    ------
    ValueError
        ``features`` is not of rank 3 or 4.
    """
    import tensorflow as tf

    f, positions, single = feature_batch(features)
    shape = tf.shape(f)

    @tf.custom_gradient
    def gram(flat):  # (B, H*W, C) -> (B, C, C)
        def grad(dg):
            return tf.matmul(flat, dg + tf.linalg.matrix_transpose(dg)) / positions

        return tf.matmul(flat, flat, transpose_a=True) / positions, grad

    out = gram(tf.reshape(f, (shape[0], -1, shape[3])))
    return out[0] if single else out


def masked_gram_matrix(gram: Any, features: Any, mask: Any) -> Any:
    """Gram matrix of the positions inside a mask (spatial control, Gatys et al. 2017).

    ``G = (F * m)^T (F * m) / sum(m^2)`` with the mask ``m`` resized to the feature map
    (area average): "Controlling Perceptual Factors in Neural Style Transfer" (CVPR
    2017), section 4, a style matched only where the mask is white. With an all-ones
    mask it equals ``gram(features)``.

    Parameters
    ----------
    gram : callable
        :func:`gram_matrix` or :func:`fast_gram_matrix`.
    features : tf.Tensor, shape (B, H, W, C)
    mask : tf.Tensor, shape (h, w), float32 in [0, 1], any size

    Returns
    -------
    tf.Tensor float32, shape (B, C, C).
    """
    import tensorflow as tf

    f, positions, _ = feature_batch(features)
    m = tf.image.resize(tf.cast(mask, tf.float32)[None, :, :, None], tf.shape(f)[1:3],
                        method="area")
    inside = tf.maximum(tf.reduce_sum(tf.square(m)), 1e-6)
    return gram(f * m) * (positions / inside)
