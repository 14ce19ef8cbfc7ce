"""``reports/patterns/index.html``: one self-contained page (inline style, relative images).

The page needs no network and no server: open the file in a browser, or copy the whole
``reports/patterns/`` folder elsewhere.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from artstyle.io import atomic_file

_STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.notice { background: #fff6d6; border-left: 4px solid #e0b000; padding: 0.6em 1em; }
img { max-width: 100%; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.small { color: #555; font-size: 0.9em; }
"""


@dataclass
class Section:
    """One part of the page.

    Attributes
    ----------
    title : str
    text : str
        Plain text (escaped), paragraphs separated by blank lines.
    images : list of str
        Paths relative to the page.
    table : pandas.DataFrame, optional
        Shown below the text.
    """

    title: str
    text: str = ""
    images: list[str] = field(default_factory=list)
    table: pd.DataFrame | None = None


def render_page(title: str, notice: str, intro: str, sections: list[Section]) -> str:
    """The page's HTML: a title, the dataset notice, an introduction and the sections.

    Returns
    -------
    str
        A complete HTML5 document; every text is escaped, images are referenced by the
        relative paths given.
    """
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>"]
    if notice:
        out.append(f'<p class="notice"><strong>Dataset notice:</strong> {html.escape(notice)}</p>')
    out += [f"<p>{html.escape(p)}</p>" for p in intro.split("\n\n") if p.strip()]
    out.append("<ul>" + "".join(f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>'
                                for i, s in enumerate(sections)) + "</ul>")
    for i, s in enumerate(sections):
        out.append(f'<h2 id="s{i}">{html.escape(s.title)}</h2>')
        out += [f"<p>{html.escape(p)}</p>" for p in s.text.split("\n\n") if p.strip()]
        if s.table is not None:
            out.append(s.table.to_html(index=False, float_format=lambda v: f"{v:.3f}",
                                       border=0, escape=True))
        out += [f'<p><a href="{html.escape(src)}"><img src="{html.escape(src)}" '
                f'alt="{html.escape(Path(src).stem)}" loading="lazy"></a></p>'
                for src in s.images]
    out.append('<p class="small">Written by the <code>patterns</code> stage of artstyle '
               "(<code>dvc repro patterns</code>).</p></body></html>")
    return "\n".join(out) + "\n"


def write_page(path: str | Path, title: str, notice: str, intro: str,
               sections: list[Section]) -> Path:
    """Write :func:`render_page` to ``path`` atomically (UTF-8)."""
    with atomic_file(path, "w", encoding="utf-8") as fh:
        fh.write(render_page(title, notice, intro, sections))
    return Path(path)
