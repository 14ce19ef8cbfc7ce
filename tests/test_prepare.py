"""Stage prepare on generated bad input and on real paintings: scan, rejects, duplicates, split."""

from __future__ import annotations

import hashlib
import shutil

import image_factory
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artstyle.config import PrepareParams
from artstyle.data.catalogue import (
    DatasetError,
    prepare_dataset,
    scan_tree,
    split_indices,
)
from artstyle.hashing import sha256_file
from artstyle.io import read_json


def _prepare(raw, tmp_path, **kw):
    fields = set(PrepareParams.model_fields)
    params = PrepareParams(**{"max_pixels": image_factory.TREE_MAX_PIXELS, "val_fraction": 0.25,
                              "test_fraction": 0.25, "group_by_artist": False,
                              **{k: v for k, v in kw.items() if k in fields}})
    args = {"image_size": 32, "seed": 0, "progress": False,
            **{k: v for k, v in kw.items() if k not in fields}}
    return prepare_dataset(raw, tmp_path / "prepared", tmp_path / "report", params=params, **args)


def _noise_jpeg(path, size, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
        path, "JPEG", quality=95)


@pytest.fixture()
def bad_tree(tmp_path):
    raw = tmp_path / "raw"
    expected = image_factory.make_bad_input_tree(raw)
    # Some of the factory's images decode to the same pixels (duplicates for prepare): the
    # ordinary JPEGs are one gradient differing only in a JPEG comment; 16-bit grey and
    # RGB PNGs; solid red CMYK JPEG and GIF; half white/half red palette PNG and WebP.
    # Give them distinct pixels (same sizes and kinds) so that every good file stays.
    w, h = image_factory.SMALL
    for seed, (rel, spec) in enumerate(expected["good"].items()):
        if spec["kind"] in ("rgb_jpeg", "unicode_name"):
            _noise_jpeg(raw / rel, spec["size"], seed)
    grey = np.resize(image_factory.LEVELS16[::-1], w)
    Image.fromarray(np.repeat(grey[None, :], h, 0).astype(np.uint16)).save(
        raw / "Pop Art/Andy Warhol/grey16.png", "PNG")
    image_factory.make_cmyk_jpeg(raw / "Baroque/Caravaggio/cmyk.jpg", cmyk=(255, 0, 255, 0))
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[:, w // 2:] = (0, 0, 255, 255)   # left half transparent, right half opaque blue
    Image.fromarray(rgba, "RGBA").save(raw / "Pop Art/Roy Lichtenstein/alpha.webp", "WEBP",
                                       lossless=True, exact=True)
    return raw, expected


def test_scan_ignores_hidden_and_system_entries(bad_tree):
    raw, expected = bad_tree
    scan = scan_tree(raw)
    assert scan.classes == sorted(expected["classes"], key=str.casefold)
    found = {c.relpath for c in scan.candidates}
    assert found == set(expected["good"]) | set(expected["rejected"])
    for c in scan.candidates:
        assert c.cls == c.relpath.split("/")[0]
        assert c.artist == (c.relpath.split("/")[1] if c.relpath.count("/") >= 2 else "")


def test_prepare_rejects_every_bad_kind_with_its_reason(bad_tree, tmp_path):
    raw, expected = bad_tree
    summary = _prepare(raw, tmp_path)
    rejects = pd.read_csv(tmp_path / "report" / "rejects.csv")
    got = dict(zip(rejects["source_path"], rejects["reason"]))
    assert got == {p: e["reason"] for p, e in expected["rejected"].items()}
    assert summary["rejected"] == len(expected["rejected"])
    assert summary["duplicates"] == summary["label_conflicts"] == 0
    assert summary["images"] == len(expected["good"])
    assert summary["classes"] == len(expected["classes"])

    manifest = pd.read_csv(tmp_path / "prepared" / "manifest.csv", keep_default_na=False)
    assert set(manifest["source_path"]) == set(expected["good"])
    for row in manifest.itertuples():
        img = Image.open(tmp_path / "prepared" / row.path)
        assert img.mode == "RGB" and img.size == (32, 32)
        assert expected["good"][row.source_path]["class"] == row._2
    assert read_json(tmp_path / "prepared" / "classes.json") == summary_classes(summary)
    assert (tmp_path / "report" / "class_distribution.png").stat().st_size > 1000


def summary_classes(summary):
    return list(summary["per_class"])


def test_duplicates_inside_and_across_classes(tmp_path):
    raw = tmp_path / "raw"
    for k, cls in enumerate(("Baroque", "realism", "Cubism")):
        for i in range(4):   # a distinct size each: distinct decoded pixels
            image_factory.make_rgb_jpeg(raw / cls / "Some Artist" / f"{cls}_{i}.jpg",
                                        size=(40 + i, 30 + 5 * k))
    # Same bytes twice inside one class: kept once.
    shutil.copy(raw / "Baroque/Some Artist/Baroque_0.jpg", raw / "Baroque/copy of 0.jpg")
    # Same bytes in two classes: a label conflict, every copy dropped.
    shutil.copy(raw / "Cubism/Some Artist/Cubism_1.jpg", raw / "realism/conflict.jpg")
    summary = _prepare(raw, tmp_path, val_fraction=0.2, test_fraction=0.2)
    assert summary["duplicates"] == 1
    assert summary["label_conflicts"] == 1
    assert summary["images"] == 12 - 1            # the conflicting original is dropped too
    dups = pd.read_csv(tmp_path / "report" / "duplicates.csv")
    assert sorted(dups["kind"]) == ["duplicate", "label_conflict", "label_conflict"]
    manifest = pd.read_csv(tmp_path / "prepared" / "manifest.csv")
    assert manifest["content_hash"].is_unique
    assert "Cubism/Some Artist/Cubism_1.jpg" not in set(manifest["source_path"])


def test_split_is_stratified_disjoint_and_seeded():
    labels = [c for c in "ABCD" for _ in range(25)]
    a = split_indices(labels, None, val_fraction=0.2, test_fraction=0.2, seed=3)
    b = split_indices(labels, None, val_fraction=0.2, test_fraction=0.2, seed=3)
    assert (a == b).all()
    assert {s: int((a == s).sum()) for s in ("train", "validation", "test")} == {
        "train": 60, "validation": 20, "test": 20}
    for c in "ABCD":
        idx = [i for i, l in enumerate(labels) if l == c]
        assert sorted(set(a[idx])) == ["test", "train", "validation"]


def test_split_keeps_artists_together():
    labels = [c for c in "AB" for _ in range(40)]
    artists = [f"{l}{i // 5}" for i, l in enumerate(labels)]   # 8 artists per class
    split = split_indices(labels, artists, val_fraction=0.2, test_fraction=0.2, seed=0)
    by_artist = pd.DataFrame({"artist": artists, "split": split}).groupby("artist")["split"]
    assert (by_artist.nunique() == 1).all()
    assert set(split) == {"train", "validation", "test"}


def test_too_small_class_is_a_clear_error():
    with pytest.raises(DatasetError, match=r"B \(2\)"):
        split_indices(["A"] * 10 + ["B"] * 2, None, val_fraction=0.2, test_fraction=0.2, seed=0)


def test_failed_prepare_leaves_previous_output(tmp_path):
    raw = tmp_path / "raw"
    (raw / "Only").mkdir(parents=True)
    image_factory.make_rgb_jpeg(raw / "Only" / "a.jpg")
    for i in range(3):
        image_factory.make_rgb_jpeg(raw / "Other" / f"{i}.jpg", size=(30 + i, 20))
    (tmp_path / "prepared").mkdir()
    (tmp_path / "prepared" / "marker").write_text("old")
    with pytest.raises(DatasetError, match=r"Only \(1\)"):   # fails while writing outputs
        _prepare(raw, tmp_path)
    assert (tmp_path / "prepared" / "marker").read_text() == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.shared
def test_prepare_real_paintings(shared_dir, tmp_path):
    raw = shared_dir / "datasets" / "painting91-mini"
    summary = _prepare(raw, tmp_path, max_pixels=60_000_000, val_fraction=0.15,
                       test_fraction=0.2)
    assert summary["classes"] == 13
    assert summary["images"] + summary["rejected"] + summary["duplicates"] == 520
    manifest = pd.read_csv(tmp_path / "prepared" / "manifest.csv", keep_default_na=False)
    assert manifest["content_hash"].is_unique
    assert np.all(manifest["artist"] != "")
    counts = pd.crosstab(manifest["class"], manifest["split"])
    assert (counts > 0).all().all()           # every movement in every split


# ------------------------------------------------------------------ data bug reports


def _png(path, seed, size=(20, 16), **save):
    """A small PNG of seeded noise: distinct pixels for distinct seeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
        path, "PNG", **save)
    return path


def _tree(raw, counts: dict[str, int], start=0):
    seed = start
    for cls, n in counts.items():
        for i in range(n):
            _png(raw / cls / f"{i}.png", seed)
            seed += 1
    return raw


def test_numeric_class_names_stay_text_everywhere(tmp_path):
    import csv

    from artstyle.labels import encode_labels
    from artstyle.data.dataset import load_manifest, load_split
    from artstyle.evaluation import classification_metrics

    raw = _tree(tmp_path / "raw", {"1": 4, "2": 4, "10": 4})
    summary = _prepare(raw, tmp_path, val_fraction=0.25, test_fraction=0.25)
    prepared = tmp_path / "prepared"
    order = ["1", "10", "2"]   # sorted as text (case-insensitively), as documented
    assert read_json(prepared / "classes.json") == order
    assert summary["per_class"] == {"1": 4, "10": 4, "2": 4}
    with open(prepared / "manifest.csv", newline="", encoding="utf-8") as fh:
        assert sorted({row["class"] for row in csv.DictReader(fh)}) == order
    manifest, classes = load_manifest(prepared)
    assert classes == order
    assert sorted(set(manifest["class"])) == order     # str, not 1/2/10 ints
    by_id = dict(zip(manifest["content_hash"], manifest["class"]))
    for split, per_class in (("train", 2), ("validation", 1), ("test", 1)):
        data, classes = load_split(prepared, split)
        assert classes == order
        assert sorted(data.labels.tolist()) == [0] * per_class + [1] * per_class + [2] * per_class
        assert [classes[i] for i in data.labels] == [by_id[h] for h in data.ids]
        assert encode_labels([by_id[h] for h in data.ids], classes).tolist() == data.labels.tolist()
        metrics = classification_metrics(data.labels, data.labels, classes)
        assert list(metrics["per_class"]) == order
    counts = pd.read_csv(tmp_path / "report" / "counts.csv", dtype={"class": str})
    assert counts["class"].tolist() == order
    md = (tmp_path / "report" / "summary.md").read_text(encoding="utf-8")
    assert [line.split("|")[1].strip() for line in md.splitlines()
            if line.startswith("| ") and not line.startswith("| class")] == order


def test_class_folder_spelling_is_kept(tmp_path):
    raw = _tree(tmp_path / "raw", {"01": 3, "1.0": 3, "007": 3})
    _prepare(raw, tmp_path, val_fraction=0.25, test_fraction=0.25)
    assert read_json(tmp_path / "prepared" / "classes.json") == ["007", "01", "1.0"]
    md = (tmp_path / "report" / "summary.md").read_text(encoding="utf-8")
    assert "| 007 " in md and "| 01 " in md and "| 1.0 " in md


def test_split_that_would_empty_the_train_split_names_class_split_and_key():
    with pytest.raises(DatasetError) as info:
        split_indices(["A"] * 3 + ["B"] * 20, None, val_fraction=0.3, test_fraction=0.5, seed=0)
    assert str(info.value) == (
        "no image left for the train split of class(es) 'A' (3 images: 2 test, "
        "1 validation); lower prepare.test_fraction (0.5) or prepare.val_fraction (0.3), "
        "or add images")


def test_split_fraction_of_zero_is_refused():
    with pytest.raises(DatasetError, match=r"^prepare\.val_fraction is 0\.0: every split needs"):
        split_indices(["A"] * 10 + ["B"] * 10, None, val_fraction=0.0, test_fraction=0.2, seed=0)
    with pytest.raises(DatasetError, match=r"^prepare\.test_fraction is 0: "):
        split_indices(["A"] * 10 + ["B"] * 10, None, val_fraction=0.2, test_fraction=0, seed=0)


def test_prepare_stops_when_a_split_would_lack_a_class(tmp_path):
    raw = _tree(tmp_path / "raw", {"A": 3, "B": 20})
    with pytest.raises(DatasetError, match=r"^no image left for the train split of class\(es\) "
                       r"'A' .*prepare\.test_fraction \(0\.5\)"):
        _prepare(raw, tmp_path, val_fraction=0.3, test_fraction=0.5)
    assert not (tmp_path / "prepared").exists()


def test_metadata_copy_in_the_same_class_is_kept_once(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    raw = _tree(tmp_path / "raw", {"A": 3, "B": 4}, start=100)
    original = _png(raw / "A" / "original.png", seed=1)
    meta = PngInfo()
    meta.add_text("Comment", "scanned again")
    copy = _png(raw / "A" / "with_text_chunk.png", seed=1, pnginfo=meta)
    assert original.read_bytes() != copy.read_bytes()

    summary = _prepare(raw, tmp_path, val_fraction=0.25, test_fraction=0.25)
    assert summary["duplicates"] == 1 and summary["label_conflicts"] == 0
    assert summary["per_class"] == {"A": 4, "B": 4}
    manifest = pd.read_csv(tmp_path / "prepared" / "manifest.csv", keep_default_na=False)
    assert "A/original.png" in set(manifest["source_path"])
    assert "A/with_text_chunk.png" not in set(manifest["source_path"])
    row = manifest.set_index("source_path").loc["A/original.png"]
    assert row["content_hash"] == sha256_file(original)          # file SHA-256, as before
    assert row["path"] == f"images/{sha256_file(original)}.png"
    dups = pd.read_csv(tmp_path / "report" / "duplicates.csv", keep_default_na=False)
    assert dups.to_dict("records") == [{
        "content_hash": sha256_file(copy), "source_path": "A/with_text_chunk.png",
        "class": "A", "kind": "duplicate", "kept_as": "A/original.png", "kept": False}]
    stored = sorted(p.name for p in (tmp_path / "prepared" / "images").iterdir())
    assert stored == sorted(f"{h}.png" for h in manifest["content_hash"])   # no orphan


def test_metadata_copy_in_another_class_is_a_label_conflict(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    raw = _tree(tmp_path / "raw", {"A": 3, "B": 3}, start=100)
    original = _png(raw / "A" / "original.png", seed=1)
    meta = PngInfo()
    meta.add_text("Title", "filed under B")
    copy = _png(raw / "B" / "copy.png", seed=1, pnginfo=meta)

    summary = _prepare(raw, tmp_path, val_fraction=0.25, test_fraction=0.25)
    assert summary["label_conflicts"] == 1 and summary["duplicates"] == 0
    assert summary["per_class"] == {"A": 3, "B": 3}
    dups = pd.read_csv(tmp_path / "report" / "duplicates.csv", keep_default_na=False)
    assert dups.to_dict("records") == [
        {"content_hash": sha256_file(original), "source_path": "A/original.png", "class": "A",
         "kind": "label_conflict", "kept_as": "", "kept": False},
        {"content_hash": sha256_file(copy), "source_path": "B/copy.png", "class": "B",
         "kind": "label_conflict", "kept_as": "", "kept": False}]
    manifest = pd.read_csv(tmp_path / "prepared" / "manifest.csv", keep_default_na=False)
    assert not {"A/original.png", "B/copy.png"} & set(manifest["source_path"])
    stored = sorted(p.name for p in (tmp_path / "prepared" / "images").iterdir())
    assert stored == sorted(f"{h}.png" for h in manifest["content_hash"])


def test_pixel_hash_ignores_metadata_not_pixels(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    from artstyle.data.catalogue import pixel_hash

    meta = PngInfo()
    meta.add_text("Comment", "x")
    a = Image.open(_png(tmp_path / "a.png", seed=3)).convert("RGB")
    b = Image.open(_png(tmp_path / "b.png", seed=3, pnginfo=meta)).convert("RGB")
    c = Image.open(_png(tmp_path / "c.png", seed=4)).convert("RGB")
    arr = np.asarray(a)
    assert pixel_hash(a) == pixel_hash(b) != pixel_hash(c)
    assert pixel_hash(a) == hashlib.sha256(b"RGB:16x20x3:" + arr.tobytes()).hexdigest()
    # same bytes, other shape: another hash
    assert pixel_hash(Image.fromarray(arr.reshape(20, 16, 3))) != pixel_hash(a)


def test_a_single_class_is_refused(tmp_path):
    raw = _tree(tmp_path / "raw", {"Baroque": 5})
    with pytest.raises(DatasetError) as info:
        _prepare(raw, tmp_path)
    assert str(info.value) == (
        f"{raw} holds 1 class folder(s) ('Baroque'); a classifier needs at least 2: add "
        "movement folders to the source, or list at least 2 in data.classes (or [] for all)")


def test_a_single_class_left_by_data_classes_is_refused(tmp_path):
    from artstyle.data.download import fetch_raw

    src = _tree(tmp_path / "src", {"Baroque": 4, "Cubism": 4, "Fauvism": 4})
    fetch_raw("folder", tmp_path / "raw", path=src, classes=["cubism"], progress=False)
    with pytest.raises(DatasetError, match=r"holds 1 class folder\(s\) \('Cubism'\); a "
                                           r"classifier needs at least 2"):
        _prepare(tmp_path / "raw", tmp_path)


def test_single_training_image_is_a_warning_in_the_summary(tmp_path):
    raw = _tree(tmp_path / "raw", {"A": 3, "B": 8})
    summary = _prepare(raw, tmp_path, val_fraction=0.25, test_fraction=0.25)
    counts = pd.read_csv(tmp_path / "report" / "counts.csv", index_col="class")
    assert counts.loc["A"].tolist() == [1, 1, 1] and counts.loc["B"].tolist() == [4, 2, 2]
    md = (tmp_path / "report" / "summary.md").read_text(encoding="utf-8")
    warnings = [line for line in md.splitlines() if "Warning" in line]
    assert warnings == ["## Warnings", ("- **Warning:** class 'A' has a single training image; "
                        "add images to it, or lower prepare.val_fraction / prepare.test_fraction")]
    assert summary["images"] == 11


def test_nfd_class_and_artist_folders_are_read_as_nfc(tmp_path):
    import unicodedata

    nfd_class = unicodedata.normalize("NFD", "Réalisme")
    nfd_artist = unicodedata.normalize("NFD", "Jean-François Millet")
    raw = tmp_path / "raw"
    for i in range(3):
        _png(raw / nfd_class / nfd_artist / f"{i}.png", seed=i)
        _png(raw / "Baroque" / f"{i}.png", seed=10 + i)
    assert nfd_class in {p.name for p in raw.iterdir()}   # the file system kept NFD
    scan = scan_tree(raw)
    assert scan.classes == ["Baroque", "R\u00e9alisme"]
    _prepare(raw, tmp_path)
    assert read_json(tmp_path / "prepared" / "classes.json") == ["Baroque", "R\u00e9alisme"]
    manifest = pd.read_csv(tmp_path / "prepared" / "manifest.csv", keep_default_na=False)
    assert set(manifest["class"]) == {"Baroque", "R\u00e9alisme"}
    assert set(manifest["artist"]) == {"", "Jean-Fran\u00e7ois Millet"}


def test_undersample_keeps_the_smallest_class_count_of_each_class():
    """The study's balancing (``balance: undersample``): every class cut to the smallest
    one's count, a seeded choice, pixels still with their own label and id."""
    from artstyle.data.dataset import Split, undersample

    labels = np.array([0] * 7 + [1] * 3 + [2] * 5)
    images = np.zeros((15, 2, 2, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(15)                # each image knows its row
    split = Split(images, labels, np.array([f"id{i}" for i in range(15)]))
    cut = undersample(split, seed=0)
    assert sorted(np.bincount(cut.labels).tolist()) == [3, 3, 3]
    rows = cut.images[:, 0, 0, 0].astype(int)
    np.testing.assert_array_equal(labels[rows], cut.labels)
    assert cut.ids.tolist() == [f"id{r}" for r in rows]
    assert sorted(rows[cut.labels == 1].tolist()) == [7, 8, 9]   # the smallest class whole
    again = undersample(split, seed=0)
    np.testing.assert_array_equal(again.images, cut.images)
    assert undersample(split, seed=1).ids.tolist() != cut.ids.tolist()
