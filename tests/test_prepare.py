"""Stage prepare on generated bad input and on real paintings: scan, rejects, duplicates, split."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import image_factory
from artstyle.config import PrepareParams
from artstyle.data.catalogue import DatasetError, prepare_dataset, scan_tree, split_indices
from artstyle.io import read_json


def _prepare(raw, tmp_path, **kw):
    fields = set(PrepareParams.model_fields)
    params = PrepareParams(**{"max_pixels": image_factory.TREE_MAX_PIXELS, "val_fraction": 0.25,
                              "test_fraction": 0.25, "group_by_artist": False,
                              **{k: v for k, v in kw.items() if k in fields}})
    args = {"image_size": 32, "seed": 0, "progress": False,
            **{k: v for k, v in kw.items() if k not in fields}}
    return prepare_dataset(raw, tmp_path / "prepared", tmp_path / "report", params=params, **args)


@pytest.fixture()
def bad_tree(tmp_path):
    raw = tmp_path / "raw"
    expected = image_factory.make_bad_input_tree(raw)
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
    assert summary["images"] == len(expected["good"])
    assert summary["classes"] == len(expected["classes"])

    manifest = pd.read_csv(tmp_path / "prepared" / "manifest.csv", keep_default_na=False)
    assert set(manifest["source_path"]) == set(expected["good"])
    for row in manifest.itertuples():
        img = Image.open(tmp_path / "prepared" / row.path)
        assert img.mode == "RGB" and img.size == (32, 32)
        assert expected["good"][row.source_path]["class"] == getattr(row, "_2")
    assert read_json(tmp_path / "prepared" / "classes.json") == summary_classes(summary)
    assert (tmp_path / "report" / "class_distribution.png").stat().st_size > 1000


def summary_classes(summary):
    return list(summary["per_class"])


def test_duplicates_inside_and_across_classes(tmp_path):
    raw = tmp_path / "raw"
    for cls in ("Baroque", "realism", "Cubism"):
        for i in range(4):
            image_factory.make_rgb_jpeg(raw / cls / "Some Artist" / f"{cls}_{i}.jpg",
                                        size=(40 + i, 30 + len(cls)))
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
    (tmp_path / "prepared").mkdir()
    (tmp_path / "prepared" / "marker").write_text("old")
    with pytest.raises(DatasetError):
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


@pytest.mark.shared
def test_artist_grouped_split_that_empties_a_class_is_refused(shared_dir, tmp_path):
    # Painting-91 labels movements per artist, with 2 to 6 artists per movement: holding
    # out whole artists leaves some movement without training images.
    raw = shared_dir / "datasets" / "painting91-mini"
    with pytest.raises(DatasetError, match="no training image for: .*group_by_artist: false"):
        _prepare(raw, tmp_path, max_pixels=60_000_000, val_fraction=0.15, test_fraction=0.2,
                 group_by_artist=True, seed=42)   # the seed of params.yaml
