"""Generate good and bad input images for tests (nothing is committed; all made with Pillow/NumPy).

Each ``make_*`` function writes one file at ``path`` and returns ``path``. Pixel values
are chosen so that the expected result of :func:`artstyle.images.load_rgb` is known
(see the docstrings). :func:`make_bad_input_tree` lays out a Pandora/Painting91-like
``<class>/<artist>/<image>`` tree holding every kind of awkward input together with
hidden/system clutter, and returns what a correct scan must find.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

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


# ------------------------------------------------------------- metadata: PNG chunks


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def text_chunk(kind: str, keyword: str, text: str) -> bytes:
    """A PNG text chunk: ``"tEXt"`` (Latin-1), ``"zTXt"`` (zlib), ``"iTXt"`` (UTF-8,
    uncompressed) or ``"iTXt-z"`` (UTF-8, zlib-compressed)."""
    key = keyword.encode("latin-1") + b"\x00"
    if kind == "tEXt":
        return png_chunk(b"tEXt", key + text.encode("latin-1"))
    if kind == "zTXt":
        return png_chunk(b"zTXt", key + b"\x00" + zlib.compress(text.encode("latin-1"), 9))
    if kind in ("iTXt", "iTXt-z"):
        compressed = kind == "iTXt-z"
        body = text.encode("utf-8")
        body = zlib.compress(body, 9) if compressed else body
        return png_chunk(b"iTXt", key + bytes([compressed, 0]) + b"\x00\x00" + body)
    raise ValueError(kind)


def iccp_chunk(icc: bytes, name: bytes = b"ICC profile") -> bytes:
    """A PNG ``iCCP`` chunk holding ``icc`` (zlib-compressed, as the PNG spec says)."""
    return png_chunk(b"iCCP", name + b"\x00\x00" + zlib.compress(icc, 9))


def insert_png_chunks(png: bytes, before_idat=(), after_idat=()) -> bytes:
    """Splice extra chunks into an encoded PNG: before its first IDAT, and/or between its
    last IDAT and IEND (where Pillow reads them only while loading the pixels)."""
    first_idat = png.index(b"IDAT") - 4
    iend = png.rindex(b"IEND") - 4
    return (png[:first_idat] + b"".join(before_idat) + png[first_idat:iend]
            + b"".join(after_idat) + png[iend:])


def big_xmp(n_bytes=2_000_000, orientation: int | None = None) -> str:
    """An XMP packet of about ``n_bytes`` characters (a long history list, as Photoshop's
    DocumentAncestors grows), compressing ~1000x; with ``tiff:Orientation`` if given."""
    orient = f' tiff:Orientation="{orientation}"' if orientation else ""
    head = ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/"'
            f' xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"{orient}>'
            "<photoshop:DocumentAncestors><rdf:Bag>")
    tail = ("</rdf:Bag></photoshop:DocumentAncestors></rdf:Description></rdf:RDF></x:xmpmeta>"
            '<?xpacket end="w"?>')
    item = "<rdf:li>xmp.did:0123456789abcdef0123456789abcdef</rdf:li>\n"
    return head + item * max(1, (n_bytes - len(head) - len(tail)) // len(item)) + tail


def make_png_with_metadata(path, *, chunks=(), after_idat=(), size=SMALL,
                           colour=(10, 200, 30)) -> Path:
    """Solid ``colour`` RGB PNG with extra encoded chunks before and/or after its IDAT."""
    path = _p(path)
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    path.write_bytes(insert_png_chunks(buf.getvalue(), chunks, after_idat))
    return path


# --------------------------------------------------------------------- ICC profiles


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(xyz) -> bytes:
    return b"XYZ \x00\x00\x00\x00" + b"".join(_s15(v) for v in xyz)


def _gamma_tag(gamma: float) -> bytes:
    return b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, round(gamma * 256))


def _desc_tag(text: str) -> bytes:  # ICC v2 textDescriptionType, ASCII only
    t = text.encode("ascii") + b"\x00"
    return b"desc\x00\x00\x00\x00" + struct.pack(">I", len(t)) + t + b"\x00" * (8 + 3 + 67)


#: ICC PCS illuminant (D50), XYZ.
D50 = (0.9642, 1.0, 0.8249)


def build_icc(space: bytes, tags, *, device_class=b"mntr") -> bytes:
    """Assemble an ICC v2.1 profile (``space`` e.g. ``b"RGB "``, ``b"GRAY"``) from
    ``[(signature, tag bytes), ...]``; PCS XYZ, rendering intent perceptual."""
    table, body = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for sig, data in tags:
        body += b"\x00" * (-(offset + len(body)) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    body += b"\x00" * (-len(body) % 4)
    header = bytearray(128)
    header[0:4] = struct.pack(">I", offset + len(body))
    header[8:12] = bytes([2, 0x10, 0, 0])
    header[12:16], header[16:20], header[20:24] = device_class, space, b"XYZ "
    header[36:40] = b"acsp"
    header[68:80] = b"".join(_s15(v) for v in D50)
    return bytes(header) + struct.pack(">I", len(tags)) + table + body


def rgb_colorants_d50(primaries, white) -> np.ndarray:
    """RGB->XYZ matrix (columns = rXYZ, gXYZ, bXYZ) for chromaticities ``primaries``
    ``[(x, y)] * 3`` and ``white`` (x, y), Bradford-adapted to D50 as ICC requires."""
    def xyz(x, y):
        return np.array([x / y, 1.0, (1 - x - y) / y])

    prim = np.stack([xyz(*p) for p in primaries], 1)
    w = xyz(*white)
    m = prim * np.linalg.solve(prim, w)
    bradford = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367],
                         [0.0389, -0.0685, 1.0296]])
    adapt = np.linalg.inv(bradford) @ np.diag((bradford @ D50) / (bradford @ w)) @ bradford
    return adapt @ m


#: Adobe RGB (1998): primaries, D65 white, gamma 563/256 = 2.19921875 (the spec's values).
ADOBE_RGB_PRIMARIES = [(0.64, 0.33), (0.21, 0.71), (0.15, 0.06)]
D65_WHITE = (0.3127, 0.3290)
ADOBE_RGB_GAMMA = 563 / 256


def adobe_rgb_icc(pad: int = 0) -> bytes:
    """An ICC profile with the Adobe RGB (1998) primaries, white point and gamma (a
    matrix/TRC profile as Adobe's own; colorants 0.6097/0.3111/0.0195, ...). ``pad``
    bytes of a private tag make it as large as wanted (still valid)."""
    m = rgb_colorants_d50(ADOBE_RGB_PRIMARIES, D65_WHITE)
    trc = _gamma_tag(ADOBE_RGB_GAMMA)
    tags = [(b"desc", _desc_tag("Adobe RGB (1998) compatible, test")), (b"wtpt", _xyz_tag(D50)),
            (b"rXYZ", _xyz_tag(m[:, 0])), (b"gXYZ", _xyz_tag(m[:, 1])),
            (b"bXYZ", _xyz_tag(m[:, 2])),
            (b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)]
    if pad:
        tags.append((b"zzzz", b"zzzz\x00\x00\x00\x00" + b"\x00" * pad))
    return build_icc(b"RGB ", tags)


def grey_icc(gamma: float = 1.0) -> bytes:
    """A greyscale ICC profile with tone curve ``Y = v ** gamma`` (1.0: linear light)."""
    return build_icc(b"GRAY", [(b"desc", _desc_tag(f"Gray gamma {gamma}")),
                               (b"wtpt", _xyz_tag(D50)), (b"kTRC", _gamma_tag(gamma))])


def srgb_icc() -> bytes:
    """LittleCMS's built-in sRGB profile, as bytes."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


#: Test colour for Adobe RGB: (60, 160, 70) in Adobe RGB is about (0, 161, 60) in sRGB
#: (worked by hand in test_images.test_adobe_rgb_profile_converted_to_srgb).
ADOBE_COLOUR = (60, 160, 70)


def make_with_icc(path, fmt="PNG", icc: bytes | None = None, colour=ADOBE_COLOUR, size=SMALL,
                  mode="RGB") -> Path:
    """Solid ``colour`` image in ``mode`` (``RGB``, ``RGBA``, ``L``, ``LA``) saved as ``fmt``
    with ``icc`` embedded (Adobe RGB by default). WebP is written lossless, JPEG at q95."""
    path = _p(path)
    icc = adobe_rgb_icc() if icc is None else icc
    kwargs = {"icc_profile": icc}
    if fmt == "WEBP":
        kwargs.update(lossless=True, exact=True)
    if fmt == "JPEG":
        kwargs.update(quality=95)
    Image.new(mode, size, colour).save(path, fmt, **kwargs)
    return path


# --------------------------------------------------------------------- raw TIFF writer


def write_tiff(path, arr, *, byteorder="<", planar=1, extra_samples=(), photometric=None) -> Path:
    """Write an uncompressed, single-strip TIFF of ``arr`` ((H, W) or (H, W, C)) exactly as
    given: any dtype (float16/32/64 -> SampleFormat 3, signed -> 2, unsigned -> 1), either
    byte order, contiguous (``planar=1``) or separate planes (``planar=2``). Pillow cannot
    write float RGB TIFFs; this writer can."""
    path = _p(path)
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[..., None]
    h, w, spp = arr.shape
    dt = arr.dtype.newbyteorder(byteorder)
    fmt_code = {"f": 3, "i": 2, "u": 1}[dt.kind]
    if photometric is None:
        photometric = 2 if spp - len(extra_samples) >= 3 else 1
    if planar == 2:
        strips = [np.ascontiguousarray(arr[..., c]).astype(dt).tobytes() for c in range(spp)]
    else:
        strips = [arr.astype(dt).tobytes()]
    bo = byteorder
    out = bytearray((b"II*\x00" if bo == "<" else b"MM\x00*") + b"\x00" * 4)
    offsets = []
    for strip in strips:
        offsets.append(len(out))
        out += strip + b"\x00" * (len(strip) % 2)
    short, long_ = 3, 4
    entries = [(256, long_, [w]), (257, long_, [h]), (258, short, [dt.itemsize * 8] * spp),
               (259, short, [1]), (262, short, [photometric]), (273, long_, offsets),
               (277, short, [spp]), (278, long_, [h]), (279, long_, [len(s) for s in strips]),
               (284, short, [planar]), (339, short, [fmt_code] * spp)]
    if extra_samples:
        entries.append((338, short, list(extra_samples)))
    entries.sort()
    packed = [(tag, typ, vals, struct.pack(bo + ("H" if typ == short else "I") * len(vals), *vals))
              for tag, typ, vals in entries]
    where = {}
    for tag, _, _, raw in packed:
        if len(raw) > 4:
            where[tag] = len(out)
            out += raw + b"\x00" * (len(raw) % 2)
    ifd = len(out)
    out += struct.pack(bo + "H", len(packed))
    for tag, typ, vals, raw in packed:
        value = struct.pack(bo + "I", where[tag]) if tag in where else raw.ljust(4, b"\x00")
        out += struct.pack(bo + "HHI", tag, typ, len(vals)) + value
    out += b"\x00" * 4
    out[4:8] = struct.pack(bo + "I", ifd)
    path.write_bytes(bytes(out))
    return path


#: Float test values (one row) and their 8-bit result: nominal range [0, 1] -> 0..255.
FLOAT_LEVELS = np.array([0.0, 1.0, 0.5, 0.25], np.float32)
FLOAT_LEVELS_TO_8 = np.array([0, 255, 128, 64], np.uint8)


def make_float_tiff(path, channels=1, dtype=np.float32, size=SMALL, **kw) -> Path:
    """Float TIFF whose columns cycle through :data:`FLOAT_LEVELS` (channel c scaled by
    1, 0.5, 0.25, ...); ``channels`` 1 (greyscale ``F``), 3 (RGB), 4 (RGBA: pass
    ``extra_samples=(2,)``)."""
    w, h = size
    grey = np.resize(FLOAT_LEVELS, w)[None, :].repeat(h, 0)
    arr = grey if channels == 1 else np.stack([grey * 0.5 ** c for c in range(channels)], -1)
    return write_tiff(path, arr.astype(dtype), **kw)


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
    Adobe-RGB-profiled PNG and JPEG, a PNG with an unusable ICC profile, a PNG with a
    2 MB XMP packet (``tiff:Orientation`` 6), a float32 greyscale TIFF; and
    the bad ones: truncated JPEG/PNG/WebP, 0-byte file, text and HTML named ``.jpg``,
    a float32 RGB TIFF (Pillow cannot decode it: ``unsupported_format``).
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
        ``good_per_class``: ``{class: number of good images}`` (every class >= 2);
        ``icc_converted`` / ``icc_unusable``: how many good images carry an ICC profile
        that is applied / that cannot be applied (``load_rgb(...).info["icc"]``).
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
        ("Impressionism/Claude Monet/adobe_rgb.png", "adobe_rgb_png", make_with_icc, (w, h)),
        ("Baroque/Rembrandt/adobe_rgb.jpg", "adobe_rgb_jpeg",
         lambda p: make_with_icc(p, "JPEG", colour=(200, 120, 40)), (w, h)),
        ("Pop Art/Andy Warhol/broken_icc.png", "broken_icc_png",
         lambda p: make_with_icc(p, "PNG", icc=b"not a profile" * 8, colour=(90, 90, 200)), (w, h)),
        ("Pop Art/Roy Lichtenstein/big_xmp.png", "png_2mb_xmp_orientation_6",
         lambda p: make_png_with_metadata(p, chunks=[text_chunk("iTXt-z", "XML:com.adobe.xmp",
                                                                big_xmp(orientation=6))]), (h, w)),
        ("Réalisme/Gustave Courbet/float_grey.tif", "float32_grey_tiff", make_float_tiff, (w, h)),
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
        ("Baroque/Caravaggio/float_rgb.tif", "float32_rgb_tiff", lambda p: make_float_tiff(p, 3),
         "unsupported_format"),
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
        "icc_converted": sum(v["kind"].startswith("adobe_rgb") for v in good.values()),
        "icc_unusable": sum(v["kind"] == "broken_icc_png" for v in good.values()),
    }
