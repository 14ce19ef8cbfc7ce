"""Generate good and bad input images for tests (nothing is committed; all made with Pillow/NumPy).

Each ``make_*`` function writes one file at ``path`` and returns ``path``. Pixel values
are chosen so that the expected result of :func:`artstyle.images.load_rgb` is known
(see the docstrings). :func:`make_bad_input_tree` lays out a Pandora/Painting91-like
``<class>/<artist>/<image>`` tree holding every kind of awkward input together with
hidden/system clutter, and returns what a correct scan must find.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

#: ``max_pixels`` the tree from :func:`make_bad_input_tree` is designed for.
TREE_MAX_PIXELS = 50_000

#: Size (w, h) of the ordinary small images.
SMALL = (48, 32)
#: Size (w, h) of the oversized images: 120,000 px > TREE_MAX_PIXELS; a JPEG of it
#: decodes at 1/2 scale to 200x150 = 30,000 px.
OVERSIZED = (400, 300)

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def _p(path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _noise(size, channels=3, seed=0) -> np.ndarray:
    w, h = size
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def _gradient(size) -> Image.Image:
    """Smooth RGB gradient (JPEG-friendly: decodes close to the original)."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float64)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float64)[:, None].repeat(w, 1)
    arr = np.stack([x, y, 255 - x], axis=-1).round().astype(np.uint8)
    return Image.fromarray(arr, "RGB")


# ---------------------------------------------------------------------- good images


def make_rgb_jpeg(path, size=SMALL) -> Path:
    """Ordinary RGB JPEG (gradient); the file name goes in a JPEG comment, so files at
    different paths have different bytes (and are not exact duplicates)."""
    path = _p(path)
    _gradient(size).save(path, "JPEG", quality=95, comment=path.name.encode("utf-8"))
    return path


def make_cmyk_jpeg(path, size=SMALL, cmyk=(0, 255, 255, 0), icc_profile: bytes | None = None) -> Path:
    """Solid CMYK JPEG; the default colour is pure red (loads as ~(255, 0, 0))."""
    path = _p(path)
    kwargs = {"icc_profile": icc_profile} if icc_profile else {}
    Image.new("CMYK", size, cmyk).save(path, "JPEG", quality=95, **kwargs)
    return path


def make_rgba_png(path, size=SMALL) -> Path:
    """RGBA PNG: left third fully transparent red (-> white), middle third opaque blue,
    right third black at alpha 128 (-> ~127 grey on white)."""
    path = _p(path)
    w, h = size
    arr = np.zeros((h, w, 4), np.uint8)
    third = w // 3
    arr[:, :third] = (255, 0, 0, 0)
    arr[:, third : 2 * third] = (0, 0, 255, 255)
    arr[:, 2 * third :] = (0, 0, 0, 128)
    Image.fromarray(arr, "RGBA").save(path, "PNG")
    return path


