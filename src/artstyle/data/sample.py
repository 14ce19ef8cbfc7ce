"""Embedded, deterministic, SYNTHETIC sample dataset of procedural painting techniques.

The pipeline's default data source ``sample`` must run anywhere, offline, in minutes.
It is generated here from photographs that ship inside the project's dependencies
(no download): scikit-learn's ``load_sample_image('china.jpg' | 'flower.jpg')`` and the
scikit-image images bundled in its wheel (``astronaut``, ``coffee``, ``chelsea``,
``rocket``). Each class is one procedural non-photorealistic rendering (NPR)
technique applied to random square crops of those same photos, so that the
*technique* (texture, stroke and edge statistics) and not the content separates the
classes:

==========================  ===========================================================
Class folder                Technique
==========================  ===========================================================
``Pointillism``             dense coloured dots sampled from the photo on a toned ground
``Posterised-outline``      flat median-cut colour palette with dark Canny edge outlines
``Brush-strokes``           short strokes oriented along the isophotes (perpendicular to
                            the local intensity gradient), over a blurred underpainting
``Mosaic``                  SLIC superpixel tesserae filled with their mean colour,
                            separated by grout lines
``Watercolour``             quantised soft washes, wet blur, edge darkening, pigment
                            dilution and paper granulation
==========================  ===========================================================

Sources followed: Haeberli, "Paint by numbers: abstract image representations",
SIGGRAPH 1990 (dots / strokes sampled from a source image); Hertzmann, "Painterly
rendering with curved brush strokes of multiple sizes", SIGGRAPH 1998 (strokes
oriented normal to the gradient); Curtis et al., "Computer-generated watercolor",
SIGGRAPH 1997 (edge darkening, pigment granulation); Achanta et al., "SLIC
superpixels", TPAMI 2012 (mosaic tiles).

Layout written by :func:`generate_sample`::

    <out_dir>/<ClassName>/<ClassName>_<nnn>.jpg

The class folders are the only entries of ``out_dir`` (the dataset scanner treats the
top-level folders as classes); the provenance text for reports is
:data:`SAMPLE_NOTICE`.
"""

from __future__ import annotations

import difflib
import functools
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter
from tqdm.auto import tqdm

from artstyle.errors import ArtstyleError
from artstyle.io import atomic_dir

logger = logging.getLogger(__name__)

__all__ = [
    "SAMPLE_CLASSES",
    "SAMPLE_NOTICE",
    "SAMPLE_SOURCES",
    "SampleClassError",
    "generate_sample",
    "render_sample_image",
    "class_counts",
    "sample_notice",
    "select_sample_classes",
]

#: Class (folder) names, one per procedural painting technique, in label order.
SAMPLE_CLASSES: tuple[str, ...] = (
    "Pointillism",
    "Posterised-outline",
    "Brush-strokes",
    "Mosaic",
    "Watercolour",
)

#: Photographs the crops are taken from; all ship with scikit-learn / scikit-image.
SAMPLE_SOURCES: tuple[str, ...] = (
    "sklearn:china.jpg",
    "sklearn:flower.jpg",
    "skimage:astronaut",
    "skimage:coffee",
    "skimage:chelsea",
    "skimage:rocket",
)

_TECHNIQUE_WORDS = {"Pointillism": "dots", "Posterised-outline": "posterisation + outlines",
                    "Brush-strokes": "gradient-oriented brush strokes",
                    "Mosaic": "SLIC mosaic", "Watercolour": "watercolour washes"}


