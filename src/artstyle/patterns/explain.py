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
    classifier : artstyle.members.base.TrainedClassifier
        Any member. Grad-CAM looks into a Keras network (``keras_model``), or through a
        style head into its frozen network (gradient x activation of the deepest
        described layer, :func:`artstyle.patterns.gradcam.style_head_grad_cam`, on the
        whole painting); for the other kinds ``heat`` is all zero, ``overlay`` is the
        square and ``layer`` is empty.
    gm : GradCamModel, optional
        ``gradcam_model(classifier.keras_model)``, when the caller keeps one for many images.
    top : int

    Returns
    -------
    Look
    """
    from artstyle.data.dataset import resize_batch

    square = classifier.prepare(rgb)
    x = resize_batch(square[None], classifier.input_size)
    if classifier.keras_model is None and "descriptor" in classifier.parts:
        parts = classifier.parts
        proba = classifier.proba_squares(square[None])[0]      # patches averaged, as scored
        maps, _, _ = gradcam.style_head_grad_cam(
            parts["descriptor"], parts["head"], resize_batch(square[None], parts["input_size"]),
            class_index=np.array([int(np.argmax(proba))]), n_classes=len(classifier.classes))
        heat = gradcam.upsample(maps, square.shape[:2])[0]
        overlay, layer = gradcam.overlay(square, heat), parts["descriptor"].deepest
    elif classifier.keras_model is None:
        proba = classifier.proba_squares(square[None])[0]
        heat = np.zeros(square.shape[:2], np.float32)
        overlay, layer = square, ""
    else:
        gm = gm or gradcam.gradcam_model(classifier.keras_model)
        maps, p, _ = gradcam.grad_cam(gm, x)
        proba = p[0]
        heat = gradcam.upsample(maps, square.shape[:2])[0]
        overlay, layer = gradcam.overlay(square, heat), gm.layer
    order = np.argsort(proba)[::-1][:top]
    return Look(top=[(classifier.classes[i], float(proba[i])) for i in order], square=square,
                heat=heat, overlay=overlay, x=x, proba=proba, order=order, layer=layer)


def explain_image(image: str, classifier, out: str | Path, *, top: int = 3,
                  n_neighbours: int = 4, prepared_dir: str | Path = paths.PREPARED,
                  name: str = "model", notice: str = "") -> dict:
    """Top movements of one image, its Grad-CAM and its nearest training paintings, as one PNG.

    Parameters
    ----------
    image : str
        Any image file the safe loader accepts.
    classifier : artstyle.members.base.TrainedClassifier
        Any member; Grad-CAM and the nearest training paintings (in the network's
        embedding) need one with a Keras network.
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
        ``top``: list of (movement, probability); ``layer`` (empty without Grad-CAM) and
        ``no_heat_map`` (why there is none, else empty); ``neighbours``: list of
        (movement, distance), empty without prepared data or a Keras network.

    Raises
    ------
    artstyle.images.ImageRejected
        The file is not a usable image.
    """
    from artstyle.data.dataset import load_split, resize_batch
    from artstyle.images import load_rgb_array
    from artstyle.members.base import A_KIND

    model, classes = classifier.keras_model, classifier.classes
    gm = gradcam.gradcam_model(model) if model is not None else None
    seen = look(load_rgb_array(image), classifier, gm, top=top)
    square, x, best = seen.square, seen.x, seen.top[0][0]
    proba, order = seen.proba[None], seen.order
    no_heat = "" if seen.layer else f"{A_KIND[classifier.kind]} member has no feature map"
    rows = [("the image", [plots.Cell(square, Path(image).name),
                           plots.Cell(seen.overlay,
                                      f"Grad-CAM: {best} {proba[0, order[0]]:.0%}" if seen.layer
                                      else f"{best} {proba[0, order[0]]:.0%} (no Grad-CAM)")],
             "")]
    neighbours = []
    if gm is not None and (Path(prepared_dir) / paths.MANIFEST_NAME).exists():
        train, _ = load_split(prepared_dir, "train")
        emb = embed(gm, model, resize_batch(train.images, classifier.input_size))
        q = embed(gm, model, x)
        idx, dist = collection.nearest_neighbours(q, emb, n_neighbours)
        neighbours = [(classes[train.labels[i]], float(d)) for i, d in zip(idx[0], dist[0])]
        rows.append(("nearest training paintings",
                     [plots.Cell(train.images[i], f"{classes[train.labels[i]]}\nd={d:.2f}")
                      for i, d in zip(idx[0], dist[0])], ""))
    top_text = ", ".join(f"{classes[i]} {proba[0, i]:.0%}" for i in order)
    where = f"Grad-CAM on {seen.layer}" if seen.layer else no_heat
    # As wide as a row of neighbours even without one: room for the title and captions.
    plots.image_grid(out, rows, f"{Path(image).name} by {name}: {top_text}; {where}", notice,
                     min_cols=max(4, n_neighbours))
    return {"top": [(classes[i], float(proba[0, i])) for i in order],
            "layer": seen.layer, "no_heat_map": no_heat, "neighbours": neighbours}
