"""The one safe image loader used by every stage (data preparation, style transfer, CLI).

Every image goes through :func:`load_rgb` (or :func:`load_rgb_array`), which

* detects the format from the file *content* (Pillow's format sniffing), never from
  the file name, and only accepts common raster formats (:data:`DEFAULT_FORMATS`);
* checks the pixel count from the header *before* decoding: an image above
  ``max_pixels`` is reduced while decoding when the format allows it (JPEG DCT
  scaling via :meth:`PIL.Image.Image.draft`, factors 1/2, 1/4, 1/8), otherwise it is
  rejected, so a huge or malicious file can never exhaust memory;
* fully decodes the image exactly once, with ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES``
  left at ``False`` so that truncated files are rejected instead of padded with grey;
* applies the EXIF orientation (:func:`PIL.ImageOps.exif_transpose`);
* converts every pixel format to 8-bit sRGB: an embedded ICC profile (RGB, greyscale
  or CMYK) is applied with LittleCMS (:mod:`PIL.ImageCms`, perceptual intent) and the
  result counted in ``info["icc"]``; an unusable profile (unreadable, or of a colour
  space that does not fit the pixels) is logged and the pixels are taken as they are
  (CMYK then through Pillow's naive formula). Greyscale ``L``/``LA``/``La``, 16-bit
  greyscale ``I;16`` (scaled 0..65535 -> 0..255, not clipped), 32-bit ``I``, 32-bit
  float ``F`` (see below), bilevel ``1``, palette ``P``/``PA`` are all handled; any
  transparency is composited on **white**.

Float (``F``) images, e.g. 32-bit floating-point greyscale TIFFs, have the nominal range
[0, 1]: ``v -> round(v * 255)``. When values fall outside it (HDR highlights above 1,
negative values, 0..255 data) the range is widened linearly to
``[min(0, lowest), max(1, highest)]`` and that range is mapped to 0..255, so nothing is
clipped and an image whose values stay in [0, 1] is unaffected; NaN counts as the low
end, +/-inf as the ends. Float layouts Pillow cannot open (RGB or multi-channel float,
16- or 64-bit float TIFFs) are rejected as ``"unsupported_format"``, not as corrupt.

Metadata never rejects an image. Pillow refuses PNG text chunks (``tEXt``/``zTXt``/
``iTXt``, e.g. an XMP packet) and ``iCCP`` profiles that decompress to more than
``PngImagePlugin.MAX_TEXT_CHUNK`` (1 MiB) or, together, ``MAX_TEXT_MEMORY``. While
:func:`load_rgb` decodes, those two limits are raised to at least
:data:`PNG_TEXT_CHUNK_LIMIT` / :data:`PNG_TEXT_MEMORY_LIMIT` (64 MiB; the previous
values come back as soon as no decode by this module is running); a PNG whose metadata
exceeds even that is decoded again without its text chunks (and, if needed, without its
``iCCP`` profile), with a logged warning. Other formats (JPEG, WebP, TIFF, AVIF) carry
EXIF/XMP/ICC without such limits in Pillow. The pixel limits (``max_pixels``,
Pillow's decompression-bomb check) are separate and unchanged.

Bad input never raises anything but :class:`ImageRejected`, whose ``reason`` is a short
stable code (:data:`REJECTION_REASONS`) that callers count, e.g.::

    try:
        img = load_rgb(path, max_pixels=40_000_000)
    except ImageRejected as err:
        rejected[err.reason] += 1
        logger.warning("skipping %s: %s", path, err)

The module also holds the resize helpers used to store prepared images
(:func:`resize_to_square`) for duplicate
detection and :func:`is_hidden_or_system` for skipping OS clutter while scanning a
dataset tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from PIL import (
    Image,
    ImageCms,
    ImageFile,
    ImageOps,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
)

from artstyle.errors import ArtstyleError, MissingInput
from artstyle.imagenet import IMAGENET_MEAN_RGB
from artstyle.io import atomic_path

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FORMATS",
    "DEFAULT_MAX_PIXELS",
    "IMAGENET_MEAN_RGB",
    "IMAGE_SUFFIXES",
    "PNG_TEXT_CHUNK_LIMIT",
    "PNG_TEXT_MEMORY_LIMIT",
    "REJECTION_REASONS",
    "SKLEARN_PREFIX",
    "ImageRejected",
    "as_rgb_uint8",
    "is_hidden_or_system",
    "load_image_source",
    "load_rgb",
    "load_rgb_array",
    "resize_image",
    "resize_to_square",
    "save_image",
]

#: Default pixel limit (width * height) of :func:`load_rgb`: 40 Mpx, about 120 MB as RGB.
DEFAULT_MAX_PIXELS = 40_000_000

#: Formats :func:`load_rgb` accepts by default (Pillow format names, detected from the
#: content). Exotic plugins (EPS runs Ghostscript, weak-magic formats such as TGA can
#: mistake arbitrary bytes for an image) are deliberately left out. MPO (multi-picture
#: JPEG) is opened by the JPEG plugin.
DEFAULT_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "PPM", "AVIF")

#: Stable rejection codes carried by :attr:`ImageRejected.reason`.
#: File-name suffixes taken as images where only a name is known (the wrapper-folder
#: heuristic of :func:`artstyle.data.archive.safe_extract_zip`); decoding detects the
#: format from the content.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif",
                            ".tiff", ".webp", ".ppm", ".avif"})

REJECTION_REASONS: tuple[str, ...] = (
    "unreadable",  # the file cannot be opened/read (missing, a directory, permissions)
    "empty",  # 0 bytes
    "not_an_image",  # content is not an image in an accepted format
    "truncated",  # the image data ends early
    "too_large",  # more pixels than allowed and not reducible while decoding
    "decode_error",  # recognised format but corrupt / undecodable
    "unsupported_format",  # a valid file whose pixel layout Pillow cannot decode (float RGB TIFF)
)

#: Smallest ``PngImagePlugin.MAX_TEXT_CHUNK`` (largest decompressed single ``zTXt``/
#: ``iTXt``/``iCCP`` chunk) in force while :func:`load_rgb` decodes; Pillow's default
#: is 1 MiB. See the module docstring.
PNG_TEXT_CHUNK_LIMIT = 64 * 1024 * 1024
#: Smallest ``PngImagePlugin.MAX_TEXT_MEMORY`` (all text chunks of one PNG together) in
#: force while :func:`load_rgb` decodes; Pillow's default is 64 MiB.
PNG_TEXT_MEMORY_LIMIT = 64 * 1024 * 1024


_WHITE = (255, 255, 255, 255)
_RESAMPLE = Image.Resampling.LANCZOS
#: ``reducing_gap`` for :meth:`PIL.Image.Image.resize`: a first integer box reduction
#: followed by Lanczos; Pillow documents results indistinguishable from plain Lanczos
#: for values >= 3.0 at a fraction of the cost on large downscales.
_REDUCING_GAP = 3.0

# Signatures used only to word messages better (Pillow does the real detection).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)

_HIDDEN_OR_SYSTEM_NAMES = frozenset(
    {
        ".ds_store",
        "thumbs.db",
        "ehthumbs.db",
        "desktop.ini",
        "__macosx",
        ".ipynb_checkpoints",
        "$recycle.bin",
        "system volume information",
    }
)

Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


class ImageRejected(ArtstyleError, ValueError):
    """An input could not be turned into an RGB image; the caller should skip and count it.

    Parameters
    ----------
    reason : str
        Short stable code, one of :data:`REJECTION_REASONS` (``"empty"``,
        ``"truncated"``, ``"not_an_image"``, ``"too_large"``, ``"decode_error"``,
        ``"unsupported_format"``, ``"unreadable"``).
    message : str
        Human-readable explanation (sizes, limits, the underlying Pillow error).
    source : str or None, optional
        The file the image came from, when known (used in ``str(err)``).

    Attributes
    ----------
    reason, message, source
        As given.
    """

    def __init__(self, reason: str, message: str, source: str | None = None) -> None:
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}; use one of {REJECTION_REASONS}")
        self.reason = reason
        self.message = message
        self.source = source
        where = f" ({source})" if source else ""
        super().__init__(f"{reason}: {message}{where}")

    def __reduce__(self):  # picklable across multiprocessing workers
        return (type(self), (self.reason, self.message, self.source))


# --------------------------------------------------------------------------- helpers


def is_hidden_or_system(path_part: str) -> bool:
    """Whether a single file or folder name should be skipped when scanning a dataset.

    Parameters
    ----------
    path_part : str
        One path component (a file or folder *name*, not a whole path).

    Returns
    -------
    bool
        True for dotfiles and dot-folders (``.DS_Store``, ``._x.jpg`` AppleDouble files,
        ``.ipynb_checkpoints``, ``.git``), and for OS clutter compared
        case-insensitively: ``Thumbs.db``, ``ehthumbs.db``, ``desktop.ini``,
        ``__MACOSX``, ``$RECYCLE.BIN``, ``System Volume Information``. Also True for an
        empty name.
    """
    name = str(path_part)
    return not name or name.startswith(".") or name.lower() in _HIDDEN_OR_SYSTEM_NAMES


def _describe(source: Source) -> str | None:
    if isinstance(source, (str, os.PathLike)):
        return os.fsdecode(source)
    name = getattr(source, "name", None)
    return name if isinstance(name, str) else None


def _sniff(prefix: bytes) -> str | None:
    for signature, fmt in _SIGNATURES:
        if prefix.startswith(signature):
            return fmt
    if prefix[:4] == b"RIFF" and prefix[8:12] == b"WEBP":
        return "WEBP"
    return None


def _open_stream(source: Source, where: str | None) -> tuple[BinaryIO, bool]:
    """Return a seekable binary stream and whether we own (must close) it."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageRejected("empty", "no bytes given (0-byte input)", where)
        return io.BytesIO(data), True
    if isinstance(source, (str, os.PathLike)):
        try:
            if os.path.isdir(source):
                raise IsADirectoryError(f"{os.fspath(source)!s} is a directory")
            fh = open(source, "rb")  # noqa: SIM115 - closed by the caller
        except OSError as exc:
            raise ImageRejected("unreadable", f"cannot open file: {exc}", where) from exc
        try:
            size = os.fstat(fh.fileno()).st_size
        except OSError:
            size = None
        if size == 0:
            fh.close()
            raise ImageRejected("empty", "the file is empty (0 bytes)", where)
        return fh, True
    # A file-like object: keep the caller's stream open; buffer it if it cannot seek.
    seekable = getattr(source, "seekable", None)
    if callable(seekable) and seekable():
        start = source.tell()
        first = source.read(1)
        source.seek(start)
        if not first:
            raise ImageRejected("empty", "the stream holds no bytes", where)
        return source, False
    data = source.read()
    if not data:
        raise ImageRejected("empty", "the stream holds no bytes", where)
    return io.BytesIO(data), True


