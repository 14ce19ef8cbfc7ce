"""Figures keep their whole title and dataset notice inside the image."""

from __future__ import annotations

import numpy as np
from PIL import Image

from artstyle.evaluation import plot_confusion
from artstyle.figures import new_figure, save_figure, set_title, wrap_to_width

NOTICE = ("synthetic sample dataset: not real paintings. " * 6).strip()


def _texts_inside(fig) -> list[tuple[str, float, float]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    return [(t.get_text()[:20], t.get_window_extent(renderer).x0, t.get_window_extent(renderer).x1)
            for t in [*fig.texts, *(ax.title for ax in fig.axes)] if t.get_text()]


def test_title_and_notice_fit_the_figure_width(tmp_path):
    fig, ax = new_figure(5, 3)
    ax.plot([0, 1], [0, 1])
    set_title(ax, "A long title that would run off a narrow figure " * 2, NOTICE)
    save_figure(fig, tmp_path / "f.png")
    width = fig.bbox.width
    texts = _texts_inside(fig)
    assert len(texts) == 2                      # the title and the notice caption
    for text, x0, x1 in texts:
        assert 0 <= x0 and x1 <= width, (text, x0, x1, width)
    assert Image.open(tmp_path / "f.png").size[0] <= 5 * 110 + 10   # no text widened it


def test_wrap_keeps_line_breaks_and_words():
    text = wrap_to_width("one two three four five six\nseven", 1.0, 10)
    assert text.split("\n")[-1] == "seven"
    assert text.replace("\n", " ").split() == ["one", "two", "three", "four", "five", "six", "seven"]


def test_confusion_png_shows_the_notice(tmp_path):
    y = np.array([0, 1, 2, 1])
    plot_confusion(y, y, ["a", "b", "c"], tmp_path / "c.png", "m: test", NOTICE)
    assert (tmp_path / "c.png").stat().st_size > 1000
    # The caption adds height below the square plot: the image is taller than wide.
    w, h = Image.open(tmp_path / "c.png").size
    assert h > w