def sample_notice(classes: Iterable[str] = ()) -> str:
    """Provenance text for reports produced from the ``sample`` source.

    Parameters
    ----------
    classes : iterable of str
        ``data.classes`` (see :func:`select_sample_classes`); empty = all.

    Returns
    -------
    str
        One paragraph naming the classes generated; :data:`SAMPLE_NOTICE` for all.
    """
    chosen = select_sample_classes(classes)
    return (
        "synthetic sample dataset: not real paintings. "
        f"{len(chosen)} classes ({', '.join(chosen)}), each a procedural "
        f"painting technique ({', '.join(_TECHNIQUE_WORDS[c] for c in chosen)}) rendered by "
        "artstyle.data.sample on "
        "random crops of 6 photographs bundled with scikit-learn (china.jpg, flower.jpg) "
        "and scikit-image (astronaut, coffee, chelsea, rocket). Accuracy on it shows the "
        "pipeline works end to end; it says nothing about recognising art movements."
    )


_JPEG_QUALITY = 90
_MIN_SIDE = 32
_SUPERSAMPLE = 2  # render at 2x the output side, then Lanczos-downsample (anti-aliasing)


# --------------------------------------------------------------------------- sources
@functools.cache
def _source_photos() -> tuple[np.ndarray, ...]:
    """Load the bundled photographs once; each is (H, W, 3) uint8 RGB."""
    from skimage import data as skdata
    from sklearn.datasets import load_sample_image

    photos = []
    for name in SAMPLE_SOURCES:
        lib, key = name.split(":")
        arr = load_sample_image(key) if lib == "sklearn" else getattr(skdata, key)()
        arr = np.ascontiguousarray(arr[..., :3], dtype=np.uint8)
        photos.append(arr)
    return tuple(photos)


def _random_crop(rng: np.random.Generator, work: int) -> Image.Image:
    """Random square crop (position, scale, horizontal flip) resized to ``work`` px,
    with a mild brightness / saturation / contrast jitter common to all classes."""
    photos = _source_photos()
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    c = int(round(rng.uniform(0.30, 0.85) * min(h, w)))
    y0 = int(rng.integers(0, h - c + 1))
    x0 = int(rng.integers(0, w - c + 1))
    img = Image.fromarray(photo[y0 : y0 + c, x0 : x0 + c])
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    img = img.resize((work, work), Image.Resampling.LANCZOS)
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.8, 1.3))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.85, 1.15))
    return img


def _jitter_colours(rng: np.random.Generator, colours: np.ndarray, sd: float) -> list[tuple]:
    """Add N(0, sd) noise per colour (uint8 RGB rows) and return tuples for ImageDraw."""
    noisy = colours.astype(np.float32) + rng.normal(0.0, sd, size=colours.shape)
    return [tuple(c) for c in np.clip(noisy, 0, 255).astype(np.uint8).tolist()]


def _paper_tone(rng: np.random.Generator) -> np.ndarray:
    """A warm off-white paper / canvas colour, (3,) float in [0, 255]."""
    base = rng.uniform(215, 250)
    return np.array([base, base - rng.uniform(0, 10), base - rng.uniform(5, 25)])