def _declared_riff_truncation(stream: BinaryIO, prefix: bytes) -> str | None:
    """For RIFF/WebP, compare the declared chunk size with the real length."""
    if len(prefix) < 12 or prefix[:4] != b"RIFF" or prefix[8:12] != b"WEBP":
        return None
    declared = int.from_bytes(prefix[4:8], "little") + 8
    pos = stream.tell()
    stream.seek(0, io.SEEK_END)
    actual = stream.tell()
    stream.seek(pos)
    if actual < declared:
        return f"WebP/RIFF header declares {declared} bytes but only {actual} are present"
    return None


def _jpeg_draft_to_fit(im: ImageFile.ImageFile, max_pixels: int) -> bool:
    """Ask libjpeg to decode at 1/2, 1/4 or 1/8 scale so the result fits ``max_pixels``."""
    if im.format not in ("JPEG", "MPO"):
        return False
    w, h = im.size
    for scale in (2, 4, 8):
        if -(-w // scale) * -(-h // scale) <= max_pixels:
            break
    else:
        return False
    if im.draft(None, (max(1, w // scale), max(1, h // scale))) is None:
        return False
    logger.debug("JPEG %dx%d decoded at 1/%d scale -> %dx%d", w, h, scale, *im.size)
    return im.size[0] * im.size[1] <= max_pixels


def _classify_decode_error(exc: BaseException, fmt: str | None) -> tuple[str, str]:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return "truncated", f"{fmt or 'image'} data ends early: {text}"
    if isinstance(exc, MemoryError):
        return "too_large", f"ran out of memory while decoding the {fmt or 'image'}"
    return "decode_error", f"cannot decode the {fmt or 'image'}: {type(exc).__name__}: {text}"


# ------------------------------------------------------------------ PNG metadata limits

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = frozenset({b"tEXt", b"zTXt", b"iTXt"})
#: What a PNG is decoded without, in turn, while its metadata is over Pillow's limits.
_PNG_METADATA_DROPS = (_PNG_TEXT_CHUNKS, _PNG_TEXT_CHUNKS | {b"iCCP"})

_png_limits_lock = threading.Lock()
_png_limits_users = 0
_png_limits_saved: tuple[int, int] | None = None


class _PngMetadataTooLarge(Exception):
    """Internal: Pillow refused a PNG for the size of its text/ICC chunks."""


def _is_png_metadata_limit(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, ValueError) and ("MAX_TEXT_CHUNK" in text or "MAX_TEXT_MEMORY" in text)


@contextlib.contextmanager
def _png_text_limits():
    """Raise Pillow's PNG text-chunk limits while at least one decode of ours runs.

    Reference-counted across threads: the first decode to enter saves Pillow's values
    and raises them (never lowers them), the last one to leave puts them back.
    """
    global _png_limits_users, _png_limits_saved
    with _png_limits_lock:
        if _png_limits_users == 0:
            saved = (PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY)
            _png_limits_saved = saved
            PngImagePlugin.MAX_TEXT_CHUNK = max(saved[0], PNG_TEXT_CHUNK_LIMIT)
            PngImagePlugin.MAX_TEXT_MEMORY = max(saved[1], PNG_TEXT_MEMORY_LIMIT)
        _png_limits_users += 1
    try:
        yield
    finally:
        with _png_limits_lock:
            _png_limits_users -= 1
            if _png_limits_users == 0 and _png_limits_saved is not None:
                PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY = _png_limits_saved
                _png_limits_saved = None


def _png_without_chunks(
    stream: BinaryIO, start: int, drop: frozenset[bytes]
) -> tuple[io.BytesIO, set[bytes]]:
    """Copy the PNG at ``start`` without the chunks whose type is in ``drop``.

    Dropped chunks are skipped with a seek, never read or decompressed, so memory stays
    bounded by the kept chunks. Anything irregular (a chunk running past the end) is
    copied as it is, for Pillow to report as usual. Returns the copy (positioned at 0)
    and the chunk types actually dropped.
    """
    stream.seek(start)
    out = io.BytesIO()
    out.write(stream.read(len(_PNG_SIGNATURE)))
    dropped: set[bytes] = set()
    while True:
        head = stream.read(8)
        if len(head) < 8:
            out.write(head)
            break
        length, kind = int.from_bytes(head[:4], "big"), head[4:8]
        if kind in drop:
            stream.seek(length + 4, io.SEEK_CUR)  # data and CRC
            dropped.add(kind)
            continue
        out.write(head)
        remaining = length + 4
        while remaining > 0:
            block = stream.read(min(remaining, ImageFile.SAFEBLOCK))
            if not block:
                break
            out.write(block)
            remaining -= len(block)
        if remaining > 0 or kind == b"IEND":
            break
    out.seek(0)
    return out, dropped


# -------------------------------------------------------------- TIFF layouts Pillow lacks

_TIFF_SAMPLE_FORMATS = {1: "unsigned integer", 2: "signed integer", 3: "floating-point",
                        4: "untyped", 5: "complex integer", 6: "complex floating-point"}
_TIFF_PHOTOMETRIC = {0: "greyscale", 1: "greyscale", 2: "RGB", 3: "palette", 4: "mask",
                     5: "CMYK", 6: "YCbCr", 8: "CIELab", 9: "ICCLab", 10: "ITULab",
                     32844: "LogL", 32845: "LogLuv"}


def _unsupported_tiff_layout(stream: BinaryIO, start: int) -> str | None:
    """Describe a TIFF's sample layout when Pillow refused it *only* for that layout.

    Pillow's TIFF plugin raises ``SyntaxError("unknown pixel mode")`` when the header and
    tags are fine but no Pillow mode matches the samples (float RGB, 16/64-bit float,
    32-bit integer RGB, ...); every other failure returns None (a corrupt file).
    """
    try:
        stream.seek(start)
        TiffImagePlugin.TiffImageFile(stream)
    except SyntaxError as exc:
        if "unknown pixel mode" not in str(exc):
            return None
    except Exception:  # noqa: BLE001 - any other failure: not merely an unsupported layout
        return None
    else:
        return None
    try:
        stream.seek(start)
        ifd = TiffImagePlugin.ImageFileDirectory_v2(stream.read(8))
        stream.seek(ifd.next)
        ifd.load(stream)
        spp = int(ifd.get(TiffImagePlugin.SAMPLESPERPIXEL, 1))
        bits = sorted({int(b) for b in ifd.get(TiffImagePlugin.BITSPERSAMPLE, (1,))})
        kinds = sorted({int(f) for f in ifd.get(TiffImagePlugin.SAMPLEFORMAT, (1,))})
        photo = ifd.get(TiffImagePlugin.PHOTOMETRIC_INTERPRETATION)
    except Exception:  # noqa: BLE001 - only the wording of the message is at stake
        return "a sample layout Pillow does not decode"
    kind = "/".join(_TIFF_SAMPLE_FORMATS.get(k, f"sample format {k}") for k in kinds)
    colour = _TIFF_PHOTOMETRIC.get(photo, f"photometric {photo}")
    text = (f"{colour}, {spp} sample{'s' if spp != 1 else ''} per pixel of "
            f"{'/'.join(map(str, bits))}-bit {kind}")
    if 3 in kinds:
        text += " (Pillow reads floating-point TIFFs only as one 32-bit channel)"
    return text


# ----------------------------------------------------------------- colour conversion


def _scale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Map a high-bit-depth single-channel array to uint8 without clipping the range."""
    if mode.startswith("I;16") or mode == "I":
        a = arr.astype(np.int64)
        if mode == "I" and (a.min(initial=0) < 0 or a.max(initial=0) > 65535):
            return _minmax_uint8(a.astype(np.float64))
        # round(v * 255 / 65535) == round(v / 257)
        return ((a * 255 + 32767) // 65535).astype(np.uint8)
    # mode "F": nominal range [0, 1], widened linearly to cover values outside it
    # (module docstring): continuous, so 1.0001 and 1.0 give nearly the same image.
    a = arr.astype(np.float64)
    finite = a[np.isfinite(a)]
    lo = min(0.0, float(finite.min())) if finite.size else 0.0
    hi = max(1.0, float(finite.max())) if finite.size else 1.0
    a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo)
    return np.clip(np.rint((a - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def _minmax_uint8(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.rint((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


#: Rendering intent of every embedded-profile conversion to sRGB. PERCEPTUAL: for the
#: matrix/TRC profiles nearly all RGB and greyscale images carry (Adobe RGB, Display P3,
#: ProPhoto, gamma greys) LittleCMS has no perceptual table and computes exactly the
#: relative-colorimetric result (colours outside sRGB clipped to its gamut edge, white
#: mapped to white); for LUT-based profiles that do ship a perceptual table (printer
#: CMYK, some camera/scanner profiles) it applies the vendor's gamut compression, which
#: keeps gradations in saturated areas instead of flattening them at the gamut edge -
#: better for reading a painting's palette. It is also what the CMYK path always used.
_ICC_INTENT = ImageCms.Intent.PERCEPTUAL
#: Pillow mode a profile's colour space converts from.
_ICC_MODE_FOR_SPACE = {"RGB": "RGB", "GRAY": "L", "CMYK": "CMYK"}
_ICC_CACHE_SIZE = 16
_icc_cache: OrderedDict[tuple[bytes, str], tuple[Any, str]] = OrderedDict()
_icc_lock = threading.Lock()
_srgb_profile: Any = None


class _IccUnusable(Exception):
    """Internal: an embedded ICC profile cannot be applied (the message says why)."""


def _icc_transform(icc: bytes, mode: str) -> tuple[Any, str]:
    """A cached LittleCMS transform from the profile ``icc`` to sRGB for ``mode`` pixels.

    Returns ``(transform, input_mode)``; ``input_mode`` differs from ``mode`` only for
    greyscale (``L``) pixels tagged with an RGB profile, which are expanded to RGB
    (neutral grey in that space). Raises :class:`_IccUnusable`.
    """
    global _srgb_profile
    key = (hashlib.sha256(icc).digest(), mode)
    with _icc_lock:
        hit = _icc_cache.get(key)
        if hit is not None:
            _icc_cache.move_to_end(key)
            return hit
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except Exception as exc:  # PyCMSError/OSError/ValueError/TypeError: all "unreadable"
        raise _IccUnusable(f"unreadable profile: {exc}") from exc
    space = str(getattr(source.profile, "xcolor_space", "") or "").strip()
    in_mode = _ICC_MODE_FOR_SPACE.get(space)
    if in_mode is None or not (in_mode == mode or (mode == "L" and in_mode == "RGB")):
        raise _IccUnusable(f"a {space or 'unknown'} profile does not describe {mode} pixels")
    if _srgb_profile is None:
        _srgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    try:
        transform = ImageCms.buildTransform(
            source, _srgb_profile, in_mode, "RGB", renderingIntent=_ICC_INTENT
        )
    except Exception as exc:
        raise _IccUnusable(f"no transform to sRGB: {exc}") from exc
    with _icc_lock:
        _icc_cache[key] = (transform, in_mode)
        while len(_icc_cache) > _ICC_CACHE_SIZE:
            _icc_cache.popitem(last=False)
    return transform, in_mode


def _apply_icc(im: Image.Image, icc: bytes, where: str | None) -> tuple[Image.Image, str]:
    """Convert an ``RGB``/``RGBA``/``L``/``LA``/``CMYK`` image from its profile to sRGB.

    Returns ``(RGB or RGBA image, "converted")``, or ``(im, "unusable")`` with a logged
    reason when the profile cannot be applied (the pixels are then taken as they are).
    Alpha is kept as it is (only colour is transformed).
    """
    colour, alpha = im, None
    if im.mode in ("RGBA", "LA"):
        colour, alpha = im.convert(im.mode[:-1]), im.getchannel("A")
    try:
        transform, in_mode = _icc_transform(icc, colour.mode)
        if colour.mode != in_mode:
            colour = colour.convert(in_mode)
        out = transform.apply(colour)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad profile must never sink a good image
        fallback = "Pillow's naive CMYK->RGB" if im.mode == "CMYK" else "the pixels as they are"
        logger.warning(
            "%s: embedded ICC profile unusable (%s); using %s",
            where or "<stream>", str(exc).replace("\n", " "), fallback,
        )
        return im, "unusable"
    if alpha is not None:
        out.putalpha(alpha)
    return out, "converted"


def _canonical_mode(im: Image.Image, where: str | None) -> Image.Image:
    """Bring any decoded image to ``RGB``, ``RGBA``, ``L``, ``LA`` or ``CMYK`` (8 bits)."""
    mode = im.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        arr = np.asarray(im)
        grey = Image.fromarray(_scale_to_uint8(arr, mode), "L")
        key = im.info.get("transparency")
        if isinstance(key, int):  # tRNS of a 16-bit greyscale PNG: one transparent level
            alpha = np.where(arr == key, 0, 255).astype(np.uint8)
            grey = Image.merge("LA", (grey, Image.fromarray(alpha, "L")))
        return grey
    if mode in ("RGBA", "LA", "CMYK"):
        return im
    keyed = "transparency" in im.info
    if mode in ("RGB", "L") and not keyed:
        return im
    try:
        if mode in ("RGB", "L"):  # a tRNS colour key becomes alpha
            return im.convert(mode + "A")
        if mode == "La":  # premultiplied (TIFF associated alpha): Pillow only goes to LA
            return im.convert("LA")
        if mode == "1" and not keyed:
            return im.convert("L")
        has_alpha = mode in ("RGBa", "PA") or keyed
        return im.convert("RGBA" if has_alpha else "RGB")
    except (ValueError, OSError) as exc:
        raise ImageRejected(
            "unsupported_format", f"cannot convert pixel mode {mode!r} to RGB: {exc}", where
        ) from exc


def _to_rgb(im: Image.Image, where: str | None) -> tuple[Image.Image, str]:
    """Convert any decoded Pillow image to 8-bit sRGB, compositing alpha on white.

    Returns the image (``im`` itself when it already is plain RGB without a profile)
    and the ICC status: ``"none"`` (no embedded profile), ``"converted"`` or
    ``"unusable"`` (see :func:`_apply_icc`).
    """
    icc = im.info.get("icc_profile")
    base = _canonical_mode(im, where)
    status = "none"
    if icc:
        base, status = _apply_icc(base, bytes(icc), where)
    try:
        if base.mode in ("RGBA", "LA"):
            rgba = base.convert("RGBA")
            background = Image.new("RGBA", rgba.size, _WHITE)
            return Image.alpha_composite(background, rgba).convert("RGB"), status
        return (base if base.mode == "RGB" else base.convert("RGB")), status  # L, naive CMYK
    except (ValueError, OSError) as exc:
        raise ImageRejected(
            "unsupported_format", f"cannot convert pixel mode {base.mode!r} to RGB: {exc}", where
        ) from exc


# --------------------------------------------------------------------------- loading


def load_rgb(
    source: Source,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    formats: Iterable[str] | None = DEFAULT_FORMATS,
) -> Image.Image:
    """Safely decode one image into an 8-bit RGB :class:`PIL.Image.Image`.

    Parameters
    ----------
    source : str, os.PathLike, bytes, bytearray, memoryview or binary file object
        The encoded image. A file object is read from its current position and left
        open; a path is opened and closed here. The format is detected from the
        content (a PNG named ``x.jpg`` loads; a text file named ``x.jpg`` is rejected).
    max_pixels : int or None, optional
        Largest accepted ``width * height`` of the *decoded* image (default 40 Mpx).
        A JPEG above it is decoded at 1/2, 1/4 or 1/8 scale (libjpeg DCT scaling via
        :meth:`PIL.Image.Image.draft`), the largest that fits; any other image above it
        is rejected with reason ``"too_large"`` before its pixels are decoded. ``None``
        leaves only Pillow's own decompression-bomb limit
        (``2 * PIL.Image.MAX_IMAGE_PIXELS``, which always applies).
    formats : iterable of str or None, optional
        Pillow format names to accept (default :data:`DEFAULT_FORMATS`); ``None``
        accepts every format Pillow can open.

    Returns
    -------
    PIL.Image.Image
        Mode ``"RGB"`` (3 x uint8 per pixel), size ``(width, height)`` after EXIF
        orientation and any decode-time reduction; only the first frame of animated or
        multi-page files. Detached from the source (the file is closed). Its ``info``
        holds only ``"icc"``: ``"none"`` (no embedded ICC profile), ``"converted"``
        (the profile was applied, pixels are sRGB) or ``"unusable"`` (a profile was
        present but could not be applied; the reason is logged).

    Raises
    ------
    ImageRejected
        With ``reason`` ``"unreadable"`` (cannot open), ``"empty"`` (0 bytes),
        ``"not_an_image"`` (not an image in an accepted format), ``"truncated"``,
        ``"too_large"`` (over ``max_pixels`` and not reducible, or over Pillow's
        decompression-bomb limit, or out of memory), ``"decode_error"`` (corrupt or
        undecodable) or ``"unsupported_format"`` (a valid file whose pixel layout Pillow
        cannot decode, e.g. a float RGB TIFF). No other exception escapes for bad
        *content*; metadata size never causes a rejection (module docstring).
    ValueError
        If ``max_pixels`` is not a positive integer (a programming error).
    RuntimeError
        If ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` was set to True by someone (a
        configuration error: truncated files would pass).

    Notes
    -----
    ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is never changed (it must stay ``False``).
    Pillow's ``DecompressionBombWarning`` (images above ``PIL.Image.MAX_IMAGE_PIXELS``,
    ~89.5 Mpx) is left to the warnings machinery, since ``max_pixels`` is the limit
    actually enforced here; if a caller turns that warning into an error
    (``-W error``) it is reported as ``"too_large"`` like ``DecompressionBombError``.

    Colour handling: an embedded ICC profile (RGB, greyscale or CMYK; greyscale pixels
    tagged with an RGB profile are read as neutral RGB) is converted to sRGB with
    LittleCMS, perceptual intent (for matrix/TRC profiles the same as relative
    colorimetric); without a profile, pixels are taken as sRGB and CMYK goes through
    Pillow's naive formula; a profile that cannot be applied is logged and the pixels
    are used as they are. 16-bit greyscale is scaled ``round(v * 255 / 65535)``;
    16-bit RGB(A) PNGs are reduced by Pillow to their high byte (error <= 1 level);
    float ``F`` is scaled from [0, 1] (widened when values fall outside, module
    docstring). Alpha and ``tRNS`` transparency are composited on white (straight
    alpha) after the colour conversion.
    """
    if max_pixels is not None and (not isinstance(max_pixels, (int, np.integer)) or max_pixels <= 0):
        raise ValueError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # someone flipped the global: refuse to be lenient
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True; it must stay False so that "
            "truncated images are rejected instead of silently padded"
        )
    where = _describe(source)
    allowed = None if formats is None else [f.upper() for f in formats if f.upper() in _known_formats()]

    stream, owned = _open_stream(source, where)
    try:
        start = stream.tell()
        prefix = stream.read(16)
        stream.seek(start)
        sniffed = _sniff(prefix)
        riff_problem = _declared_riff_truncation(stream, prefix)
        if riff_problem:
            raise ImageRejected("truncated", riff_problem, where)

        current: BinaryIO = stream
        dropped: set[bytes] = set()
        for attempt in range(len(_PNG_METADATA_DROPS) + 1):
            try:
                rgb, icc_status = _decode_stream(
                    current, allowed=allowed, sniffed=sniffed, max_pixels=max_pixels, where=where
                )
                break
            except _PngMetadataTooLarge as exc:
                if attempt == len(_PNG_METADATA_DROPS):  # nothing left to drop: cannot happen
                    raise ImageRejected(
                        "decode_error", f"cannot decode the PNG: {exc}", where
                    ) from exc
                drop = _PNG_METADATA_DROPS[attempt]
                logger.warning(
                    "%s: PNG metadata over Pillow's size limits (%s); "
                    "decoding it without its %s chunks",
                    where or "<stream>", exc, "/".join(sorted(k.decode("ascii") for k in drop)),
                )
                current, dropped = _png_without_chunks(stream, start, drop)
    finally:
        if owned:
            stream.close()

    if rgb.mode != "RGB":  # defensive: _to_rgb always returns RGB
        raise ImageRejected("decode_error", f"conversion produced mode {rgb.mode}", where)
    if b"iCCP" in dropped:
        icc_status = "unusable"  # the warning above said why
    rgb.info.clear()  # drop EXIF/ICC of the source: pixels are now plain 8-bit sRGB
    rgb.info["icc"] = icc_status
    return rgb


def _decode_stream(
    stream: BinaryIO,
    *,
    allowed: list[str] | None,
    sniffed: str | None,
    max_pixels: int | None,
    where: str | None,
) -> tuple[Image.Image, str]:
    """Open, check, decode, orient and convert one image (the body of :func:`load_rgb`).

    Raises :class:`ImageRejected`, or :class:`_PngMetadataTooLarge` for the caller to
    retry without the PNG's metadata chunks.
    """
    start = stream.tell()
    with _png_text_limits():
        try:
            im = Image.open(stream, formats=allowed)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(
                "too_large", f"over Pillow's decompression-bomb limit: {exc}", where
            ) from exc
        except UnidentifiedImageError as exc:
            raise _unidentified(stream, start, sniffed, allowed, where) from exc
        except ImageRejected:
            raise
        except Exception as exc:  # plugins raise OSError/ValueError/SyntaxError/...
            if _is_png_metadata_limit(exc):
                raise _PngMetadataTooLarge(str(exc)) from exc
            reason, message = _classify_decode_error(exc, sniffed)
            raise ImageRejected(reason, message, where) from exc

        with im:
            fmt = im.format
            width, height = im.size
            if width <= 0 or height <= 0:
                raise ImageRejected("decode_error", f"invalid image size {width}x{height}", where)
            if max_pixels is not None and width * height > max_pixels:
                if not _jpeg_draft_to_fit(im, max_pixels):
                    raise ImageRejected(
                        "too_large",
                        f"{fmt} image is {width}x{height} = {width * height:,} pixels, over "
                        f"the limit of {max_pixels:,} pixels"
                        + (" even at 1/8 scale" if fmt in ("JPEG", "MPO") else
                           f" ({fmt} cannot be reduced while decoding)"),
                        where,
                    )
                logger.info(
                    "%s: %s %dx%d over %d px, decoded reduced to %dx%d",
                    where or "<stream>", fmt, width, height, max_pixels, *im.size,
                )
            try:
                im.load()
            except ImageRejected:
                raise
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageRejected(
                    "too_large", f"over Pillow's decompression-bomb limit: {exc}", where
                ) from exc
            except Exception as exc:
                if _is_png_metadata_limit(exc):  # text chunks after the image data
                    raise _PngMetadataTooLarge(str(exc)) from exc
                reason, message = _classify_decode_error(exc, fmt)
                raise ImageRejected(reason, message, where) from exc

            try:
                oriented = ImageOps.exif_transpose(im)
            except Exception as exc:  # corrupt EXIF must not sink a good image
                logger.warning(
                    "%s: unreadable EXIF orientation (%s); keeping stored orientation",
                    where or "<stream>", exc,
                )
                oriented = im.copy()
            try:
                rgb, icc_status = _to_rgb(oriented, where)
            except ImageRejected:
                raise
            except MemoryError as exc:
                raise ImageRejected("too_large", "ran out of memory converting to RGB", where) from exc
            if rgb is im:
                rgb = im.copy()
    return rgb, icc_status


def _unidentified(
    stream: BinaryIO, start: int, sniffed: str | None, allowed: list[str] | None, where: str | None
) -> ImageRejected:
    """The rejection for content Pillow did not recognise (no plugin accepted it)."""
    if sniffed and allowed is not None and sniffed not in allowed:
        return ImageRejected(
            "not_an_image",
            f"a {sniffed} file, which is not among the accepted formats ({', '.join(allowed)})",
            where,
        )
    if sniffed == "TIFF":
        layout = _unsupported_tiff_layout(stream, start)
        if layout:
            return ImageRejected(
                "unsupported_format", f"TIFF pixel layout not supported by Pillow: {layout}", where
            )
    if sniffed:
        return ImageRejected(
            "decode_error",
            f"starts like a {sniffed} file but its header is unreadable (truncated or corrupt)",
            where,
        )
    kinds = ", ".join(allowed) if allowed is not None else "any Pillow format"
    return ImageRejected("not_an_image", f"content is not a recognised image ({kinds})", where)


def load_rgb_array(
    source: Source,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    formats: Iterable[str] | None = DEFAULT_FORMATS,
) -> np.ndarray:
    """Like :func:`load_rgb` but return a NumPy array.

    Parameters
    ----------
    source, max_pixels, formats
        See :func:`load_rgb`.

    Returns
    -------
    numpy.ndarray
        Shape ``(height, width, 3)``, dtype ``uint8``, RGB order, values 0..255,
        C-contiguous and writeable (a copy owned by the caller).

    Raises
    ------
    ImageRejected
        See :func:`load_rgb`.
    """
    return np.array(load_rgb(source, max_pixels=max_pixels, formats=formats), dtype=np.uint8)


def _known_formats() -> dict:
    if not Image.OPEN or "WEBP" not in Image.OPEN:
        Image.init()
    return Image.OPEN


# --------------------------------------------------------------------------- resizing


def _check_rgb_like(img: Image.Image, name: str) -> None:
    if not isinstance(img, Image.Image):
        raise TypeError(f"{name} expects a PIL.Image.Image, got {type(img).__name__}")


def resize_to_square(
    img: Image.Image,
    side: int,
    *,
    method: Literal["letterbox", "center_crop", "stretch"] = "letterbox",
    fill: tuple[int, int, int] = IMAGENET_MEAN_RGB,
) -> Image.Image:
    """Resize an image to ``side x side`` pixels, the form prepared images are stored in.

    The default, ``"letterbox"``, keeps the **whole painting** undistorted: the longer
    side is scaled to ``side`` (up or down) and the shorter one is centred and padded
    with ``fill``. For art-style classification this keeps composition and the edges
    of the canvas (centre-cropping would drop them) and keeps brush-stroke texture
    isotropic (stretching would distort it); the padding defaults to the ImageNet mean
    colour, i.e. ~0 after VGG "caffe" mean subtraction, so it carries almost no signal.

    Parameters
    ----------
    img : PIL.Image.Image
        Source image, normally mode ``"RGB"`` from :func:`load_rgb`.
    side : int
        Output width and height in pixels (>= 1).
    method : {"letterbox", "center_crop", "stretch"}, optional
        ``"letterbox"``: fit the whole image and pad (default).
        ``"center_crop"``: scale the shorter side to ``side`` and crop the centre
        square (the usual ImageNet evaluation crop; loses the borders of elongated
        paintings). ``"stretch"``: resize anisotropically to the square (keeps all
        content, distorts proportions).
    fill : tuple of 3 int, optional
        RGB padding colour for ``"letterbox"`` (default :data:`IMAGENET_MEAN_RGB`).

    Returns
    -------
    PIL.Image.Image
        A new image of size ``(side, side)`` in the mode of ``img`` (RGB for RGB
        input). Resampling: Lanczos with ``reducing_gap=3.0`` (area-correct
        downscaling, see Pillow's ``Image.resize``).

    Raises
    ------
    ValueError
        If ``side`` < 1 or ``method`` is unknown.
    """
    _check_rgb_like(img, "resize_to_square")
    side = int(side)
    if side < 1:
        raise ValueError(f"side must be >= 1, got {side!r}")
    w, h = img.size
    if method == "stretch":
        return img.resize((side, side), _RESAMPLE, reducing_gap=_REDUCING_GAP)
    if method == "center_crop":
        short = min(w, h)
        left, top = (w - short) / 2, (h - short) / 2
        return img.resize(
            (side, side), _RESAMPLE, box=(left, top, left + short, top + short),
            reducing_gap=_REDUCING_GAP,
        )
    if method != "letterbox":
        raise ValueError(f"unknown method {method!r}; use 'letterbox', 'center_crop' or 'stretch'")
    ratio = side / max(w, h)
    new_w = min(side, max(1, round(w * ratio)))
    new_h = min(side, max(1, round(h * ratio)))
    resized = img if (new_w, new_h) == (w, h) else img.resize(
        (new_w, new_h), _RESAMPLE, reducing_gap=_REDUCING_GAP
    )
    if (new_w, new_h) == (side, side):
        return resized.copy() if resized is img else resized
    colour = fill if img.mode == "RGB" else _fill_for_mode(img.mode, fill)
    canvas = Image.new(img.mode, (side, side), colour)
    canvas.paste(resized, ((side - new_w) // 2, (side - new_h) // 2))
    return canvas


def _fill_for_mode(mode: str, fill: tuple[int, int, int]):
    """The RGB ``fill`` colour expressed in ``mode`` (Pillow's own conversion, e.g. ITU-R 601-2 luma for L)."""
    return Image.new("RGB", (1, 1), tuple(fill)).convert(mode).getpixel((0, 0))


# ------------------------------------------------------------------- arrays and files


def as_rgb_uint8(image: Any, *, what: str = "image") -> np.ndarray:
    """Validate an image and return it as a C-contiguous ``uint8`` RGB array.

    Parameters
    ----------
    image : array-like, shape (H, W, 3), (H, W, 4) or (H, W)
        ``uint8``, or float/int values in [0, 255] (rounded and clipped). An alpha
        channel is dropped; a grey image is repeated to three channels.
    what : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray, shape (H, W, 3), dtype uint8

    Raises
    ------
    ValueError
        Wrong rank/channel count, an empty image, or non-finite values.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] not in (3, 4):
        raise ValueError(f"{what} must have shape (H, W, 3); got {arr.shape}")
    arr = arr[..., :3]
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{what} is empty: shape {arr.shape}")
    if arr.dtype != np.uint8:
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{what} contains NaN or Inf values")
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an RGB ``uint8`` image to ``(height, width)`` with Pillow (Lanczos, antialiased).

    Returns the input unchanged when it already has that size.
    """
    image = as_rgb_uint8(image)
    if image.shape[:2] == (height, width):
        return image
    resized = Image.fromarray(image).resize((int(width), int(height)), Image.Resampling.LANCZOS)
    return np.asarray(resized, dtype=np.uint8).copy()


def save_image(image: np.ndarray, path: str | os.PathLike, *,
               metadata: dict[str, str] | None = None) -> Path:
    """Write an RGB uint8 image atomically (format from the suffix, e.g. ``.png``).

    Parameters
    ----------
    image : array-like, shape (H, W, 3)
        See :func:`as_rgb_uint8`.
    path : path-like
        Destination; its suffix picks the format (Pillow).
    metadata : dict of str or None
        PNG text chunks (``tEXt``), e.g. the seed of a style transfer; ignored for
        other formats.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    image = as_rgb_uint8(image)
    options = {}
    if metadata and Path(path).suffix.lower() == ".png":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for key, value in metadata.items():
            info.add_text(str(key), str(value))
        options["pnginfo"] = info
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, **options)
    return Path(path)


#: Prefix of the images bundled with scikit-learn (``sklearn:china.jpg``, ``sklearn:flower.jpg``).
SKLEARN_PREFIX = "sklearn:"


def load_image_source(source: str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Load a content or style image given as a path or ``sklearn:<name>``.

    Parameters
    ----------
    source : str
        A file path (read by the safe loader :func:`load_rgb_array`:
        EXIF orientation, alpha on white, greyscale/CMYK to RGB), or
        ``sklearn:china.jpg`` / ``sklearn:flower.jpg`` (images bundled with scikit-learn).

    Returns
    -------
    ndarray of shape (H, W, 3), uint8

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    artstyle.images.ImageRejected
        The file is not a usable image.
    """
    if source.startswith(SKLEARN_PREFIX):
        from sklearn.datasets import load_sample_image

        return np.ascontiguousarray(load_sample_image(source[len(SKLEARN_PREFIX):]))
    if not Path(source).exists():
        raise MissingInput(f"image {source} not found")
    return load_rgb_array(source, max_pixels=max_pixels)
