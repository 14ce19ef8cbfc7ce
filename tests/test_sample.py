"""Tests for the synthetic ``sample`` dataset generator (artstyle.data.sample)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from artstyle.data.sample import (
    SAMPLE_CLASSES,
    SAMPLE_NOTICE,
    class_counts,
    generate_sample,
    render_sample_image,
)

N = 2  # images per class: keeps the whole file to a few seconds
SIDE = 48


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "sample"
    counts = generate_sample(out, images_per_class=N, side=SIDE, seed=42, progress=False)
    assert counts == {c: N for c in SAMPLE_CLASSES}
    assert list(counts) == list(SAMPLE_CLASSES)
    return out


def test_classes_are_five_distinct_art_folder_names():
    assert SAMPLE_CLASSES == ("Pointillism", "Posterised-outline", "Brush-strokes", "Mosaic",
                              "Watercolour")
    assert "synthetic" in SAMPLE_NOTICE.lower()
    assert all(c in SAMPLE_NOTICE for c in SAMPLE_CLASSES)


def test_layout_only_class_folders_and_file_names(sample_dir: Path):
    assert sorted(p.name for p in sample_dir.iterdir()) == sorted(SAMPLE_CLASSES)
    for c in SAMPLE_CLASSES:
        names = sorted(p.name for p in (sample_dir / c).iterdir())
        assert names == [f"{c}_{i:03d}.jpg" for i in range(N)]
    # no temporary folders left next to the output
    assert [p.name for p in sample_dir.parent.iterdir()] == ["sample"]


def test_images_are_rgb_jpeg_of_requested_side(sample_dir: Path):
    for p in sample_dir.rglob("*.jpg"):
        with Image.open(p) as im:
            assert im.format == "JPEG"
            assert im.mode == "RGB"
            assert im.size == (SIDE, SIDE)
            arr = np.asarray(im)
        assert arr.std() > 5.0  # not a blank image


def test_same_seed_gives_byte_identical_files(sample_dir: Path, tmp_path: Path):
    again = tmp_path / "again"
    generate_sample(again, images_per_class=N, side=SIDE, seed=42, progress=False)
    assert _digests(again) == _digests(sample_dir)


def test_different_seed_gives_different_files(sample_dir: Path, tmp_path: Path):
    other = tmp_path / "other"
    generate_sample(other, images_per_class=N, side=SIDE, seed=43, progress=False)
    a, b = _digests(sample_dir), _digests(other)
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a)


def test_image_depends_only_on_seed_class_and_index():
    a = np.asarray(render_sample_image("Mosaic", 1, side=SIDE, seed=3))
    b = np.asarray(render_sample_image("Mosaic", 1, side=SIDE, seed=3))
    c = np.asarray(render_sample_image("Mosaic", 2, side=SIDE, seed=3))
    assert a.shape == (SIDE, SIDE, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_regenerating_replaces_previous_sample(tmp_path: Path):
    out = tmp_path / "s"
    generate_sample(out, images_per_class=2, side=32, seed=0, progress=False)
    counts = generate_sample(out, images_per_class=1, side=32, seed=0, progress=False)
    assert counts == {c: 1 for c in SAMPLE_CLASSES}
    assert len(list(out.rglob("*.jpg"))) == len(SAMPLE_CLASSES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_refuses_to_replace_foreign_folder(tmp_path: Path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_sample(out, images_per_class=1, side=32, seed=0, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


@pytest.mark.parametrize("kwargs", [
    {"images_per_class": 0},
    {"side": 8},
    {"seed": -1},
    {"side": 64.0},
])
def test_rejects_bad_arguments(tmp_path: Path, kwargs):
    with pytest.raises(ValueError):
        generate_sample(tmp_path / "x", progress=False,
                        **{"images_per_class": 1, "side": 32, "seed": 0, **kwargs})
    assert not (tmp_path / "x").exists()


def test_unknown_class_raises():
    with pytest.raises(KeyError):
        render_sample_image("Cubism", 0)


def test_the_default_sample_is_long_tailed_like_real_painting_sets():
    # params.yaml: 50 images of the first class, 2.5x fewer of the last (geometric).
    assert list(class_counts(50, 2.5).values()) == [50, 40, 32, 25, 20]
    assert list(class_counts(50, 2.5)) == list(SAMPLE_CLASSES)
    assert set(class_counts(7).values()) == {7}


def test_an_imbalanced_subset_keeps_each_class_count_and_images(tmp_path, sample_dir):
    counts = generate_sample(tmp_path / "s", images_per_class=3, imbalance=3.0, side=SIDE,
                             seed=42, progress=False, classes=["watercolour", "Pointillism"])
    assert counts == {"Pointillism": 3, "Watercolour": 1}
    assert sorted(p.name for p in (tmp_path / "s" / "Watercolour").iterdir()) == [
        "Watercolour_000.jpg"]
    # image 0 of a class is the same whatever the counts
    assert ((tmp_path / "s" / "Pointillism" / "Pointillism_000.jpg").read_bytes()
            == (sample_dir / "Pointillism" / "Pointillism_000.jpg").read_bytes())
    with pytest.raises(ValueError, match="imbalance must be >= 1"):
        generate_sample(tmp_path / "t", images_per_class=3, imbalance=0.5, side=SIDE, seed=42,
                        progress=False)