def make_palette_png_transparent(path, size=SMALL) -> Path:
    """Palette PNG whose index 0 is transparent (tRNS): left half index 0 (-> white),
    right half index 1 = opaque red."""
    path = _p(path)
    w, h = size
    idx = np.zeros((h, w), np.uint8)
    idx[:, w // 2 :] = 1
    im = Image.fromarray(idx, "L").convert("P")
    palette = [0, 255, 0] + list(RED) + [0, 0, 0] * 254  # index 0 green (hidden)
    im.putpalette(palette)
    im.save(path, "PNG", transparency=0)
    return path


def make_la_png(path, size=SMALL) -> Path:
    """Greyscale+alpha PNG: left half grey 50 alpha 0 (-> white), right half grey 50
    opaque (-> 50)."""
    path = _p(path)
    w, h = size
    arr = np.zeros((h, w, 2), np.uint8)
    arr[..., 0] = 50
    arr[:, w // 2 :, 1] = 255
    Image.fromarray(arr, "LA").save(path, "PNG")
    return path


#: 16-bit test levels and their correct 8-bit values round(v * 255 / 65535).
LEVELS16 = np.array([0, 1000, 32896, 65535], np.uint16)
LEVELS16_TO_8 = np.array([0, 4, 128, 255], np.uint8)


def make_grey16_png(path, size=SMALL) -> Path:
    """16-bit greyscale PNG (Pillow mode ``I;16``): columns cycle through LEVELS16."""
    path = _p(path)
    w, h = size
    arr = np.resize(LEVELS16, w)[None, :].repeat(h, 0).astype(np.uint16)
    Image.fromarray(arr).save(path, "PNG")
    return path


def write_png16_rgb(path, arr: np.ndarray) -> Path:
    """Write a 16-bit-per-channel RGB PNG (Pillow cannot write one).

    ``arr``: (H, W, 3) uint16. Plain PNG encoding: IHDR (bit depth 16, colour type 2),
    one zlib IDAT with filter type 0 rows of big-endian samples, IEND.
    """
    path = _p(path)
    arr = np.asarray(arr, np.uint16)
    h, w, _ = arr.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    path.write_bytes(png)
    return path


def make_rgb16_png(path, size=SMALL) -> Path:
    """16-bit RGB PNG: every pixel's R, G, B = LEVELS16 values by column, R=G=B."""
    w, h = size
    col = np.resize(LEVELS16, w)
    arr = np.repeat(col[None, :, None], h, 0).repeat(3, 2)
    return write_png16_rgb(path, arr)


def make_exif_rotated_jpeg(path, size=SMALL, orientation=6) -> Path:
    """JPEG stored ``size`` (w, h) with EXIF Orientation ``orientation`` and an 8x8 red
    block in the *stored* top-left corner, rest white. With orientation 6 (rotate 90°
    clockwise to display) it loads as (h, w) with the red block at the top-right."""
    path = _p(path)
    w, h = size
    arr = np.full((h, w, 3), 255, np.uint8)
    arr[:8, :8] = RED
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(arr, "RGB").save(path, "JPEG", quality=95, exif=exif)
    return path


def make_png_named_jpg(path, size=SMALL) -> Path:
    """A real PNG (solid blue) at a path normally ending in ``.jpg``."""
    path = _p(path)
    Image.new("RGB", size, BLUE).save(path, "PNG")
    return path


def make_grey_jpeg(path, size=SMALL, level=100) -> Path:
    """Greyscale (mode L) JPEG, solid ``level``."""
    path = _p(path)
    Image.new("L", size, level).save(path, "JPEG", quality=95)
    return path


def make_bilevel_png(path, size=SMALL) -> Path:
    """1-bit PNG: left half black, right half white."""
    path = _p(path)
    w, h = size
    arr = np.zeros((h, w), bool)
    arr[:, w // 2 :] = True
    Image.fromarray(arr).convert("1").save(path, "PNG")
    return path


def make_webp(path, size=SMALL, lossless=True) -> Path:
    """WebP with alpha: left half transparent (-> white), right half opaque red."""
    path = _p(path)
    w, h = size
    arr = np.zeros((h, w, 4), np.uint8)
    arr[:, : w // 2] = (0, 255, 0, 0)
    arr[:, w // 2 :] = (255, 0, 0, 255)
    Image.fromarray(arr, "RGBA").save(path, "WEBP", lossless=lossless, quality=90, exact=True)
    return path


def make_animated_gif(path, size=SMALL) -> Path:
    """3-frame GIF; the first frame is solid red (only it is loaded)."""
    path = _p(path)
    frames = [Image.new("RGB", size, c) for c in (RED, (0, 255, 0), BLUE)]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def make_oversized(path, fmt="JPEG", size=OVERSIZED) -> Path:
    """Gradient image of ``size`` (default 400x300 = 120,000 px) in ``fmt``."""
    path = _p(path)
    _gradient(size).save(path, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return path


# ----------------------------------------------------------------------- bad inputs


def make_png_header_bomb(path, size=(100_000, 100_000)) -> Path:
    """A ~100-byte PNG whose IHDR claims ``size`` (10 Gpx by default): a decompression
    bomb; decoding it would need ~30 GB (rejected: ``too_large``, before decoding)."""
    path = _p(path)
    w, h = size

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
    return path


def make_truncated(path, fmt="JPEG", keep=0.5, size=(64, 64)) -> Path:
    """A noise image in ``fmt`` cut to ``keep`` of its bytes (rejected: ``truncated``)."""
    path = _p(path)
    import io

    buf = io.BytesIO()
    Image.fromarray(_noise(size)).save(buf, fmt)
    data = buf.getvalue()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_empty(path) -> Path:
    """0-byte file (rejected: ``empty``)."""
    path = _p(path)
    path.write_bytes(b"")
    return path


def make_text_named_jpg(path) -> Path:
    """Plain text (rejected: ``not_an_image``)."""
    path = _p(path)
    path.write_text("This is not an image, whatever the extension says.\n" * 20, encoding="utf-8")
    return path


def make_html_named_jpg(path) -> Path:
    """An HTML error page saved under an image name, as scrapers do (``not_an_image``)."""
    path = _p(path)
    path.write_text(
        "<!DOCTYPE html><html><head><title>403 Forbidden</title></head>"
        "<body><h1>Forbidden</h1></body></html>\n",
        encoding="utf-8",
    )
    return path


# ------------------------------------------------------------------------ the tree


def make_bad_input_tree(root: Path) -> dict:
    """Write a Pandora-like ``<class>/<artist>/<image>`` tree full of awkward inputs.

    The tree holds, besides ordinary JPEGs: CMYK JPEG, RGBA PNG, palette PNG with
    transparency, LA PNG, 16-bit greyscale and RGB PNGs, EXIF-rotated JPEG, a PNG
    named ``.jpg``, greyscale JPEG, 1-bit PNG, WebP, animated GIF, unicode/space
    names, an oversized JPEG (decodes reduced) and an oversized PNG (rejected); and
    the bad ones: truncated JPEG/PNG/WebP, 0-byte file, text and HTML named ``.jpg``.
    Hidden/system clutter (``.DS_Store``, ``Thumbs.db``, ``desktop.ini``,
    ``__MACOSX/``, ``.ipynb_checkpoints/``, ``._x.jpg``, a ``.hidden`` folder holding
    valid images) must be skipped by name, never loaded. Every file not skipped has an
    image-like suffix, so scanning by suffix or scanning every file gives the same
    result. Images may sit directly in a class folder or in an artist sub-folder.

    Parameters
    ----------
    root : pathlib.Path
        Folder to create the tree in (created if missing).

    Returns
    -------
    dict
        ``max_pixels``: the limit the expectations assume (:data:`TREE_MAX_PIXELS`,
        pass it to ``load_rgb``);
        ``classes``: sorted class-folder names (hidden ones excluded);
        ``good``: ``{relpath: {"class", "kind", "size"}}`` for files that must load,
        ``size`` = (width, height) of :func:`artstyle.images.load_rgb`'s output;
        ``rejected``: ``{relpath: {"class", "kind", "reason"}}`` with the expected
        :class:`artstyle.images.ImageRejected` reason;
        ``skipped``: sorted relpaths of the hidden/system entries at the level where a
        scan meets them (a skipped folder is listed once, not its content);
        ``good_per_class``: ``{class: number of good images}`` (every class >= 2).
        Relpaths are POSIX strings relative to ``root``.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    w, h = SMALL
    ow, oh = OVERSIZED
    good_specs = [
        ("Baroque/Caravaggio/plain_01.jpg", "rgb_jpeg", make_rgb_jpeg, (w, h)),
        ("Baroque/Caravaggio/cmyk.jpg", "cmyk_jpeg", make_cmyk_jpeg, (w, h)),
        ("Baroque/Rembrandt/rotated_exif6.jpg", "exif_orientation_6", make_exif_rotated_jpeg, (h, w)),
        ("Baroque/Rembrandt/grey.jpg", "greyscale_jpeg", make_grey_jpeg, (w, h)),
        ("Baroque/oversized.jpg", "oversized_jpeg", lambda p: make_oversized(p, "JPEG"), (ow // 2, oh // 2)),
        ("Impressionism/Claude Monet/rgba.png", "rgba_png", make_rgba_png, (w, h)),
        ("Impressionism/Claude Monet/palette_trns.png", "palette_png_transparency", make_palette_png_transparent, (w, h)),
        ("Impressionism/Claude Monet/Café Terrasse, l'été.jpg", "unicode_name", make_rgb_jpeg, (w, h)),
        ("Impressionism/Berthe Morisot/la.png", "la_png", make_la_png, (w, h)),
        ("Impressionism/Berthe Morisot/actually_a_png.jpg", "png_named_jpg", make_png_named_jpg, (w, h)),
        ("Pop Art/Andy Warhol/grey16.png", "grey16_png", make_grey16_png, (w, h)),
        ("Pop Art/Andy Warhol/rgb16.png", "rgb16_png", make_rgb16_png, (w, h)),
        ("Pop Art/Roy Lichtenstein/bilevel.png", "bilevel_png", make_bilevel_png, (w, h)),
        ("Pop Art/Roy Lichtenstein/alpha.webp", "webp", make_webp, (w, h)),
        ("Réalisme/Gustave Courbet/animated.gif", "animated_gif", make_animated_gif, (w, h)),
        ("Réalisme/Gustave Courbet/plain 02.jpeg", "rgb_jpeg", make_rgb_jpeg, (w, h)),
        ("Réalisme/Jean-François Millet/L'Angélus.JPG", "unicode_name", make_rgb_jpeg, (w, h)),
    ]
    bad_specs = [
        ("Baroque/Caravaggio/truncated.jpg", "truncated_jpeg", lambda p: make_truncated(p, "JPEG"), "truncated"),
        ("Baroque/Rembrandt/empty.jpg", "empty_file", make_empty, "empty"),
        ("Baroque/huge.png", "oversized_png", lambda p: make_oversized(p, "PNG"), "too_large"),
        ("Impressionism/Claude Monet/truncated.png", "truncated_png", lambda p: make_truncated(p, "PNG"), "truncated"),
        ("Impressionism/Berthe Morisot/notes.jpg", "text_named_jpg", make_text_named_jpg, "not_an_image"),
        ("Pop Art/Andy Warhol/forbidden.jpg", "html_named_jpg", make_html_named_jpg, "not_an_image"),
        ("Pop Art/Roy Lichtenstein/truncated.webp", "truncated_webp", lambda p: make_truncated(p, "WEBP"), "truncated"),
        ("Réalisme/Gustave Courbet/empty.png", "empty_file", make_empty, "empty"),
    ]
    skipped_files = [
        ".DS_Store",
        "Baroque/.DS_Store",
        "Baroque/Caravaggio/._plain_01.jpg",
        "Impressionism/Thumbs.db",
        "Pop Art/desktop.ini",
    ]
    skipped_dirs = {
        "__MACOSX": ["__MACOSX/Baroque/._cmyk.jpg", "__MACOSX/Baroque/plain.jpg"],
        "Impressionism/.ipynb_checkpoints": ["Impressionism/.ipynb_checkpoints/rgba-checkpoint.jpg"],
        ".hidden": [".hidden/Artist/valid.jpg"],
    }

    good, rejected = {}, {}
    for rel, kind, maker, size in good_specs:
        maker(root / rel)
        good[rel] = {"class": rel.split("/")[0], "kind": kind, "size": size}
    for rel, kind, maker, reason in bad_specs:
        maker(root / rel)
        rejected[rel] = {"class": rel.split("/")[0], "kind": kind, "reason": reason}
    for rel in skipped_files:
        target = _p(root / rel)
        if rel.endswith(".jpg"):  # AppleDouble resource fork: binary junk
            target.write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        " + b"\x00" * 64)
        else:
            target.write_bytes(b"\x00\x00\x00\x01Bud1" + b"\x00" * 32)
    for folder, files in skipped_dirs.items():
        for rel in files:
            # valid images inside: a scan that forgets to skip would wrongly count them
            make_rgb_jpeg(root / rel)

    classes = sorted({v["class"] for v in good.values()} | {v["class"] for v in rejected.values()})
    good_per_class = {c: sum(v["class"] == c for v in good.values()) for c in classes}
    assert min(good_per_class.values()) >= 2
    return {
        "max_pixels": TREE_MAX_PIXELS,
        "classes": classes,
        "good": good,
        "rejected": rejected,
        "skipped": sorted(skipped_files + list(skipped_dirs)),
        "good_per_class": good_per_class,
    }
