"""Tests for artstyle.images: the safe loader, rejections, resize helpers, hashing."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from pathlib import Path

import image_factory as fac
import numpy as np
import PIL
import pytest
from PIL import Image, ImageCms, ImageFile, PngImagePlugin, UnidentifiedImageError

from artstyle import images
from artstyle.hashing import sha256_file
from artstyle.images import (
    IMAGENET_MEAN_RGB,
    REJECTION_REASONS,
    ImageRejected,
    is_hidden_or_system,
    load_rgb,
    load_rgb_array,
    resize_to_square,
)


def _reject(source, **kw) -> ImageRejected:
    with pytest.raises(ImageRejected) as info:
        load_rgb(source, **kw)
    assert info.value.reason in REJECTION_REASONS
    return info.value


def _close(actual, expected, tol):
    assert np.all(np.abs(np.asarray(actual, int) - np.asarray(expected, int)) <= tol), (actual, expected)


@pytest.fixture(autouse=True)
def _truncated_flag_stays_false():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    yield
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ------------------------------------------------------------------ colour handling


def test_plain_rgb_jpeg_array_contract(tmp_path):
    arr = load_rgb_array(fac.make_rgb_jpeg(tmp_path / "a.jpg"))
    assert arr.shape == (32, 48, 3) and arr.dtype == np.uint8
    assert arr.flags.c_contiguous and arr.flags.writeable
    _close(arr[16, 0], (0, 128, 255), 8)  # left edge of the gradient


def test_cmyk_jpeg_pure_red(tmp_path):
    img = load_rgb(fac.make_cmyk_jpeg(tmp_path / "cmyk.jpg"))
    assert img.mode == "RGB" and img.size == (48, 32)
    _close(np.asarray(img)[10, 10], (255, 0, 0), 6)


def test_cmyk_with_corrupt_icc_falls_back_and_logs(tmp_path, caplog):
    path = fac.make_cmyk_jpeg(tmp_path / "cmyk_icc.jpg", icc_profile=b"not a profile" * 8)
    with caplog.at_level(logging.WARNING, logger="artstyle.images"):
        arr = load_rgb_array(path)
    _close(arr[5, 5], (255, 0, 0), 6)
    assert "ICC" in caplog.text


def test_rgba_png_composited_on_white(tmp_path):
    arr = load_rgb_array(fac.make_rgba_png(tmp_path / "rgba.png"))
    assert arr.shape == (32, 48, 3)
    assert arr[5, 2].tolist() == [255, 255, 255]  # transparent red -> white
    assert arr[5, 24].tolist() == [0, 0, 255]  # opaque blue
    _close(arr[5, 45], (127, 127, 127), 1)  # black at alpha 128 over white


def test_palette_png_transparency_becomes_white(tmp_path):
    path = fac.make_palette_png_transparent(tmp_path / "p.png")
    with Image.open(path) as raw:
        assert raw.mode == "P" and "transparency" in raw.info
    arr = load_rgb_array(path)
    assert arr[0, 0].tolist() == [255, 255, 255]
    assert arr[0, 47].tolist() == [255, 0, 0]


def test_la_png(tmp_path):
    arr = load_rgb_array(fac.make_la_png(tmp_path / "la.png"))
    assert arr[3, 3].tolist() == [255, 255, 255]
    assert arr[3, 40].tolist() == [50, 50, 50]


def test_grey16_png_scaled_not_clipped(tmp_path):
    path = fac.make_grey16_png(tmp_path / "g16.png")
    with Image.open(path) as raw:
        assert raw.mode.startswith("I")  # really 16-bit on disk
    arr = load_rgb_array(path)
    np.testing.assert_array_equal(arr[0, :4, 0], fac.LEVELS16_TO_8)  # 1000 -> 4, not 255
    assert np.all(arr[..., 0] == arr[..., 1]) and np.all(arr[..., 1] == arr[..., 2])


def test_rgb16_png(tmp_path):
    path = fac.make_rgb16_png(tmp_path / "rgb16.png")
    with Image.open(path) as raw:
        assert raw.mode == "RGB"
    arr = load_rgb_array(path)
    for c in range(3):  # Pillow keeps the high byte: within 1 level of round(v/257)
        _close(arr[0, :4, c], fac.LEVELS16_TO_8, 1)


def test_mode_I_and_F_tiff(tmp_path):
    Image.fromarray(np.array([[0, 65535, 1000]], np.int32)).save(tmp_path / "i.tif")
    Image.fromarray(np.array([[0.0, 1.0, 0.5]], np.float32)).save(tmp_path / "f.tif")
    assert load_rgb_array(tmp_path / "i.tif")[0, :, 0].tolist() == [0, 255, 4]
    assert load_rgb_array(tmp_path / "f.tif")[0, :, 0].tolist() == [0, 255, 128]


def test_greyscale_and_bilevel(tmp_path):
    grey = load_rgb_array(fac.make_grey_jpeg(tmp_path / "g.jpg", level=100))
    assert grey.shape == (32, 48, 3)
    _close(grey[10, 10], (100, 100, 100), 1)
    bilevel = load_rgb_array(fac.make_bilevel_png(tmp_path / "b.png"))
    assert bilevel[0, 0].tolist() == [0, 0, 0] and bilevel[0, 47].tolist() == [255, 255, 255]
    assert set(np.unique(bilevel).tolist()) == {0, 255}


@pytest.mark.parametrize("lossless", [True, False])
def test_webp_with_alpha(tmp_path, lossless):
    arr = load_rgb_array(fac.make_webp(tmp_path / "a.webp", lossless=lossless))
    assert arr.shape == (32, 48, 3)
    _close(arr[16, 2], (255, 255, 255), 3)
    _close(arr[16, 45], (255, 0, 0), 12)


def test_animated_gif_first_frame(tmp_path):
    arr = load_rgb_array(fac.make_animated_gif(tmp_path / "a.gif"))
    _close(arr[10, 10], (255, 0, 0), 2)


def test_exif_orientation_6(tmp_path):
    img = load_rgb(fac.make_exif_rotated_jpeg(tmp_path / "rot.jpg"))
    assert img.size == (32, 48)  # stored 48x32, displayed rotated 90 degrees
    arr = np.asarray(img)
    _close(arr[3, 28], (255, 0, 0), 30)  # marked stored top-left is now top-right
    _close(arr[3, 3], (255, 255, 255), 10)
    _close(arr[44, 28], (255, 255, 255), 10)
    assert "exif" not in img.info


def test_format_from_content_not_extension(tmp_path):
    arr = load_rgb_array(fac.make_png_named_jpg(tmp_path / "really_png.jpg"))
    assert arr[0, 0].tolist() == [0, 0, 255]


def test_unicode_and_space_file_names(tmp_path):
    folder = tmp_path / "Réalisme" / "Jean-François Millet"
    for name in ["Café Terrasse, l'été.jpg", "L'Angélus (1857).JPG", "日本 画.png"]:
        path = fac.make_png_named_jpg(folder / name) if name.endswith(".png") else fac.make_rgb_jpeg(folder / name)
        assert load_rgb(path).size == (48, 32)
        assert load_rgb(str(path)).mode == "RGB"


def test_bytes_and_streams(tmp_path):
    data = fac.make_rgb_jpeg(tmp_path / "a.jpg").read_bytes()
    ref = load_rgb_array(tmp_path / "a.jpg")
    np.testing.assert_array_equal(load_rgb_array(data), ref)
    np.testing.assert_array_equal(load_rgb_array(bytearray(data)), ref)
    stream = io.BytesIO(data)
    np.testing.assert_array_equal(load_rgb_array(stream), ref)
    assert not stream.closed  # the caller's stream is left open

    class NoSeek(io.RawIOBase):
        def __init__(self, payload):
            self._b = io.BytesIO(payload)

        def readable(self):
            return True

        def readinto(self, buf):
            chunk = self._b.read(len(buf))
            buf[: len(chunk)] = chunk
            return len(chunk)

    np.testing.assert_array_equal(load_rgb_array(NoSeek(data)), ref)


# ----------------------------------------------------------------------- rejections


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_truncated_rejected(tmp_path, fmt):
    err = _reject(fac.make_truncated(tmp_path / f"t.{fmt.lower()}", fmt))
    assert err.reason == "truncated", err
    assert str(tmp_path) in str(err)


def test_truncated_header_rejected(tmp_path):
    path = fac.make_truncated(tmp_path / "t.png", "PNG", keep=0.0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert _reject(path).reason == "decode_error"


def test_empty_file_and_bytes(tmp_path):
    assert _reject(fac.make_empty(tmp_path / "e.jpg")).reason == "empty"
    assert _reject(b"").reason == "empty"
    assert _reject(io.BytesIO()).reason == "empty"


@pytest.mark.parametrize("maker", [fac.make_text_named_jpg, fac.make_html_named_jpg])
def test_not_an_image(tmp_path, maker):
    err = _reject(maker(tmp_path / "x.jpg"))
    assert err.reason == "not_an_image"


def test_exotic_formats_refused_by_default(tmp_path):
    Image.new("RGB", (8, 8), fac.RED).save(tmp_path / "x.tga")
    assert _reject(tmp_path / "x.tga").reason == "not_an_image"
    assert load_rgb_array(tmp_path / "x.tga", formats=None)[0, 0].tolist() == list(fac.RED)


def test_unreadable_paths(tmp_path):
    assert _reject(tmp_path / "missing.jpg").reason == "unreadable"
    assert _reject(tmp_path).reason == "unreadable"


def test_oversized_jpeg_reduced_while_decoding(tmp_path):
    path = fac.make_oversized(tmp_path / "big.jpg", "JPEG")  # 400x300 = 120,000 px
    img = load_rgb(path, max_pixels=50_000)
    assert img.size == (200, 150) and img.mode == "RGB"  # 1/2 DCT scale
    assert load_rgb(path, max_pixels=2_000).size == (50, 38)  # 1/8 scale
    err = _reject(path, max_pixels=1_000)  # even 1/8 is 1,900 px
    assert err.reason == "too_large" and "400x300" in err.message and "1,000" in err.message
    # the reduced decode looks like the full one, only smaller
    full = np.asarray(load_rgb(path).resize((200, 150), Image.Resampling.BOX), int)
    assert np.abs(full - np.asarray(img, int)).mean() < 4


def test_oversized_jpeg_with_exif_rotation_reduced(tmp_path):
    path = fac.make_exif_rotated_jpeg(tmp_path / "rot.jpg", size=(400, 300))
    assert load_rgb(path, max_pixels=50_000).size == (150, 200)


def test_oversized_png_rejected(tmp_path):
    err = _reject(fac.make_oversized(tmp_path / "big.png", "PNG"), max_pixels=50_000)
    assert err.reason == "too_large"
    assert "400x300" in err.message and "120,000" in err.message and "50,000" in err.message


def test_pillow_decompression_bomb_is_too_large(tmp_path, monkeypatch):
    path = fac.make_oversized(tmp_path / "bomb.png", "PNG", size=(100, 100))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4_000)  # error above 8,000 px
    err = _reject(path, max_pixels=None)
    assert err.reason == "too_large" and "decompression" in err.message
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 6_000)  # 10,000 px: only the warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert _reject(path, max_pixels=None).reason == "too_large"


@pytest.mark.parametrize("size", [(100_000, 100_000), (8_000, 8_000)])
def test_header_bomb_rejected_before_decoding(tmp_path, size):
    # 10 Gpx trips Pillow's own bomb error; 64 Mpx is under it but over the default 40 Mpx
    err = _reject(fac.make_png_header_bomb(tmp_path / "bomb.png", size))
    assert err.reason == "too_large" and str(size[0] * size[1]) in str(err).replace(",", "")


def test_refuses_to_run_with_load_truncated_images(tmp_path, monkeypatch):
    path = fac.make_rgb_jpeg(tmp_path / "a.jpg")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        load_rgb(path)
    monkeypatch.undo()


def test_bad_max_pixels_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError):
        load_rgb(fac.make_rgb_jpeg(tmp_path / "a.jpg"), max_pixels=0)


def test_rejection_is_a_valueerror_and_picklable():
    import pickle

    err = ImageRejected("truncated", "cut short", "x.jpg")
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.reason, again.message, again.source) == ("truncated", "cut short", "x.jpg")
    with pytest.raises(ValueError):
        ImageRejected("nonsense", "x")


# ------------------------------------------------------- metadata never rejects an image

_GREEN = (10, 200, 30)  # make_png_with_metadata's default colour


@pytest.mark.parametrize("after_idat", [False, True], ids=["before_idat", "after_idat"])
@pytest.mark.parametrize("kind", ["iTXt-z", "zTXt", "iTXt", "tEXt"])
def test_png_with_2mb_text_chunk_loads(tmp_path, kind, after_idat):
    key = "XML:com.adobe.xmp" if kind.startswith("iTXt") else "Comment"
    chunk = [fac.text_chunk(kind, key, fac.big_xmp())]  # ~2 MB of text
    path = fac.make_png_with_metadata(tmp_path / "x.png", **(
        {"after_idat": chunk} if after_idat else {"chunks": chunk}))
    if kind in ("iTXt-z", "zTXt"):
        assert path.stat().st_size < 20_000  # a ~2 kB compressed chunk ...
        # ... that plain Pillow refuses
        with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"), Image.open(path) as raw:
            raw.load()
    limits = (PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY)
    img = load_rgb(path)
    arr = np.asarray(img)
    assert arr.shape == (32, 48, 3) and (arr == _GREEN).all()
    assert img.info == {"icc": "none"}
    assert (PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY) == limits  # restored


def test_png_limits_raised_only_while_decoding_even_across_threads(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    big = fac.make_png_with_metadata(
        tmp_path / "big.png", chunks=[fac.text_chunk("zTXt", "Comment", fac.big_xmp())])
    plain = fac.make_png_with_metadata(tmp_path / "plain.png")
    limits = (PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY)
    with ThreadPoolExecutor(max_workers=4) as pool:  # as the prepare stage decodes
        results = list(pool.map(load_rgb_array, [big, plain] * 12))
    assert all((arr == _GREEN).all() for arr in results)
    assert (PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY) == limits


def test_png_orientation_inside_2mb_xmp_is_applied(tmp_path):
    xmp = fac.text_chunk("iTXt-z", "XML:com.adobe.xmp", fac.big_xmp(orientation=6))
    assert load_rgb(fac.make_png_with_metadata(tmp_path / "x.png", chunks=[xmp])).size == (32, 48)


def test_png_2mb_icc_profile_is_read_and_applied(tmp_path):
    icc = fac.adobe_rgb_icc(pad=2_000_000)  # valid, 2 MB: over Pillow's 1 MiB chunk limit
    path = fac.make_png_with_metadata(tmp_path / "x.png", chunks=[fac.iccp_chunk(icc)],
                                      colour=fac.ADOBE_COLOUR)
    img = load_rgb(path)
    assert img.info == {"icc": "converted"}
    _close(np.asarray(img)[3, 3], (0, 161, 60), 1)


@pytest.fixture()
def small_png_limits(monkeypatch):
    """Pillow's own 1 MiB chunk limit and a 3 MiB total, also while we decode: stands in
    for metadata beyond even our raised limits (64 MiB) without writing such files."""
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_CHUNK", 1 << 20)
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_MEMORY", 3 << 20)
    monkeypatch.setattr(images, "PNG_TEXT_CHUNK_LIMIT", 1 << 20)
    monkeypatch.setattr(images, "PNG_TEXT_MEMORY_LIMIT", 3 << 20)


@pytest.mark.parametrize("layout", ["one_big_chunk", "many_chunks", "after_idat"])
def test_png_text_beyond_any_limit_is_dropped_not_rejected(tmp_path, small_png_limits, caplog,
                                                           layout):
    if layout == "one_big_chunk":  # 2 MB > MAX_TEXT_CHUNK
        kw = {"chunks": [fac.text_chunk("iTXt-z", "XML:com.adobe.xmp", fac.big_xmp())]}
    elif layout == "many_chunks":  # 4 x 0.9 MB > MAX_TEXT_MEMORY, each chunk under MAX_TEXT_CHUNK
        kw = {"chunks": [fac.text_chunk("zTXt", f"k{i}", fac.big_xmp(900_000)) for i in range(4)]}
    else:
        kw = {"after_idat": [fac.text_chunk("zTXt", "Comment", fac.big_xmp())]}
    # the ICC profile (small) survives: only the text chunks are dropped
    kw["chunks"] = [fac.iccp_chunk(fac.adobe_rgb_icc())] + kw.get("chunks", [])
    path = fac.make_png_with_metadata(tmp_path / "x.png", colour=fac.ADOBE_COLOUR, **kw)
    with caplog.at_level(logging.WARNING, logger="artstyle.images"):
        img = load_rgb(path)
    assert img.size == (48, 32) and img.info == {"icc": "converted"}
    _close(np.asarray(img)[3, 3], (0, 161, 60), 1)
    assert "PNG metadata over Pillow's size limits" in caplog.text
    assert PngImagePlugin.MAX_TEXT_CHUNK == 1 << 20  # the caller's setting is back


def test_png_icc_beyond_any_limit_is_dropped_not_rejected(tmp_path, small_png_limits, caplog):
    path = fac.make_png_with_metadata(
        tmp_path / "x.png", colour=fac.ADOBE_COLOUR,
        chunks=[fac.iccp_chunk(fac.adobe_rgb_icc(pad=2_000_000)),
                fac.text_chunk("zTXt", "Comment", fac.big_xmp())])
    with caplog.at_level(logging.WARNING, logger="artstyle.images"):
        img = load_rgb(path)
    assert np.asarray(img)[3, 3].tolist() == list(fac.ADOBE_COLOUR)  # pixels as they are
    assert img.info == {"icc": "unusable"}
    assert "iCCP" in caplog.text


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP", "JPEG"])
def test_other_formats_with_2mb_xmp_and_icc_load(tmp_path, fmt):
    icc = fac.adobe_rgb_icc(pad=2_000_000)
    kw = {"TIFF": {"tiffinfo": {700: fac.big_xmp().encode()}},
          "WEBP": {"xmp": fac.big_xmp().encode(), "lossless": True, "exact": True},
          "JPEG": {"quality": 95}}[fmt]  # JPEG: XMP is limited to 64 kB by the format
    path = tmp_path / f"x.{fmt.lower()}"
    Image.new("RGB", (48, 32), fac.ADOBE_COLOUR).save(path, fmt, icc_profile=icc, **kw)
    img = load_rgb(path)
    assert img.info == {"icc": "converted"}
    _close(np.asarray(img)[3, 3], (0, 161, 60), 1 if fmt != "JPEG" else 4)


# ------------------------------------------------------------ embedded colour profiles


def _littlecms_to_srgb(rgb: np.ndarray, icc: bytes,
                       intent=ImageCms.Intent.PERCEPTUAL) -> np.ndarray:
    """What LittleCMS computes for ``rgb`` pixels tagged with ``icc``, converted to sRGB."""
    out = ImageCms.profileToProfile(
        Image.fromarray(rgb), ImageCms.ImageCmsProfile(io.BytesIO(icc)),
        ImageCms.createProfile("sRGB"), renderingIntent=intent, outputMode="RGB")
    return np.asarray(out)


def _adobe_rgb_to_srgb_by_hand(rgb) -> list[int]:
    """Adobe RGB (1998) -> sRGB with the two specs' published D65 matrices, sRGB clipping."""
    lin = (np.asarray(rgb, float) / 255) ** fac.ADOBE_RGB_GAMMA
    adobe_to_xyz = np.array([[0.5767309, 0.1855540, 0.1881852], [0.2973769, 0.6273491, 0.0752741],
                             [0.0270343, 0.0706872, 0.9911085]])
    xyz_to_srgb = np.array([[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
                            [0.0556434, -0.2040259, 1.0572252]])
    s = np.clip(xyz_to_srgb @ adobe_to_xyz @ lin, 0, 1)
    enc = np.where(s <= 0.0031308, 12.92 * s, 1.055 * s ** (1 / 2.4) - 0.055)
    return np.rint(enc * 255).astype(int).tolist()


def test_adobe_rgb_hand_check():
    # (60, 160, 70): linear (0.041, 0.359, 0.058) -> XYZ (0.101, 0.242, 0.084) ->
    # linear sRGB (-0.085, 0.359, 0.045): red is outside sRGB, clipped to 0
    assert _adobe_rgb_to_srgb_by_hand(fac.ADOBE_COLOUR) == [0, 161, 60]
    # the test profile really is Adobe RGB: colorants of Adobe's AdobeRGB1998.icc
    m = fac.rgb_colorants_d50(fac.ADOBE_RGB_PRIMARIES, fac.D65_WHITE)
    np.testing.assert_allclose(m[:, 0], [0.60974, 0.31111, 0.01947], atol=2e-5)
    np.testing.assert_allclose(m[:, 1], [0.20528, 0.62567, 0.06087], atol=2e-5)
    np.testing.assert_allclose(m[:, 2], [0.14919, 0.06322, 0.74457], atol=2e-5)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP", "JPEG"])
def test_adobe_rgb_profile_converted_to_srgb(tmp_path, fmt):
    path = fac.make_with_icc(tmp_path / f"a.{fmt.lower()}", fmt)
    img = load_rgb(path)
    assert img.info == {"icc": "converted"}
    with Image.open(path) as raw:
        stored = np.asarray(raw.convert("RGB"))  # the numbers in the file
    arr = np.asarray(img)
    np.testing.assert_array_equal(arr, _littlecms_to_srgb(stored, fac.adobe_rgb_icc()))
    if fmt != "JPEG":
        assert stored[3, 3].tolist() == [60, 160, 70]
        assert arr[3, 3].tolist() == [0, 161, 60]
    _close(arr[3, 3], _adobe_rgb_to_srgb_by_hand(fac.ADOBE_COLOUR), 4)  # loose: JPEG too


def test_matrix_profile_perceptual_equals_relative_colorimetric():
    rgb = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(
        _littlecms_to_srgb(rgb, fac.adobe_rgb_icc(), ImageCms.Intent.PERCEPTUAL),
        _littlecms_to_srgb(rgb, fac.adobe_rgb_icc(), ImageCms.Intent.RELATIVE_COLORIMETRIC))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_srgb_profile_leaves_pixels_unchanged(tmp_path, fmt):
    path = tmp_path / f"s.{fmt.lower()}"
    Image.fromarray(fac._noise((64, 64))).save(path, fmt, icc_profile=fac.srgb_icc())
    with Image.open(path) as raw:
        stored = np.asarray(raw.convert("RGB"), int)
    img = load_rgb(path)
    assert img.info == {"icc": "converted"}
    assert np.abs(np.asarray(img, int) - stored).max() <= 1


def test_rgba_with_profile_converted_then_composited(tmp_path):
    path = tmp_path / "a.png"
    arr = np.zeros((2, 3, 4), np.uint8)
    arr[:] = (*fac.ADOBE_COLOUR, 255)
    arr[:, 1, 3] = 128
    arr[:, 2, 3] = 0
    Image.fromarray(arr, "RGBA").save(path, icc_profile=fac.adobe_rgb_icc())
    out = load_rgb_array(path)
    assert out[0, 0].tolist() == [0, 161, 60]  # opaque: converted
    expected_half = [round(c * 128 / 255 + 255 * 127 / 255) for c in (0, 161, 60)]
    _close(out[0, 1], expected_half, 1)  # converted, then composited on white
    assert out[0, 2].tolist() == [255, 255, 255]


def test_grey_profile_converted(tmp_path):
    # linear-light grey profile: 128 means luminance 128/255 = 0.502, which sRGB encodes
    # as 1.055 * 0.502 ** (1/2.4) - 0.055 = 0.7367 -> 188
    img = load_rgb(fac.make_with_icc(tmp_path / "g.png", icc=fac.grey_icc(1.0), mode="L",
                                     colour=128))
    assert img.info == {"icc": "converted"}
    assert np.asarray(img)[0, 0].tolist() == [188, 188, 188]
    la = load_rgb_array(fac.make_with_icc(tmp_path / "la.png", icc=fac.grey_icc(1.0), mode="LA",
                                          colour=(128, 255)))
    assert la[0, 0].tolist() == [188, 188, 188]
    # gamma-2.2 grey: 128 -> luminance 0.2195 -> sRGB 129, i.e. almost unchanged
    g22 = load_rgb_array(fac.make_with_icc(tmp_path / "g22.jpg", "JPEG", icc=fac.grey_icc(2.2),
                                           mode="L", colour=128))
    _close(g22[0, 0], (129, 129, 129), 1)


def test_greyscale_pixels_with_rgb_profile_read_as_neutral(tmp_path):
    path = fac.make_with_icc(tmp_path / "g.jpg", "JPEG", mode="L", colour=128)  # Adobe RGB profile
    img = load_rgb(path)
    assert img.info == {"icc": "converted"}
    with Image.open(path) as raw:
        stored = np.asarray(raw.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(img), _littlecms_to_srgb(stored, fac.adobe_rgb_icc()))
    _close(np.asarray(img)[0, 0], (129, 129, 129), 1)  # Adobe gamma 2.2 grey 128 -> sRGB 129


@pytest.mark.parametrize("icc", [b"not a profile" * 8, fac.adobe_rgb_icc()[:300], fac.grey_icc()],
                         ids=["garbage", "truncated", "grey_profile_on_rgb"])
def test_unusable_profile_keeps_pixels_and_logs(tmp_path, caplog, icc):
    path = fac.make_with_icc(tmp_path / "x.png", icc=icc)
    with caplog.at_level(logging.WARNING, logger="artstyle.images"):
        img = load_rgb(path)
    assert np.asarray(img)[3, 3].tolist() == list(fac.ADOBE_COLOUR)
    assert img.info == {"icc": "unusable"}
    assert "ICC profile unusable" in caplog.text
    assert all("\n" not in r.getMessage() for r in caplog.records)


def test_cmyk_with_rgb_profile_falls_back_to_naive(tmp_path, caplog):
    path = fac.make_cmyk_jpeg(tmp_path / "c.jpg", icc_profile=fac.adobe_rgb_icc())
    with caplog.at_level(logging.WARNING, logger="artstyle.images"):
        img = load_rgb(path)
    _close(np.asarray(img)[5, 5], (255, 0, 0), 6)
    assert img.info == {"icc": "unusable"} and "naive CMYK" in caplog.text


def test_no_profile_status_none(tmp_path):
    assert load_rgb(fac.make_rgb_jpeg(tmp_path / "a.jpg")).info == {"icc": "none"}


def test_prepare_summary_counts_icc_conversions(tmp_path):
    from artstyle.config import PrepareParams
    from artstyle.data.catalogue import prepare_dataset
    from artstyle.io import read_json

    raw = tmp_path / "raw"
    (raw / "A").mkdir(parents=True)
    for i in range(4):  # distinct pixels everywhere: no duplicates
        Image.fromarray(fac._noise(fac.SMALL, seed=i)).save(raw / "A" / f"n{i}.png")
    fac.make_with_icc(raw / "B" / "adobe.png")                                  # converted
    fac.make_with_icc(raw / "B" / "adobe.jpg", "JPEG", colour=(200, 120, 40))   # converted
    fac.make_with_icc(raw / "B" / "srgb.png", icc=fac.srgb_icc(), colour=(1, 2, 3))  # converted
    fac.make_with_icc(raw / "B" / "broken.png", icc=b"not a profile" * 8, colour=(9, 9, 9))
    params = PrepareParams(max_pixels=fac.TREE_MAX_PIXELS, val_fraction=0.25,
                           test_fraction=0.25, group_by_artist=False)
    summary = prepare_dataset(raw, tmp_path / "prepared", tmp_path / "report",
                              image_size=16, seed=0, params=params, progress=False)
    assert summary["images"] == 8
    assert (summary["icc_converted"], summary["icc_unusable"]) == (3, 1)
    on_disk = read_json(tmp_path / "report" / "summary.json")
    assert (on_disk["icc_converted"], on_disk["icc_unusable"]) == (3, 1)


# ------------------------------------------------------------------------ float TIFF


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_float32_grey_tiff_scaled_from_unit_range(tmp_path, byteorder):
    path = fac.make_float_tiff(tmp_path / "f.tif", byteorder=byteorder)
    with Image.open(path) as raw:
        assert raw.mode == "F"
    arr = load_rgb_array(path)
    assert arr[0, :4, 0].tolist() == fac.FLOAT_LEVELS_TO_8.tolist() == [0, 255, 128, 64]
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()


@pytest.mark.parametrize("values, expected", [
    ([0.0, 2.0, 1.0, 0.5], [0, 255, 128, 64]),  # HDR highlight: range widened to [0, 2]
    ([-1.0, 1.0, 0.0, 0.5], [0, 255, 128, 191]),  # negative values: range [-1, 1]
    ([0.0, 255.0, 127.5, 51.0], [0, 255, 128, 51]),  # 0..255 data: range [0, 255]
    ([0.0, 1.0001, 0.5, 0.25], [0, 255, 127, 64]),  # just over 1: (almost) as [0, 1]
    ([float("nan"), float("inf"), -float("inf"), 0.5], [0, 255, 0, 128]),
])
def test_float_values_outside_unit_range(tmp_path, values, expected):
    Image.fromarray(np.array([values], np.float32)).save(tmp_path / "f.tif")
    assert load_rgb_array(tmp_path / "f.tif")[0, :, 0].tolist() == expected


@pytest.mark.parametrize("kw, layout", [
    ({"channels": 3}, "RGB, 3 samples per pixel of 32-bit floating-point"),
    ({"channels": 3, "byteorder": ">"}, "RGB, 3 samples per pixel of 32-bit floating-point"),
    ({"channels": 3, "planar": 2}, "RGB, 3 samples per pixel of 32-bit floating-point"),
    ({"channels": 4, "extra_samples": (2,)}, "RGB, 4 samples per pixel of 32-bit floating-point"),
    ({"dtype": np.float16}, "greyscale, 1 sample per pixel of 16-bit floating-point"),
    ({"dtype": np.float64}, "greyscale, 1 sample per pixel of 64-bit floating-point"),
], ids=["rgb32", "rgb32_big_endian", "rgb32_planar", "rgba32", "grey16", "grey64"])
def test_float_tiff_pillow_cannot_open_is_unsupported_format(tmp_path, kw, layout):
    path = fac.make_float_tiff(tmp_path / "f.tif", **kw)
    with pytest.raises(UnidentifiedImageError):  # beyond Pillow itself, not our choice
        Image.open(path)
    err = _reject(path)
    assert err.reason == "unsupported_format"
    assert err.message.startswith(f"TIFF pixel layout not supported by Pillow: {layout}")
    assert "corrupt" not in str(err) and "\n" not in str(err)


def test_corrupt_tiff_is_still_a_decode_error():
    assert _reject(b"II*\x00\x00\x10\x00\x00").reason == "decode_error"  # IFD past the end


def test_valid_format_outside_the_accepted_list_is_not_called_corrupt(tmp_path):
    path = fac.make_float_tiff(tmp_path / "f.tif")
    err = _reject(path, formats=("JPEG", "PNG"))
    assert err.reason == "not_an_image" and "TIFF" in err.message and "accepted" in err.message


@pytest.mark.skipif(int(PIL.__version__.split(".")[0]) < 13,
                    reason="Pillow < 13 cannot open grey TIFFs with associated alpha ('La'); "
                           "requirements.txt pins 12.3.0 for gradio (pillow<13)")
def test_tiff_grey_with_associated_alpha(tmp_path):
    arr = np.zeros((2, 2, 2), np.uint8)
    arr[..., 0], arr[..., 1] = 100, 128  # premultiplied grey 100 at alpha 128
    path = fac.write_tiff(tmp_path / "la.tif", arr, extra_samples=(1,))
    with Image.open(path) as raw:
        assert raw.mode == "La"
    # premultiplied over white: 100 + 255 * (1 - 128/255) = 227
    _close(load_rgb_array(path)[0, 0], (227, 227, 227), 1)


# ------------------------------------------------------------------ helpers / resize


def test_sha256_file(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")
    assert sha256_file(tmp_path / "abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    a = fac.make_rgb_jpeg(tmp_path / "a.jpg")
    b = fac.make_png_named_jpg(tmp_path / "b.jpg")
    assert sha256_file(str(a)) == hashlib.sha256(a.read_bytes()).hexdigest()
    assert sha256_file(a) != sha256_file(b)


def test_resize_to_square_letterbox_keeps_whole_painting():
    img = Image.new("RGB", (100, 50), (255, 0, 0))
    out = resize_to_square(img, 40)
    arr = np.asarray(out)
    assert out.size == (40, 40) and out.mode == "RGB"
    assert arr[:10].reshape(-1, 3).tolist() == [list(IMAGENET_MEAN_RGB)] * 400  # pad above
    assert arr[30:].reshape(-1, 3).tolist() == [list(IMAGENET_MEAN_RGB)] * 400  # pad below
    assert (arr[10:30] == (255, 0, 0)).all()  # whole painting, undistorted, in the middle
    tall = resize_to_square(Image.new("RGB", (20, 80), (0, 0, 255)), 40, fill=(255, 255, 255))
    assert np.asarray(tall)[20, :15].tolist() == [[255, 255, 255]] * 15
    assert np.asarray(tall)[20, 15:25].tolist() == [[0, 0, 255]] * 10
    grey = resize_to_square(Image.new("L", (10, 5), 0), 10)
    assert grey.mode == "L" and grey.getpixel((0, 0)) == 118  # luma of the ImageNet mean


def test_resize_to_square_crop_and_stretch():
    arr = np.zeros((50, 100, 3), np.uint8)
    arr[:, :25] = (255, 0, 0)  # outer quarters red, centre half blue
    arr[:, 25:75] = (0, 0, 255)
    arr[:, 75:] = (255, 0, 0)
    img = Image.fromarray(arr)
    crop = np.asarray(resize_to_square(img, 20, method="center_crop"))
    assert crop.shape == (20, 20, 3)
    _close(crop[:, 1:-1], (0, 0, 255), 2)  # red quarters cut away (Lanczos support
    assert crop[:, [0, -1], 0].max() < 30  # reaches just past the box at the edges)
    stretch = np.asarray(resize_to_square(img, 20, method="stretch"))
    assert stretch.shape == (20, 20, 3)
    assert stretch[10, 0].tolist() == [255, 0, 0] and stretch[10, 10].tolist() == [0, 0, 255]
    assert resize_to_square(Image.new("RGB", (8, 8)), 8).size == (8, 8)
    with pytest.raises(ValueError):
        resize_to_square(img, 20, method="pad")


@pytest.mark.parametrize(
    ("name", "hidden"),
    [
        (".DS_Store", True), ("Thumbs.db", True), ("thumbs.db", True), ("desktop.ini", True),
        ("Desktop.ini", True), ("__MACOSX", True), (".ipynb_checkpoints", True),
        ("._Monet.jpg", True), (".git", True), ("", True),
        ("Monet.jpg", False), ("Pop Art", False), ("Café Terrasse, l'été.jpg", False),
        ("thumbs.db.jpg", False),
    ],
)
def test_is_hidden_or_system(name, hidden):
    assert is_hidden_or_system(name) is hidden


# ------------------------------------------------------------------ the factory tree


def _reference_scan(root: Path, max_pixels: int) -> dict:
    good, rejected, skipped = {}, {}, []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        for name in sorted(dirnames):
            if is_hidden_or_system(name):
                skipped.append((rel_dir / name).as_posix())
        dirnames[:] = [d for d in dirnames if not is_hidden_or_system(d)]
        for name in filenames:
            rel = (rel_dir / name).as_posix()
            if is_hidden_or_system(name):
                skipped.append(rel)
                continue
            try:
                good[rel] = load_rgb(root / rel, max_pixels=max_pixels).size
            except ImageRejected as err:
                rejected[rel] = err.reason
    return {"good": good, "rejected": rejected, "skipped": sorted(skipped)}


def test_bad_input_tree_matches_loader(tmp_path):
    expected = fac.make_bad_input_tree(tmp_path / "tree")
    found = _reference_scan(tmp_path / "tree", expected["max_pixels"])
    assert found["good"] == {k: v["size"] for k, v in expected["good"].items()}
    assert found["rejected"] == {k: v["reason"] for k, v in expected["rejected"].items()}
    assert found["skipped"] == expected["skipped"]
    assert expected["classes"] == ["Baroque", "Impressionism", "Pop Art", "Réalisme"]
    assert {v["kind"] for v in expected["rejected"].values()} >= {
        "truncated_jpeg", "truncated_png", "empty_file", "text_named_jpg", "oversized_png",
    }


# ------------------------------------------------------------------ real paintings


@pytest.mark.shared
def test_real_paintings_load_as_rgb_uint8(shared_dir):
    root = shared_dir / "datasets" / "painting91-mini"
    grey = root / "Constructivism" / "El Lissitzky" / "EL_LISSITZKY_34.jpg"
    paths = [grey] if grey.is_file() else []
    for movement in ["Baroque", "Pop Art", "High renaissance"]:
        paths += sorted((root / movement).rglob("*.jpg"))[:1]
    assert paths, f"no paintings found under {root}"
    for path in paths:
        arr = load_rgb_array(path)
        assert arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8, path
        assert min(arr.shape[:2]) > 16
    if grey.is_file():
        with Image.open(grey) as raw:
            assert raw.mode == "L" and raw.size == (196, 256)
        arr = load_rgb_array(grey)
        assert arr.shape == (256, 196, 3)
        assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
