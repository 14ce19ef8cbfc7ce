"""``artstyle explain``: the top movements of one image, where the model looks (Grad-CAM)
and its nearest training paintings, as one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from artstyle import paths
from artstyle.patterns import collection, gradcam, plots
from artstyle.patterns.report import embed


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
    from PIL import Image

    from artstyle.data.dataset import load_split, resize_batch
    from artstyle.images import load_rgb_array, resize_to_square

    model, classes, input_size, side = classifier
    square = np.asarray(resize_to_square(Image.fromarray(load_rgb_array(image)), side))
    x = resize_batch(square[None], input_size)
    gm = gradcam.gradcam_model(model)
    maps, proba, _ = gradcam.grad_cam(gm, x)
    order = np.argsort(proba[0])[::-1][:top]
    best = classes[order[0]]
    heat = gradcam.upsample(maps, square.shape[:2])[0]
    rows = [("the image", [plots.Cell(square, Path(image).name),
                           plots.Cell(gradcam.overlay(square, heat),
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
