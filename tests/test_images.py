"""Tests for artstyle.images: the safe loader, rejections, resize helpers, hashing."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

import image_factory as fac
from artstyle.hashing import sha256_file
from artstyle.images import (
    IMAGENET_MEAN_RGB,
    REJECTION_REASONS,
    ImageRejected,
    fit_within,
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


def test_fit_within():
    img = Image.new("RGB", (300, 100), (1, 2, 3))
    out = fit_within(img, 60)
    assert out.size == (60, 20) and out.mode == "RGB"
    assert np.asarray(out)[10, 30].tolist() == [1, 2, 3]
    assert fit_within(img, 300) is img  # already fits: untouched, never upscaled
    assert fit_within(Image.new("RGB", (1, 1000)), 10).size == (1, 10)
    with pytest.raises(ValueError):
        fit_within(img, 0)


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