# ------------------------------------------------------------------------ techniques
def _pointillism(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Dense round dots of (jittered) photo colour on a toned ground (Haeberli 1990)."""
    work = img.width
    arr = np.asarray(ImageEnhance.Color(img).enhance(rng.uniform(1.2, 1.6)))
    ground_photo = np.asarray(img.filter(ImageFilter.GaussianBlur(work / 10)), np.float32)
    mix = rng.uniform(0.3, 0.7)
    ground = mix * _paper_tone(rng) + (1 - mix) * ground_photo
    canvas = Image.fromarray(np.clip(ground, 0, 255).astype(np.uint8))
    r = rng.uniform(0.011, 0.018) * work
    n = int(rng.uniform(1.0, 1.6) * work * work / (np.pi * r * r))
    ys = rng.integers(0, work, n)
    xs = rng.integers(0, work, n)
    cols = _jitter_colours(rng, arr[ys, xs], sd=22.0)
    radii = r * rng.uniform(0.75, 1.25, n)
    draw = ImageDraw.Draw(canvas)
    for x, y, rr, col in zip(xs.tolist(), ys.tolist(), radii.tolist(), cols, strict=True):
        draw.ellipse((x - rr, y - rr, x + rr, y + rr), fill=col)
    return canvas


def _posterised_outline(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Flat median-cut palette (4-7 colours) with dilated dark Canny outlines."""
    from scipy import ndimage
    from skimage.color import rgb2gray
    from skimage.feature import canny

    work = img.width
    smooth = img.filter(ImageFilter.MedianFilter(5))
    k = int(rng.integers(4, 8))
    flat = smooth.quantize(colors=k, method=Image.Quantize.MEDIANCUT,
                           dither=Image.Dither.NONE).convert("RGB")
    flat = ImageEnhance.Color(flat.filter(ImageFilter.ModeFilter(5))).enhance(
        rng.uniform(1.1, 1.5))
    edges = canny(rgb2gray(np.asarray(smooth)), sigma=rng.uniform(1.5, 2.5) * work / 192)
    edges = ndimage.binary_dilation(edges, iterations=1 if work < 256 else 2)
    out = np.array(flat)
    out[edges] = rng.integers(5, 45, size=3)
    return Image.fromarray(out)


def _brush_strokes(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Short straight strokes along the isophotes over a blurred underpainting
    (stroke direction perpendicular to the Sobel gradient, Hertzmann 1998)."""
    from skimage.color import rgb2gray
    from skimage.filters import gaussian, sobel_h, sobel_v

    work = img.width
    colour_src = np.asarray(img.filter(ImageFilter.GaussianBlur(work / 120)))
    canvas = img.filter(ImageFilter.GaussianBlur(work / 30))
    gray = gaussian(rgb2gray(np.asarray(img)), sigma=work / 64)
    gy, gx = sobel_h(gray), sobel_v(gray)
    mag = np.hypot(gx, gy)
    weak = mag < np.quantile(mag, 0.3)
    base_angle = rng.uniform(0, np.pi)
    length = rng.uniform(0.055, 0.085) * work
    width = max(2, int(round(rng.uniform(0.018, 0.028) * work)))
    n = int(rng.uniform(1.6, 2.2) * work * work / (length * width))
    ys = rng.integers(0, work, n)
    xs = rng.integers(0, work, n)
    theta = np.arctan2(gy[ys, xs], gx[ys, xs]) + np.pi / 2  # along the isophote
    theta = np.where(weak[ys, xs], base_angle, theta) + rng.normal(0, 0.2, n)
    half = 0.5 * length * rng.uniform(0.7, 1.3, n)
    dx, dy = half * np.cos(theta), half * np.sin(theta)
    cols = _jitter_colours(rng, colour_src[ys, xs], sd=12.0)
    draw = ImageDraw.Draw(canvas)
    for x, y, ddx, ddy, col in zip(xs.tolist(), ys.tolist(), dx.tolist(), dy.tolist(), cols,
                                   strict=True):
        draw.line((x - ddx, y - ddy, x + ddx, y + ddy), fill=col, width=width)
    return canvas


def _mosaic(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """SLIC superpixel tesserae filled with their mean colour (plus a small per-tile
    tone jitter) separated by thick grout boundaries (Achanta et al. 2012)."""
    from scipy import ndimage
    from skimage.segmentation import find_boundaries, slic

    arr = np.asarray(img)
    n_segments = int(rng.integers(70, 160))
    seg = slic(arr, n_segments=n_segments, compactness=rng.uniform(20, 35), sigma=1.0,
               start_label=0)
    n_lab = int(seg.max()) + 1
    idx = np.arange(n_lab)
    mean = np.stack([ndimage.mean(arr[..., c], labels=seg, index=idx) for c in range(3)], 1)
    mean = mean + rng.normal(0, 10, size=(n_lab, 1)) + rng.normal(0, 5, size=(n_lab, 3))
    out = np.clip(mean, 0, 255)[seg]
    grout = find_boundaries(seg, mode="thick")
    out[grout] = rng.uniform(60, 200) + rng.normal(0, 6, size=3)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _watercolour(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Flat quantised washes with wet-in-wet bleeding, edge darkening at the wash
    borders, pigment dilution, blotchy pigment density and paper granulation
    (after Curtis et al. 1997)."""
    from skimage.filters import gaussian
    from skimage.segmentation import find_boundaries

    work = img.width
    s = work / 192
    smooth = img.filter(ImageFilter.MedianFilter(7)).filter(ImageFilter.ModeFilter(7))
    k = int(rng.integers(5, 10))
    labels = smooth.quantize(colors=k, method=Image.Quantize.MEDIANCUT,
                             dither=Image.Dither.NONE)
    labels = labels.filter(ImageFilter.ModeFilter(7))
    washes = np.asarray(labels.convert("RGB"), np.float32) / 255.0
    # Wet-in-wet: blur the flat washes so that neighbouring colours bleed.
    wet = gaussian(washes, sigma=rng.uniform(2.0, 3.5) * s, channel_axis=-1)
    # Edge darkening: pigment pools along the border of each wash.
    rim = find_boundaries(np.asarray(labels), mode="inner").astype(np.float32)
    rim = gaussian(rim, sigma=1.2 * s)
    rim = np.clip(rim / (rim.max() + 1e-6) * 1.5, 0, 1)
    wet = wet * (1.0 - rng.uniform(0.3, 0.5) * rim[..., None])
    # Blotchy pigment density (uneven drying) and pigment dilution towards the paper.
    blotch = gaussian(rng.normal(size=(work, work)), sigma=8 * s)
    blotch = (blotch - blotch.mean()) / (blotch.std() + 1e-6)
    density = np.clip(rng.uniform(0.65, 0.9) + 0.12 * blotch, 0.3, 1.0)[..., None]
    paper = _paper_tone(rng) / 255.0
    out = paper - (paper - wet) * density
    # Paper granulation: fine smoothed noise modulating the result.
    grain = gaussian(rng.normal(size=(work, work)), sigma=0.7 * s)
    grain = (grain - grain.mean()) / (grain.std() + 1e-6)
    out = out * (1.0 + rng.uniform(0.03, 0.06) * grain[..., None])
    return Image.fromarray(np.clip(out * 255.0, 0, 255).astype(np.uint8))


_TECHNIQUES: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "Pointillism": _pointillism,
    "Posterised-outline": _posterised_outline,
    "Brush-strokes": _brush_strokes,
    "Mosaic": _mosaic,
    "Watercolour": _watercolour,
}
assert tuple(_TECHNIQUES) == SAMPLE_CLASSES


# ---------------------------------------------------------------------------- public
def _check_args(side: int, seed: int) -> None:
    if isinstance(side, bool) or not isinstance(side, (int, np.integer)) or side < _MIN_SIDE:
        raise ValueError(f"side must be an int >= {_MIN_SIDE} px, got {side!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def render_sample_image(class_name: str, index: int, *, side: int = 96,
                        seed: int = 42) -> Image.Image:
    """Render one synthetic sample painting.

    The image depends only on ``(seed, class_name, index, side)``: it is drawn from a
    ``numpy.random.Generator`` seeded by ``SeedSequence([seed, class_index, index])``,
    so image ``i`` of a class is the same whatever ``images_per_class`` is.

    Parameters
    ----------
    class_name : str
        One of :data:`SAMPLE_CLASSES`.
    index : int
        Image number within the class, ``>= 0``.
    side : int, default 96
        Output width = height in pixels, ``>= 32``. Rendering is done at twice this
        size and Lanczos-downsampled.
    seed : int, default 42
        Non-negative base seed.

    Returns
    -------
    PIL.Image.Image
        RGB image of size ``(side, side)`` (uint8 per channel).

    Raises
    ------
    KeyError
        If ``class_name`` is not in :data:`SAMPLE_CLASSES`.
    ValueError
        If ``side``, ``seed`` or ``index`` is out of range.
    """
    if class_name not in _TECHNIQUES:
        raise KeyError(f"unknown sample class {class_name!r}; expected one of {SAMPLE_CLASSES}")
    _check_args(side, seed)
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ValueError(f"index must be a non-negative int, got {index!r}")
    rng = np.random.default_rng(
        np.random.SeedSequence([int(seed), SAMPLE_CLASSES.index(class_name), int(index)]))
    work = side * _SUPERSAMPLE
    painted = _TECHNIQUES[class_name](_random_crop(rng, work), rng)
    return painted.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)


