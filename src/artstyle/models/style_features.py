"""Style descriptors: statistics of frozen ImageNet feature maps (VGG19, EfficientNet-Lite0).

A painting's style is carried less by *what* its feature maps show than by their
statistics (Gatys, Ecker & Bethge 2015, "A Neural Algorithm of Artistic Style",
arXiv:1508.06576). Two families of statistics are computed here, per layer ``l`` of
shape (H_l, W_l, C_l):

* per-channel **mean and standard deviation** over the positions, 2 * C_l numbers: the
  statistics AdaIN aligns to transfer a style (Huang & Belongie 2017, "Arbitrary Style
  Transfer in Real-time with Adaptive Instance Normalization", ICCV);
* the **Gram matrix** ``G = F^T F / (H_l W_l)`` (:func:`artstyle.gram.gram_matrix`,
  the one style transfer matches), of which the upper triangle, C_l (C_l + 1) / 2
  numbers, is kept: the "deep correlation features" that beat fully-connected features
  for image style (Chu & Wu 2018, "Image Style Classification based on Learnt Deep
  Correlation Features", IEEE Transactions on Multimedia 20(9)). Gram features are
  signed-square-rooted (``sign(g) sqrt(|g|)``), the usual power normalisation of
  second-order features; the head compresses them (PCA fitted on the training split).

**Patches** (:mod:`artstyle.patches`): with ``patches: 5`` or ``10`` every view of a
painting is described; the head is trained on every patch with its painting's label, and
a painting's class probabilities are the mean over its patches.

The stage ``style_features@<set>`` stores the descriptors of every split in
``data/features/style_<set>.npz`` (:func:`artstyle.features.save_features`: rows are
painting-major, ``P`` rows per painting, ids ``<content hash>#<patch>``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from artstyle.patches import patch_images

logger = logging.getLogger(__name__)

def gram_upper(features: Any) -> np.ndarray:
    """Upper triangle (diagonal included) of the Gram matrix of each feature map.

    Parameters
    ----------
    features : array-like or tf.Tensor, shape (B, H, W, C) float
        A batch of feature maps.

    Returns
    -------
    ndarray of shape (B, C * (C + 1) // 2), float32
        ``G[i, j]`` for ``i <= j`` in row-major order, ``G = F^T F / (H W)``
        (:func:`artstyle.gram.gram_matrix`, Gatys et al. 2015).
    """
    from artstyle.gram import gram_matrix

    g = np.asarray(gram_matrix(features), dtype=np.float32)
    if g.ndim == 2:
        g = g[None]
    rows, cols = np.triu_indices(g.shape[-1])
    return g[:, rows, cols]


def mean_std(features: Any, eps: float = 1e-8) -> np.ndarray:
    """Per-channel mean and standard deviation over the positions (AdaIN statistics).

    Parameters
    ----------
    features : array-like, shape (B, H, W, C) float

    Returns
    -------
    ndarray of shape (B, 2 * C), float32
        The C means, then the C standard deviations ``sqrt(var + eps)``
        (Huang & Belongie 2017).
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 4:
        raise ValueError(f"expected feature maps of shape (B, H, W, C), got {f.shape}")
    mu = f.mean(axis=(1, 2))
    sd = np.sqrt(f.var(axis=(1, 2)) + eps)
    return np.concatenate([mu, sd], axis=1).astype(np.float32)


def signed_sqrt(x: np.ndarray) -> np.ndarray:
    """Power normalisation ``sign(x) * sqrt(|x|)`` of second-order features."""
    return (np.sign(x) * np.sqrt(np.abs(x))).astype(np.float32)


class StyleDescriptor:
    """Mean/std and Gram statistics of layers of a frozen ImageNet network, one vector
    per image.

    Parameters
    ----------
    weights : path or None
        ImageNet weights of ``backbone`` (``models/pretrained/vgg19_notop.weights.h5``,
        ``models/pretrained_efficientnet/efficientnet_lite0.weights.h5``); None for seeded
        random weights (tests).
    stat_layers : sequence of str
        Layers described by their per-channel mean and standard deviation.
    gram_layers : sequence of str
        Layers described by the upper triangle of their Gram matrix (signed square root).
    backbone : {"vgg19", "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}
        The network (:data:`artstyle.config.BACKBONE_LAYERS` lists its layers): VGG19's
        16 conv layers (:mod:`artstyle.models.vgg19`) or an EfficientNet-Lite's 7 stage
        outputs and head (:mod:`artstyle.models.efficientnet_lite`).
    seed : int
        Seed of the random weights (``weights=None`` only).

    Attributes
    ----------
    dim : int
        Length of one descriptor: ``sum(2 C_l) + sum(C_l (C_l + 1) / 2)``.
    channels : dict of str -> int
        ``C_l`` of each described layer.
    deepest : str
        The deepest described layer.

    Raises
    ------
    ValueError
        No layer, or a layer ``backbone`` does not have.
    """

    def __init__(self, weights: Any, stat_layers: Sequence[str], gram_layers: Sequence[str],
                 *, backbone: str = "vgg19", seed: int = 0) -> None:
        import keras

        from artstyle.config import BACKBONE_LAYERS

        if backbone not in BACKBONE_LAYERS:
            raise ValueError(f"unknown backbone '{backbone}'; known: {', '.join(BACKBONE_LAYERS)}")
        known = BACKBONE_LAYERS[backbone]
        unknown = sorted((set(stat_layers) | set(gram_layers)) - set(known))
        if unknown:
            raise ValueError(f"unknown {backbone} layer(s) {unknown}; known: {', '.join(known)}")
        if not stat_layers and not gram_layers:
            raise ValueError("a style descriptor needs at least one layer")
        self.backbone = backbone
        self.stat_layers = list(stat_layers)
        self.gram_layers = list(gram_layers)
        names = list(dict.fromkeys([*self.stat_layers, *self.gram_layers]))
        if backbone == "vgg19":
            from artstyle.models.vgg19 import build_vgg19_notop, vgg_preprocess

            net, self._preprocess = build_vgg19_notop(weights, seed=seed), vgg_preprocess
        else:
            from artstyle.models.efficientnet_lite import (
                build_efficientnet_lite,
                preprocess,
            )

            net = build_efficientnet_lite(backbone.removeprefix("efficientnet_"), weights,
                                          include_top=False, seed=seed)
            self._preprocess = preprocess
        # The model ends at the deepest layer asked for: nothing deeper runs.
        self._names = names
        self._model = keras.Model(net.input, [net.get_layer(n).output for n in names],
                                  name=f"{backbone}_style")
        self.channels = channels = {n: int(net.get_layer(n).output.shape[-1]) for n in names}
        self.dim = (sum(2 * channels[n] for n in self.stat_layers)
                    + sum(channels[n] * (channels[n] + 1) // 2 for n in self.gram_layers))
        self.deepest = max(names, key=known.index)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Descriptors of a batch.

        Parameters
        ----------
        images : ndarray of shape (B, H, W, 3), RGB in [0, 255] (uint8 or float)

        Returns
        -------
        ndarray of shape (B, dim), float32
        """
        x = self._preprocess(np.asarray(images, dtype=np.float32))
        outs = self._model(x, training=False)
        if len(self._names) == 1:
            outs = [outs]
        maps = dict(zip(self._names, outs))
        parts = [mean_std(maps[n].numpy()) for n in self.stat_layers]
        parts += [signed_sqrt(gram_upper(maps[n])) for n in self.gram_layers]
        return np.concatenate(parts, axis=1)

    def describe(self, images: np.ndarray, *, patches: int = 1, fraction: float = 0.75,
                 batch_size: int = 8, desc: str = "style features") -> tuple[np.ndarray, dict]:
        """Descriptors of every patch of every image, in batches, with a progress bar.

        Parameters
        ----------
        images : ndarray of shape (n, S, S, 3), uint8
        patches, fraction
            See :func:`patch_images`.
        batch_size : int
            Paintings per forward pass.

        Returns
        -------
        (ndarray of shape (n * patches, dim) float32, dict)
            Painting-major descriptors and timing: ``images``, ``seconds``,
            ``images_per_second`` (paintings, all their patches included).
        """
        from tqdm.auto import tqdm

        out = []
        t0 = time.perf_counter()
        for i in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch"):
            out.append(self(patch_images(images[i:i + batch_size], patches, fraction)))
        seconds = time.perf_counter() - t0
        X = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        return X, {"images": len(images), "seconds": round(seconds, 2),
                   "images_per_second": round(len(images) / max(seconds, 1e-9), 2)}
