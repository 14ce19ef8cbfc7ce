"""The dominant colours of a movement and its colour statistics.

A palette is k-means (scikit-learn) on the movement's pixels in CIELAB (D65, via
``skimage.color.rgb2lab``), where Euclidean distance roughly follows perceived colour
difference. K-means runs on the *distinct* colours, each weighted by its number of
pixels, so a colour's share of the palette is its share of the pixels (and an image of
two flat colours gives exactly those two colours and their shares). Pixels come from the
painted area of each prepared square only: the letterbox padding that ``prepare`` adds
around non-square paintings is left out (:func:`painted_box`).

Statistics per movement: mean saturation (HSV, in [0, 1]), mean lightness and the
lightness spread (standard deviation of L*, 0-100), and mean chroma (sqrt(a*^2 + b*^2)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Palette:
    """Dominant colours, largest share first.

    Attributes
    ----------
    rgb : ndarray of shape (k, 3), uint8
    lab : ndarray of shape (k, 3), float64
        CIELAB (L* in [0, 100]).
    share : ndarray of shape (k,), float64
        Fraction of the pixels nearest each colour; sums to 1.
    """

    rgb: np.ndarray
    lab: np.ndarray
    share: np.ndarray

    def hex(self) -> list[str]:
        """The colours as ``#rrggbb`` strings."""
        return ["#" + "".join(f"{int(v):02x}" for v in c) for c in self.rgb]


def painted_box(width: int, height: int, side: int) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of the painting inside its letterboxed square.

    Mirrors :func:`artstyle.images.resize_to_square` (``letterbox``): the longer side is
    scaled to ``side`` and the shorter one centred.

    Parameters
    ----------
    width, height : int
        The original painting's size (``manifest.csv``).
    side : int
        The prepared square's side.
    """
    ratio = side / max(width, height)
    new_w = min(side, max(1, round(width * ratio)))
    new_h = min(side, max(1, round(height * ratio)))
    top, left = (side - new_h) // 2, (side - new_w) // 2
    return top, left, top + new_h, left + new_w


def dominant_colours(pixels: np.ndarray, k: int, *, seed: int = 0) -> Palette:
    """The ``k`` dominant colours of a set of pixels (k-means in CIELAB, weighted by pixels).

    Parameters
    ----------
    pixels : ndarray of shape (..., 3), uint8
        RGB pixels (any leading shape: an image, a stack, a flat list).
    k : int
        Colours wanted; fewer are returned when there are fewer distinct colours.
    seed : int
        k-means' random state.

    Returns
    -------
    Palette
        Sorted by decreasing share.

    Raises
    ------
    ValueError
        No pixels, or ``k`` < 1.
    """
    from skimage.color import lab2rgb, rgb2lab
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    flat = np.asarray(pixels, np.uint8).reshape(-1, 3)
    if len(flat) == 0 or k < 1:
        raise ValueError(f"dominant_colours needs pixels and k >= 1 (got {len(flat)} pixels, "
                         f"k={k})")
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    lab = rgb2lab(colours[None].astype(np.float64) / 255.0)[0]
    k = min(k, len(colours))
    # One thread: a few thousand colours are quick, and OpenMP threads that wait for each
    # other cost far more than they save on a machine whose cores are busy.
    with threadpool_limits(1):
        km = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(lab, sample_weight=counts)
    weight = np.bincount(km.labels_, weights=counts, minlength=k)
    # Weighted means of each cluster's colours (KMeans' centres are those, up to tolerance).
    centres = np.stack([np.average(lab[km.labels_ == j], axis=0, weights=counts[km.labels_ == j])
                        for j in range(k)])
    order = np.argsort(-weight, kind="stable")
    centres, weight = centres[order], weight[order]
    rgb = np.clip(np.rint(lab2rgb(centres[None])[0] * 255.0), 0, 255).astype(np.uint8)
    return Palette(rgb=rgb, lab=centres, share=weight / weight.sum())


def colour_statistics(pixels: np.ndarray) -> dict[str, float]:
    """Colour statistics of a set of pixels.

    Parameters
    ----------
    pixels : ndarray of shape (..., 3), uint8
        RGB.

    Returns
    -------
    dict
        ``mean_saturation`` (HSV S, 0-1), ``mean_lightness`` and ``lightness_spread``
        (mean and standard deviation of CIELAB L*, 0-100), ``mean_chroma`` (CIELAB C*).
    """
    from skimage.color import rgb2hsv, rgb2lab

    flat = np.asarray(pixels, np.uint8).reshape(1, -1, 3).astype(np.float64) / 255.0
    hsv = rgb2hsv(flat)[0]
    lab = rgb2lab(flat)[0]
    return {
        "mean_saturation": float(hsv[:, 1].mean()),
        "mean_lightness": float(lab[:, 0].mean()),
        "lightness_spread": float(lab[:, 0].std()),
        "mean_chroma": float(np.hypot(lab[:, 1], lab[:, 2]).mean()),
    }


def movement_pixels(images: np.ndarray, boxes: list[tuple[int, int, int, int]],
                    max_pixels: int, seed: int) -> np.ndarray:
    """A random sample of the painted pixels of several images.

    Parameters
    ----------
    images : ndarray of shape (n, S, S, 3), uint8
    boxes : list of n (top, left, bottom, right)
        Painted areas (:func:`painted_box`).
    max_pixels : int
        At most this many pixels are returned (uniformly sampled without replacement).
    seed : int

    Returns
    -------
    ndarray of shape (m, 3), uint8
        ``m = min(max_pixels, painted pixels)``.
    """
    parts = [img[t:b, l:r].reshape(-1, 3) for img, (t, l, b, r) in zip(images, boxes)]
    flat = np.concatenate(parts) if parts else np.zeros((0, 3), np.uint8)
    if len(flat) > max_pixels:
        flat = flat[np.random.default_rng(seed).choice(len(flat), max_pixels, replace=False)]
    return flat