def _render_to_file(job: tuple[str, int, int, int, Path]) -> None:
    """Render image ``index`` of ``class_name`` and save it as JPEG (a worker's job)."""
    class_name, index, side, seed, path = job
    render_sample_image(class_name, index, side=side, seed=seed).save(
        path, format="JPEG", quality=_JPEG_QUALITY)


def _is_replaceable(out_dir: Path) -> bool:
    """An existing ``out_dir`` may be replaced only if it is empty or holds nothing
    but sample class folders (i.e. a previous output of :func:`generate_sample`)."""
    entries = list(out_dir.iterdir())
    return all(e.is_dir() and not e.is_symlink() and e.name in SAMPLE_CLASSES for e in entries)


class SampleClassError(ArtstyleError, ValueError):
    """``data.classes`` names a class the synthetic sample does not have."""


def select_sample_classes(classes: Iterable[str] = ()) -> tuple[str, ...]:
    """The sample classes ``data.classes`` asks for, in :data:`SAMPLE_CLASSES` order.

    Parameters
    ----------
    classes : iterable of str
        Requested names, matched case-insensitively (as folder names are for the other
        sources, :func:`artstyle.data.download.select_classes`); empty means all.

    Returns
    -------
    tuple of str
        The chosen class names as spelt in :data:`SAMPLE_CLASSES`.

    Raises
    ------
    SampleClassError
        A name is not a sample class: one line listing the known ones (and a close
        match when there is one).
    """
    known = {c.casefold(): c for c in SAMPLE_CLASSES}
    wanted = [str(c) for c in classes]
    unknown = [c for c in wanted if c.casefold() not in known]
    if unknown:
        close = {c: difflib.get_close_matches(c, SAMPLE_CLASSES, n=1) for c in unknown}
        hints = "".join(f" ({c!r}: did you mean {m[0]!r}?)" for c, m in close.items() if m)
        raise SampleClassError(
            f"unknown class(es) {', '.join(map(repr, unknown))} in data.classes for "
            f"data.source: sample{hints}; the sample's classes are "
            f"{', '.join(SAMPLE_CLASSES)}; fix data.classes, or [] for all")
    chosen = {known[c.casefold()] for c in wanted}
    return tuple(c for c in SAMPLE_CLASSES if not wanted or c in chosen)


