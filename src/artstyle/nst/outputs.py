"""What a style transfer leaves behind: SSIM to the photo, panels, loss curves."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from artstyle.figures import new_figure, save_figure
from artstyle.images import as_rgb_uint8, resize_image


def ssim_to_content(result: np.ndarray, content: np.ndarray) -> float:
    """Structural similarity (SSIM) of the result to the content image.

    ``skimage.metrics.structural_similarity(..., channel_axis=-1, data_range=255)``;
    the content is first resized (Lanczos) to the result's size if they differ.
    Both images need sides >= 7 px (SSIM window).

    Returns
    -------
    float in [-1, 1]; 1 = identical structure.
    """
    from skimage.metrics import structural_similarity

    result = as_rgb_uint8(result, what="result image")
    content = resize_image(as_rgb_uint8(content, what="content image"), *result.shape[:2])
    return float(structural_similarity(result, content, channel_axis=-1, data_range=255))


def save_panel(content: np.ndarray, style: np.ndarray, result: np.ndarray, path: str | os.PathLike, *,
               titles: Sequence[str] = ("content", "style", "result"), dpi: int = 120) -> Path:
    """Save a PNG panel ``content | style | result`` with titles (matplotlib, atomic write).

    Returns the written path.
    """
    images = [as_rgb_uint8(im) for im in (content, style, result)]
    widths = [im.shape[1] / im.shape[0] for im in images]
    fig, axes = new_figure(3.2 * sum(widths) + 0.4, 3.6, ncols=3,
                           gridspec_kw={"width_ratios": widths})
    for ax, im, title in zip(axes, images, titles, strict=True):
        ax.imshow(im)
        ax.set_title(f"{title} ({im.shape[1]}x{im.shape[0]})", fontsize=9)
        ax.axis("off")
    return save_figure(fig, path, dpi=dpi)


def plot_losses(history: Sequence[Mapping[str, float]] | Mapping[str, Sequence[Mapping[str, float]]],
                path: str | os.PathLike, *, x: str = "seconds",
                keys: Iterable[str] | None = None, title: str | None = None,
                hline: float | None = None, dpi: int = 120) -> Path:
    """Save loss curves (log-scale y) as a PNG (atomic write).

    Parameters
    ----------
    history : list of records (one run; plots ``total``, ``content``, ``style``, ``tv``)
        or a mapping ``label -> records`` (several runs; plots ``total`` of each).
    x : ``"seconds"`` or ``"step"``
    keys : loss keys to plot (default as above).
    hline : optional horizontal reference line (e.g. a target loss).

    Non-positive and non-finite values are skipped (log scale).
    """
    runs = dict(history) if isinstance(history, Mapping) else {"": history}
    keys = tuple(keys) if keys is not None else (
        ("total",) if len(runs) > 1 else ("total", "content", "style", "tv"))
    fig, ax = new_figure(7, 4.2)
    for label, recs in runs.items():
        for key in keys:
            pts = [(r[x], r[key]) for r in recs if key in r and math.isfinite(r[key]) and r[key] > 0]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.plot(xs, ys, label=" ".join(p for p in (label, key) if p), lw=1.2)
    if hline is not None and hline > 0:
        ax.axhline(hline, color="k", ls="--", lw=0.8, label=f"target {hline:.4g}")
    ax.set_yscale("log")
    ax.set_xlabel("seconds" if x == "seconds" else "loss evaluations")
    ax.set_ylabel("loss (weighted terms)")
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=dpi)
