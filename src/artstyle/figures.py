"""Figures: matplotlib without a display, titles that fit, atomic PNG writes.

Every PNG the project writes goes through :func:`new_figure` and :func:`save_figure`:
an object-oriented ``matplotlib.figure.Figure`` (no pyplot state, no GUI backend), a
title and dataset notice wrapped to the figure's width by :func:`set_title` so that
neither runs off the image, and a write that never leaves half a file.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

from artstyle.io import atomic_path

#: Average glyph width of matplotlib's default font, as a fraction of the font size.
_GLYPH_WIDTH = 0.6


def new_figure(width: float, height: float, **subplots: Any) -> tuple[Any, Any]:
    """A figure of ``width`` x ``height`` inches and its axes.

    Parameters
    ----------
    width, height : float
        Inches (at the default 110 dpi of :func:`save_figure`, 1 inch = 110 px).
    **subplots
        Passed to ``Figure.subplots`` (e.g. ``ncols=3``, ``gridspec_kw``).

    Returns
    -------
    (matplotlib.figure.Figure, Axes or array of Axes)
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(**subplots)


def wrap_to_width(text: str, width_in: float, fontsize: float) -> str:
    """``text`` wrapped into lines that fit ``width_in`` inches at ``fontsize`` points.

    Existing line breaks are kept; each line is wrapped on its own.
    """
    chars = max(20, int(width_in * 72 / (fontsize * _GLYPH_WIDTH)))
    return "\n".join(textwrap.fill(line, chars) if line else "" for line in text.split("\n"))


def set_title(ax: Any, title: str, notice: str = "", *, fontsize: float = 10) -> None:
    """Title ``ax`` with ``title`` and put the dataset ``notice`` as a caption below the figure.

    Both are wrapped to the figure's width, so the whole text stays inside the image
    (:func:`save_figure` writes a bounding box tight around every artist, the caption
    included); the plot itself keeps its size.
    """
    fig = ax.get_figure()
    width = fig.get_figwidth() * 0.95
    ax.set_title(wrap_to_width(title, width, fontsize), fontsize=fontsize)
    if notice:
        fig.text(0.5, 0.0, wrap_to_width(notice, width, fontsize - 2), ha="center", va="top",
                 fontsize=fontsize - 2, style="italic", color="0.3")


def save_figure(fig: Any, path: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically, its bounding box tight around every artist.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return Path(path)
