"""Patches: several views of a painting, and the mean of their class probabilities.

``patches: 5`` is the whole painting (resized to the crop side) plus its four corner
crops of ``fraction`` of the side; ``patches: 10`` adds their mirror images; ``patches:
1`` is the whole painting alone. A painting's class probabilities are the mean over its
patches (:func:`vote`), as in the five-patch fusion of Sandoval, Pirogova & Lech (2019),
"Two-Stage Deep Learning Approach to the Classification of Fine-Art Paintings", IEEE
Access 7. Rows are painting-major: ``patches`` consecutive rows per painting.
"""

from __future__ import annotations

import numpy as np

#: Patch layouts: number of patches per painting -> (crops, mirrored).
PATCH_LAYOUTS: dict[int, str] = {
    1: "the whole painting",
    5: "the whole painting + 4 corner crops",
    10: "the whole painting + 4 corner crops, each also mirrored",
}


def patch_images(images: np.ndarray, patches: int, fraction: float) -> np.ndarray:
    """The patches of each image, painting-major: ``patches`` rows per painting.

    Parameters
    ----------
    images : ndarray of shape (n, S, S, 3)
    patches : {1, 5, 10}
        See :data:`PATCH_LAYOUTS`: the whole image (resized to the crop side so that
        every patch has one shape), then the 4 corner crops, then (10) their mirrors.
    fraction : float in (0, 1]
        Side of a crop relative to the image side.

    Returns
    -------
    ndarray of shape (n * patches, s, s, 3), float32, s = round(fraction * S)
        (s = S for ``patches: 1``.)
    """
    if patches not in PATCH_LAYOUTS:
        raise ValueError(f"patches must be one of {sorted(PATCH_LAYOUTS)}, got {patches}")
    x = np.asarray(images, dtype=np.float32)
    if patches == 1:
        return x
    import tensorflow as tf

    n, side = x.shape[0], x.shape[1]
    s = max(8, round(fraction * side))
    o = side - s
    whole = tf.image.resize(x, (s, s), antialias=True).numpy()
    corners = [x[:, a:a + s, b:b + s] for a, b in ((0, 0), (0, o), (o, 0), (o, o))]
    views = [whole, *corners]
    if patches == 10:
        views += [v[:, :, ::-1] for v in views]
    return np.stack(views, axis=1).reshape(n * patches, s, s, 3)


def vote(proba: np.ndarray, patches: int) -> np.ndarray:
    """Mean class probabilities over each painting's patches.

    Parameters
    ----------
    proba : ndarray of shape (n * patches, k)
        Painting-major rows (as :func:`patch_images` makes them).
    patches : int

    Returns
    -------
    ndarray of shape (n, k), float32; rows sum to one when the inputs' rows do.
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or len(p) % patches:
        raise ValueError(f"{len(p)} rows are not a whole number of {patches} patches")
    return p.reshape(len(p) // patches, patches, p.shape[1]).mean(axis=1).astype(np.float32)

