"""The figures of the ``patterns`` stage and of ``artstyle explain``.

Every figure is made with :func:`artstyle.figures.new_figure`, titled with
:func:`artstyle.figures.set_title` on a blank axis spanning the top of the figure (so a
long title is centred over the whole figure and wrapped to its width, the dataset notice
below) and written with :func:`artstyle.figures.save_figure`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artstyle.figures import new_figure, save_figure, set_title, wrap_to_width

CAPTION_SIZE = 7


@dataclass(frozen=True)
class Cell:
    """One picture of a grid.

    Attributes
    ----------
    image : ndarray of shape (H, W, 3), uint8
    caption : str
        Wrapped to the cell's width, shown above the picture.
    colour : str, optional
        Frame colour (e.g. the movement's).
    """

    image: np.ndarray
    caption: str = ""
    colour: str | None = None


def movement_colours(classes: list[str]) -> dict[str, tuple]:
    """A fixed colour per movement (``tab10``, ``tab20`` beyond 10 movements)."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(classes) <= 10 else "tab20"]
    return {c: cmap(i % cmap.N) for i, c in enumerate(classes)}


def _blank(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    ax.patch.set_visible(False)   # a row's text may run over the next cells
    for spine in ax.spines.values():
        spine.set_visible(False)


def _grid(n_rows: int, n_cols: int, cell: float, caption_lines: int):
    """A figure with a title axis over ``n_rows x n_cols`` picture axes."""
    cell_h = cell + 0.22 * caption_lines
    fig, axes = new_figure(
        n_cols * cell, 0.3 + n_rows * cell_h, nrows=n_rows + 1, ncols=n_cols, squeeze=False,
        gridspec_kw={"height_ratios": [0.3] + [cell_h] * n_rows})
    gs = axes[0, 0].get_gridspec()
    for ax in axes[0]:
        ax.remove()
    title_ax = fig.add_subplot(gs[0, :])
    title_ax.axis("off")
    return fig, title_ax, axes[1:]


def image_grid(path: str | Path, rows: list[tuple[str, list[Cell | None], str]], title: str,
               notice: str = "", *, cell: float = 1.35, caption_lines: int = 3,
               min_cols: int = 1) -> Path:
    """Rows of captioned pictures, each row labelled on its left.

    Parameters
    ----------
    path : path-like
        The PNG.
    rows : list of (label, cells, empty_text)
        ``cells``: pictures left to right, ``None`` for a gap; ``empty_text`` is written
        in the row when it has no picture (e.g. "no mistakes").
    title, notice : str
        Figure title and dataset notice (wrapped to the figure's width).
    cell : float
        Picture side in inches.
    caption_lines : int
        Lines of caption room above each picture.
    min_cols : int
        At least this many columns (keeps a figure with few pictures wide enough for
        its title).

    Returns
    -------
    pathlib.Path
    """
    n_cols = max([min_cols] + [len(cells) for _, cells, _ in rows])
    fig, title_ax, axes = _grid(max(1, len(rows)), n_cols, cell, caption_lines)
    for r, (label, cells, empty) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            _blank(ax)
            item = cells[c] if c < len(cells) else None
            if item is None:
                continue
            ax.imshow(item.image, interpolation="nearest")
            ax.set_anchor("S")   # spare height goes above the picture, to its caption
            if item.caption:
                ax.set_title(wrap_to_width(item.caption, 0.8 * cell, CAPTION_SIZE),
                             fontsize=CAPTION_SIZE)
            if item.colour is not None:
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_edgecolor(item.colour)
                    spine.set_linewidth(2.5)
        axes[r, 0].set_ylabel(wrap_to_width(label, cell * 1.2, 8), fontsize=8)
        if not any(cells) and empty:
            note = axes[r, 0].text(0.02, 0.5, empty, transform=axes[r, 0].transAxes,
                                   fontsize=8, va="center", ha="left", color="0.35")
            note.set_in_layout(False)   # it may run over the (empty) cells to its right
    set_title(title_ax, title, notice)
    return save_figure(fig, path)


def plot_embedding_map(path: str | Path, xy: np.ndarray, labels: np.ndarray,
                       is_test: np.ndarray, classes: list[str], title: str,
                       notice: str = "") -> Path:
    """The t-SNE map: one dot per painting coloured by movement, test paintings as triangles.

    Parameters
    ----------
    xy : ndarray of shape (n, 2)
    labels : ndarray of shape (n,), int
    is_test : ndarray of shape (n,), bool
    """
    colours = movement_colours(classes)
    fig, ax = new_figure(7.5, 6.5)
    for i, c in enumerate(classes):
        for test, marker, size in ((False, "o", 18), (True, "^", 46)):
            sel = (labels == i) & (is_test == test)
            if sel.any():
                ax.scatter(xy[sel, 0], xy[sel, 1], s=size, marker=marker, color=colours[c],
                           edgecolors="black" if test else "none", linewidths=0.7,
                           alpha=0.95 if test else 0.7, label=c if not test else None)
    ax.scatter([], [], marker="^", s=46, color="white", edgecolors="black",
               label="test painting")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    set_title(ax, title, notice)
    return save_figure(fig, path)


def plot_embedding_thumbnails(path: str | Path, xy: np.ndarray, labels: np.ndarray,
                              images: np.ndarray, subset: np.ndarray, classes: list[str],
                              title: str, notice: str = "", *, thumb_px: int = 40) -> Path:
    """The t-SNE map with thumbnails of ``subset``, framed in their movement's colour.

    Parameters
    ----------
    xy : ndarray of shape (n, 2)
    labels : ndarray of shape (n,), int
    images : ndarray of shape (n, S, S, 3), uint8
    subset : ndarray of int
        Rows drawn as thumbnails (the others as faint dots).
    thumb_px : int
        Thumbnail side in output pixels (110 dpi).
    """
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    colours = movement_colours(classes)
    fig, ax = new_figure(9, 8)
    ax.scatter(xy[:, 0], xy[:, 1], s=6, color=[colours[classes[i]] for i in labels], alpha=0.4)
    zoom = thumb_px / images.shape[1] * 110 / fig.dpi
    for i in subset:
        box = AnnotationBbox(OffsetImage(images[i], zoom=zoom), (xy[i, 0], xy[i, 1]),
                             frameon=True, pad=0.15,
                             bboxprops={"edgecolor": colours[classes[labels[i]]],
                                        "linewidth": 2})
        ax.add_artist(box)
    for c in classes:
        ax.scatter([], [], s=30, marker="s", color=colours[c], label=c)
    pad = 0.06 * (xy.max(axis=0) - xy.min(axis=0) + 1e-6)
    ax.set_xlim(xy[:, 0].min() - pad[0], xy[:, 0].max() + pad[0])
    ax.set_ylim(xy[:, 1].min() - pad[1], xy[:, 1].max() + pad[1])
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    set_title(ax, title, notice)
    return save_figure(fig, path)


def plot_palettes(path: str | Path, palettes: dict, stats: dict[str, dict[str, float]],
                  title: str, notice: str = "") -> Path:
    """One colour bar per movement: its dominant colours, widths proportional to their share.

    Parameters
    ----------
    palettes : dict of movement -> :class:`artstyle.patterns.palettes.Palette`
    stats : dict of movement -> dict
        ``mean_saturation`` and ``lightness_spread`` are written beside each bar.
    """
    names = list(palettes)
    fig, ax = new_figure(9, 0.8 + 0.6 * len(names))
    for row, name in enumerate(names):
        pal = palettes[name]
        left = 0.0
        for j, (rgb, share, hexa) in enumerate(zip(pal.rgb, pal.share, pal.hex())):
            ax.barh(row, share, left=left, color=np.asarray(rgb) / 255.0, edgecolor="white",
                    height=0.8)
            if share >= 0.09:
                lightness = pal.lab[j, 0]
                ax.text(left + share / 2, row, f"{hexa}\n{share:.0%}", ha="center",
                        va="center", fontsize=6.5, color="black" if lightness > 55 else "white")
            left += share
        s = stats.get(name, {})
        if s:
            ax.text(1.02, row, f"saturation {s['mean_saturation']:.2f}\n"
                               f"L* spread {s['lightness_spread']:.1f}",
                    va="center", fontsize=7.5, transform=ax.get_yaxis_transform())
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the movement's pixels")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    set_title(ax, title, notice)
    return save_figure(fig, path)


def note_figure(path: str | Path, text: str, notice: str = "") -> None:
    """A small PNG that says in words why a figure has nothing to show."""
    fig, ax = new_figure(6, 1.6)
    _blank(ax)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    set_title(ax, "", notice)
    save_figure(fig, path)