#: Provenance text for reports produced from the ``sample`` data source (all classes).
SAMPLE_NOTICE: str = sample_notice()


def class_counts(images_per_class: int, imbalance: float = 1.0) -> dict[str, int]:
    """Images of each class of :data:`SAMPLE_CLASSES`: a long tail.

    Class ``i`` of ``k`` gets ``round(images_per_class * imbalance ** (-i / (k - 1)))``:
    the first ``images_per_class``, the last ``images_per_class / imbalance``, the others
    on a geometric scale between (``50, 2.5``: 50, 40, 32, 25, 20).

    Parameters
    ----------
    images_per_class : int
        The first class's count, ``>= 1``.
    imbalance : float, default 1.0
        First class / last class, ``>= 1`` (1: all the same).

    Returns
    -------
    dict of str to int, in :data:`SAMPLE_CLASSES` order.
    """
    k = len(SAMPLE_CLASSES)
    return {name: max(1, round(images_per_class * imbalance ** (-i / (k - 1))))
            for i, name in enumerate(SAMPLE_CLASSES)}


def generate_sample(out_dir: str | os.PathLike, *, images_per_class: int, side: int, seed: int,
                    progress: bool = True, classes: Iterable[str] = (),
                    imbalance: float = 1.0) -> dict[str, int]:
    """Generate the synthetic ``sample`` dataset (see the module docstring).

    Writes ``<out_dir>/<ClassName>/<ClassName>_<nnn>.jpg`` (JPEG, quality 90, RGB,
    ``side`` x ``side`` px) for every class in :data:`SAMPLE_CLASSES` (or those of
    ``classes``: :func:`select_sample_classes`); ``nnn`` is the
    zero-padded image index (at least 3 digits). Output is deterministic: the same
    arguments give byte-identical files (with the same Pillow / libjpeg build).

    The dataset is built in a temporary sibling folder and renamed into place, so a
    half-written dataset is never left at ``out_dir``. An existing ``out_dir`` is
    replaced only when it is empty or contains nothing but sample class folders.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Destination folder; its parent is created if needed.
    images_per_class : int
        Number of images per class, ``>= 1`` (``data.sample.images_per_class``); with
        ``imbalance`` the first class's (:func:`class_counts`).
    side : int
        Image width = height in pixels, ``>= 32`` (``data.sample.side``).
    seed : int
        Non-negative base seed of all random choices (``base.seed``).
    progress : bool, default True
        Show a tqdm progress bar.
    classes : iterable of str, optional
        ``data.classes``: only these classes (case-insensitive); empty = all. A class's
        images (and count) are the same whichever others are chosen.
    imbalance : float, default 1.0
        ``data.sample.imbalance``: first class / last class (:func:`class_counts`).

    Returns
    -------
    dict[str, int]
        Number of images written per class name, in :data:`SAMPLE_CLASSES` order.

    Raises
    ------
    SampleClassError
        ``classes`` names a class the sample does not have (one line listing them).
    ValueError
        If an argument is out of range.
    FileExistsError
        If ``out_dir`` exists and is not a directory, or holds entries other than
        sample class folders.
    """
    if (isinstance(images_per_class, bool) or not isinstance(images_per_class, (int, np.integer))
            or images_per_class < 1):
        raise ValueError(f"images_per_class must be an int >= 1, got {images_per_class!r}")
    if not imbalance >= 1.0:
        raise ValueError(f"imbalance must be >= 1, got {imbalance!r}")
    _check_args(side, seed)
    chosen = select_sample_classes(classes)
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or not _is_replaceable(out_dir)):
        raise FileExistsError(
            f"{out_dir} exists and is not a previous sample dataset "
            f"(only folders named {SAMPLE_CLASSES} may be present); refusing to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)

    digits = max(3, len(str(images_per_class - 1)))
    every = class_counts(images_per_class, imbalance)
    counts = {name: every[name] for name in chosen}
    with atomic_dir(out_dir) as tmp, tqdm(total=sum(counts.values()),
                                          desc="sample dataset", unit="img",
                                          disable=not progress) as bar:
        jobs = []
        for name in chosen:
            (tmp / name).mkdir()
            jobs += [(name, i, side, seed, tmp / name / f"{name}_{i:0{digits}d}.jpg")
                     for i in range(counts[name])]
        # Each image depends only on its own seed, so the cores can share them out.
        workers = min(len(jobs), len(os.sched_getaffinity(0)))
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            _source_photos()            # loaded once, before the workers fork
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                for _ in pool.map(_render_to_file, jobs, chunksize=5):
                    bar.update(1)
        else:
            for job in jobs:
                _render_to_file(job)
                bar.update(1)
    logger.info("wrote synthetic sample dataset to %s: %d classes (%s images), %d px, seed %d",
                out_dir, len(counts), ", ".join(map(str, counts.values())), side, seed)
    return counts
