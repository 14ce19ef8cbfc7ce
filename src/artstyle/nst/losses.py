"""The Gatys et al. loss, read top to bottom as in the keras.io neural style transfer example.

L. A. Gatys, A. S. Ecker, M. Bethge, "A Neural Algorithm of Artistic Style",
arXiv:1508.06576 (2015); the definitions and weights follow the TensorFlow core
tutorial "Neural style transfer" (https://www.tensorflow.org/tutorials/generative/style_transfer)::

    L(x) = content_weight / |C| * sum_{l in C} mean((F_l(x) - F_l(p))**2)
         + style_weight   / |S| * sum_{l in S} mean((G_l(x) - G_l(a))**2)
         + tv_weight * TV(x)

* ``x`` is the image in RGB **[0, 1] units**; the extractor sees ``255 * x``.
* ``F_l`` is the feature map of layer ``l``, shape (1, H_l, W_l, C_l); ``mean`` is over
  all its elements.
* ``G_l = F_l^T F_l / (H_l * W_l)``: the Gram matrix is normalised once, by the number
  of positions (:func:`artstyle.gram.gram_matrix`); ``mean`` over the C_l x C_l entries then divides
  by C_l**2 as an averaging. With this normalisation ``style_weight`` does not depend on
  the image size. (Gatys et al., eq. 4, ``E_l = sum((G'_l - A'_l)**2) / (4 N_l**2 M_l**2)``
  with un-normalised Grams ``G' = M_l G``, equals ``mean((G_l - A_l)**2) / 4`` here.)
* ``TV`` is the anisotropic total variation of the image in [0, 1] units
  (``tf.image.total_variation``); it grows with the number of pixels, so ``tv_weight``
  depends on the resolution.

Several style paintings ``a_1 .. a_K`` with blend weights ``w_k`` (normalised to sum 1)
replace the style term by the weighted sum of each painting's Gram losses,
``style_weight / |S| * sum_k w_k sum_{l in S} mean((G_l(x) - G_l(a_k))**2)``, as
jcjohnson/neural-style's ``-style_blend_weights``.

The defaults of the weights live in :class:`artstyle.config.LossWeights`. The terms
that :class:`StyleTransferLoss` returns are the **weighted** ones, so
``content + style + tv == total``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from artstyle.config import LossWeights
from artstyle.errors import InvalidInput
from artstyle.gram import feature_batch, gram_matrix, masked_gram_matrix  # noqa: F401 (the loss's Gram)
from artstyle.images import as_rgb_uint8


def style_loss(gram: Any, target_gram: Any) -> Any:
    """Style loss of one layer: mean squared difference of two Gram matrices.

    Parameters
    ----------
    gram, target_gram : (C, C) or (B, C, C)
        :func:`gram_matrix` of the image's and of the style painting's features.

    Returns
    -------
    scalar tf.Tensor (float32).
    """
    import tensorflow as tf

    return tf.reduce_mean(tf.square(tf.cast(gram, tf.float32) - tf.cast(target_gram, tf.float32)))


def content_loss(features: Any, target: Any) -> Any:
    """Content loss of one layer: mean squared difference of feature maps (scalar tf.Tensor).

    ``features`` and ``target`` must have the same shape, e.g. (1, H, W, C).
    """
    import tensorflow as tf

    f = tf.cast(features, tf.float32)
    return tf.reduce_mean(tf.square(f - tf.cast(target, tf.float32)))


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


def normalised_blend_weights(weights: Sequence[float] | None, n_styles: int) -> list[float]:
    """Blend weights of ``n_styles`` paintings, normalised to sum 1 (None = equal).

    Raises
    ------
    ValueError
        Not one finite weight >= 0 per painting, or all 0.
    """
    w = [1.0] * n_styles if weights is None else [float(x) for x in weights]
    if n_styles < 1:
        raise InvalidInput("need at least one style image")
    if len(w) != n_styles:
        raise InvalidInput(f"{len(w)} blend weights for {n_styles} style images: give one per image")
    if not all(math.isfinite(x) and x >= 0 for x in w) or not sum(w) > 0:
        raise InvalidInput(f"blend weights must be finite, >= 0 and not all 0; got {w}")
    total = sum(w)
    return [x / total for x in w]


class StyleTransferLoss:
    """The Gatys loss for one content/style pair at one working size (module docstring).

    Parameters
    ----------
    extractor : artstyle.nst.FeatureExtractor
        Its ``fast_gradient`` picks :func:`artstyle.gram.fast_gram_matrix`
        (same values, cheaper gradient) instead of :func:`artstyle.gram.gram_matrix`.
    content, style : numpy.ndarray (H, W, 3) uint8 at working size
        (:func:`artstyle.nst.inputs.prepare_images`); ``style`` may also be a list of
        paintings (each at its own working size), blended with ``blend_weights``.
    weights : artstyle.config.LossWeights
        ``content_weight``, ``style_weight``, ``tv_weight``.
    blend_weights : sequence of float or None
        One weight >= 0 per painting, normalised to sum 1 (None = equal weights).
    mask : numpy.ndarray (H, W) float in [0, 1], or None
        Where the style applies (:func:`masked_gram_matrix`): the image's Gram matrices
        are taken over the mask's positions only; None = everywhere.
    compute_dtype : ``"float32"`` (default), ``"bfloat16"`` or ``"auto"``
        The dtype of the backbone's computations, for the targets and every call
        (:meth:`artstyle.nst.FeatureExtractor.__call__`); the loss itself is float32.

    Calling it with an image ``x`` of shape (1, H, W, 3), float32 RGB in [0, 1] (same
    H, W as ``content``) returns a dict of scalar tensors ``total``, ``content``,
    ``style``, ``tv`` (weighted terms). Traceable inside a ``tf.function``.
    """

    def __init__(self, extractor: Any, content: np.ndarray, style: np.ndarray | Sequence[np.ndarray],
                 weights: LossWeights = LossWeights(),
                 blend_weights: Sequence[float] | None = None, mask: np.ndarray | None = None,
                 compute_dtype: str = "float32"):
        import tensorflow as tf

        from artstyle.gram import fast_gram_matrix

        self.extractor = extractor
        self.content_weight = float(weights.content_weight)
        self.style_weight = float(weights.style_weight)
        self.tv_weight = float(weights.tv_weight)
        # The speed machinery beside the plain definition: the same Gram matrix with a
        # hand-written gradient when the extractor asks for it (nst.fast_gradient).
        self.gram = fast_gram_matrix if extractor.fast_gradient else gram_matrix
        content = as_rgb_uint8(content, what="content image")
        styles = [style] if isinstance(style, np.ndarray) else list(style)
        styles = [as_rgb_uint8(s, what="style image") for s in styles]
        self.blend_weights = normalised_blend_weights(blend_weights, len(styles))
        self.shape = content.shape
        self.compute_dtype = extractor.effective_compute_dtype(compute_dtype)
        c_feats, _ = extractor(tf.constant(content[None], tf.float32), self.compute_dtype)
        self.content_targets = [tf.constant(f) for f in c_feats]
        #: One list of per-layer target Gram matrices per painting.
        self.style_targets_per_painting = []
        for s in styles:
            _, s_feats = extractor(tf.constant(s[None], tf.float32), self.compute_dtype)
            self.style_targets_per_painting.append([tf.constant(self.gram(f)) for f in s_feats])
        self.style_targets = self.style_targets_per_painting[0]
        self.mask = None if mask is None else tf.constant(np.asarray(mask, np.float32))

    def __call__(self, image01: Any) -> dict[str, Any]:
        import tensorflow as tf

        c_feats, s_feats = self.extractor(image01 * 255.0, self.compute_dtype)
        c = tf.add_n([content_loss(f, t) for f, t in zip(c_feats, self.content_targets, strict=True)])
        grams = [self.gram(f) if self.mask is None else masked_gram_matrix(self.gram, f, self.mask)
                 for f in s_feats]
        s = tf.add_n([w * tf.add_n([style_loss(g, t) for g, t in zip(grams, targets, strict=True)])
                      for w, targets in zip(self.blend_weights, self.style_targets_per_painting,
                                            strict=True)])
        c = self.content_weight / len(c_feats) * c
        s = self.style_weight / len(s_feats) * s
        tv = self.tv_weight * total_variation_loss(image01)
        return {"total": c + s + tv, "content": c, "style": s, "tv": tv}


def loss_terms(extractor: Any, image: np.ndarray, content: np.ndarray,
               style: np.ndarray | Sequence[np.ndarray], weights: LossWeights = LossWeights(),
               blend_weights: Sequence[float] | None = None,
               compute_dtype: str = "float32") -> dict[str, float]:
    """The weighted Gatys loss terms of a finished image, whatever engine made it.

    The content and style images are brought to the image's working size as
    :func:`artstyle.nst.optimise.stylize` does (:func:`artstyle.nst.inputs.prepare_images`),
    so a Gatys result scores what its optimisation reached and a feed-forward result is
    judged on the same scale.

    Parameters
    ----------
    extractor : artstyle.nst.FeatureExtractor
        E.g. VGG19 with the ``stylize.vgg19`` layers (the stage's common referee).
    image, content : numpy.ndarray, (H, W, 3) uint8 RGB
        The result (enlarged to the extractor's ``min_side`` if smaller) and the photo
        (any size: resized to the result's).
    style : (h, w, 3) uint8 array or a list of them (blended with ``blend_weights``)
    weights : artstyle.config.LossWeights
    blend_weights : sequence of float or None
    compute_dtype : str
        As :class:`StyleTransferLoss`.

    Returns
    -------
    dict
        ``total``, ``content``, ``style``, ``tv`` as Python floats.
    """
    import tensorflow as tf

    from artstyle.nst.inputs import ensure_min_side, prepare_images

    image = ensure_min_side(as_rgb_uint8(image, what="result image"), extractor.min_side,
                            what="result image")
    h, w = image.shape[:2]
    styles = [style] if isinstance(style, np.ndarray) else list(style)
    pairs = [prepare_images(content, s, max_side=max(h, w), min_side=extractor.min_side)
             for s in styles]
    content_w = pairs[0][0]
    if content_w.shape[:2] != (h, w):
        from artstyle.images import resize_image

        content_w = resize_image(content_w, h, w)
    loss = StyleTransferLoss(extractor, content_w, [p[1] for p in pairs], weights,
                             blend_weights=blend_weights, compute_dtype=compute_dtype)
    terms = loss(tf.constant(image[None].astype(np.float32) / 255.0))
    return {k: float(v) for k, v in terms.items()}
