"""``artstyle explain``: the top movements of one image, where the model looks (Grad-CAM)
and its nearest training paintings, as one PNG."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artstyle import paths
from artstyle.patterns import collection, gradcam, plots
from artstyle.patterns.report import embed


@dataclass(frozen=True)
class Look:
    """What a classifier sees in one image (:func:`look`).

    Attributes
    ----------
    top : list of (str, float)
        The most likely movements, by decreasing probability.
    square : ndarray of shape (S, S, 3), uint8
        The image as training images were prepared (letterboxed square, ``S`` the
        prepared side).
    heat : ndarray of shape (S, S), float32
        Grad-CAM of the most likely movement, upsampled to ``square``, in [0, 1].
    overlay : ndarray of shape (S, S, 3), uint8
        ``heat`` drawn over ``square`` (:func:`artstyle.patterns.gradcam.overlay`).
    x : ndarray of shape (1, s, s, 3), float32
        The model's input (``s`` its input side).
    proba : ndarray of shape (n_classes,), float32
    order : ndarray of int
        Indices of ``top`` into the class list.
    layer : str
        The convolutional layer Grad-CAM looked at.
    """

    top: list
    square: np.ndarray
    heat: np.ndarray
    overlay: np.ndarray
    x: np.ndarray
    proba: np.ndarray
    order: np.ndarray
    layer: str


def look(rgb: np.ndarray, classifier, gm: gradcam.GradCamModel | None = None, *,
         top: int = 3) -> Look:
    """The top movements of one RGB image and where the model looks (Grad-CAM).

    Parameters
    ----------
    rgb : ndarray of shape (H, W, 3), uint8
        The image (e.g. from :func:`artstyle.images.load_rgb_array`).
    classifier : (keras.Model, list of str, int, int)
        Model, classes, input side, prepared side (``artstyle.cli.load_classifier``).
    gm : GradCamModel, optional
        ``gradcam_model(model)``, when the caller keeps one for many images.
    top : int

    Returns
    -------
    Look
    """
    from PIL import Image

    from artstyle.data.dataset import resize_batch
    from artstyle.images import resize_to_square

    model, classes, input_size, side = classifier
    gm = gm or gradcam.gradcam_model(model)
    square = np.asarray(resize_to_square(Image.fromarray(rgb), side))
    x = resize_batch(square[None], input_size)
    maps, proba, _ = gradcam.grad_cam(gm, x)
    order = np.argsort(proba[0])[::-1][:top]
    heat = gradcam.upsample(maps, square.shape[:2])[0]
    return Look(top=[(classes[i], float(proba[0, i])) for i in order], square=square,
                heat=heat, overlay=gradcam.overlay(square, heat), x=x, proba=proba[0],
                order=order, layer=gm.layer)


def explain_image(image: str, classifier, out: str | Path, *, top: int = 3,
                  n_neighbours: int = 4, prepared_dir: str | Path = paths.PREPARED,
                  name: str = "model", notice: str = "") -> dict:
    """Top movements of one image, its Grad-CAM and its nearest training paintings, as one PNG.

    Parameters
    ----------
    image : str
        Any image file the safe loader accepts.
    classifier : (keras.Model, list of str, int, int)
        Model, classes, input side, prepared side (``artstyle.cli.load_classifier``).
    out : path
        The PNG to write.
    top, n_neighbours : int
    prepared_dir : path
        Training paintings for the neighbours; without it the PNG has none.
    name, notice : str
        For the title and caption.

    Returns
    -------
    dict
        ``top``: list of (movement, probability); ``layer``; ``neighbours``: list of
        (movement, distance), empty without prepared data.

    Raises
    ------
    artstyle.images.ImageRejected
        The file is not a usable image.
    """
    from artstyle.data.dataset import load_split, resize_batch
    from artstyle.images import load_rgb_array

    model, classes, input_size, side = classifier
    gm = gradcam.gradcam_model(model)
    seen = look(load_rgb_array(image), classifier, gm, top=top)
    square, x, best = seen.square, seen.x, seen.top[0][0]
    proba, order = seen.proba[None], seen.order
    rows = [("the image", [plots.Cell(square, Path(image).name),
                           plots.Cell(seen.overlay,
                                      f"Grad-CAM: {best} {proba[0, order[0]]:.0%}")], "")]
    neighbours = []
    if (Path(prepared_dir) / paths.MANIFEST_NAME).exists():
        train, _ = load_split(prepared_dir, "train")
        emb = embed(gm, model, resize_batch(train.images, input_size))
        q = embed(gm, model, x)
        idx, dist = collection.nearest_neighbours(q, emb, n_neighbours)
        neighbours = [(classes[train.labels[i]], float(d)) for i, d in zip(idx[0], dist[0])]
        rows.append(("nearest training paintings",
                     [plots.Cell(train.images[i], f"{classes[train.labels[i]]}\nd={d:.2f}")
                      for i, d in zip(idx[0], dist[0])], ""))
    top_text = ", ".join(f"{classes[i]} {proba[0, i]:.0%}" for i in order)
    plots.image_grid(out, rows, f"{Path(image).name} by {name}: {top_text}; Grad-CAM on "
                     f"{gm.layer}", notice)
    return {"top": [(classes[i], float(proba[0, i])) for i in order], "layer": gm.layer,
            "neighbours": neighbours}
