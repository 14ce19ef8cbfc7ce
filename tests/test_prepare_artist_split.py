"""The artist-disjoint split (``prepare.group_by_artist: true``): test artists never train."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artstyle.config import PrepareParams
from artstyle.data.catalogue import (
    DatasetError,
    artist_groups,
    artist_split,
    prepare_dataset,
    scan_tree,
    split_indices,
    split_manifest,
    validation_shares_artists,
)


def _catalogue(artists_per_class: dict[str, list[tuple[str, int]]]):
    """labels, groups: each class's artists with their number of paintings."""
    labels, groups = [], []
    for cls, artists in artists_per_class.items():
        for artist, n in artists:
            labels += [cls] * n
            groups += [artist] * n
    return labels, groups


def _sizes(labels, split):
    return {c: {s: int(np.sum((np.asarray(labels) == c) & (split == s)))
                for s in ("train", "validation", "test")} for c in sorted(set(labels))}


def _test_artists_unseen(groups, split):
    g = np.asarray(groups)
    return not set(g[split == "test"]) & set(g[split != "test"])


# Two artists (validation must share), four and five artists of equal size (whole artists
# everywhere: the counts do not depend on the shuffle), ten paintings of unknown artist.
TWO = [("Ingres", 10), ("David", 10)]
FOUR = [(f"four{i}", 5) for i in range(4)]
FIVE = [(f"five{i}", 4) for i in range(5)]


def _mixed():
    labels, groups = _catalogue({"Two": TWO, "Four": FOUR, "Five": FIVE})
    labels += ["Loose"] * 10
    groups += artist_groups([""] * 10, [f"Loose/{i}.png" for i in range(10)])
    return labels, groups


def test_test_artists_never_train_or_validate_and_the_counts_are_exact():
    labels, groups = _mixed()
    split = split_indices(labels, groups, val_fraction=0.15, test_fraction=0.2, seed=42)
    assert _test_artists_unseen(groups, split)
    assert _sizes(labels, split) == {
        # 20 paintings: one whole artist to test; round(0.15 x 20) = 3 of the other's
        # 10 to validation (shared), 7 train
        "Two": {"train": 7, "validation": 3, "test": 10},
        # 20 in 4 x 5: one artist to test (5 is nearer 4 than 10), one to validation
        "Four": {"train": 10, "validation": 5, "test": 5},
        # 20 in 5 x 4: one artist to test, one to validation
        "Five": {"train": 12, "validation": 4, "test": 4},
        # unknown artists are groups of one painting: 2 test (0.2 x 10), 1 validation
        # (1.5: the second painting is no nearer), 7 train
        "Loose": {"train": 7, "validation": 1, "test": 2},
    }
    assert validation_shares_artists(labels, groups, split) == ["Two"]
    g, s = np.asarray(groups), split
    for cls, n_test, n_val in (("Four", 1, 1), ("Five", 1, 1), ("Two", 1, 1)):
        in_cls = np.asarray(labels) == cls
        assert len(set(g[in_cls & (s == "test")])) == n_test
        assert len(set(g[in_cls & (s == "validation")])) == n_val
    # the shared movement's validation paintings are its training artist's
    two = np.asarray(labels) == "Two"
    assert set(g[two & (s == "validation")]) == set(g[two & (s == "train")])


def test_artist_split_is_deterministic_for_the_seed():
    labels, groups = _mixed()
    runs = [artist_split(labels, groups, val_fraction=0.15, test_fraction=0.2, seed=seed)
            for seed in (7, 7, 8)]
    assert (runs[0] == runs[1]).all()
    g = np.asarray(groups)
    tests = [frozenset(g[r == "test"]) for r in runs]
    assert tests[0] == tests[1]
    others = {frozenset(g[artist_split(labels, groups, val_fraction=0.15, test_fraction=0.2,
                                       seed=s) == "test"]) for s in range(10)}
    assert len(others) > 1      # the seed does choose the artists


def test_manifest_split_ignores_the_row_order():
    labels, groups = _mixed()
    manifest = pd.DataFrame({"class": labels,
                             "artist": ["" if a.startswith("?") else a for a in groups],
                             "source_path": [f"{c}/{a}/{i:03d}.png" if not a.startswith("?")
                                             else a[1:] for i, (c, a) in
                                             enumerate(zip(labels, groups))]})
    params = PrepareParams(group_by_artist=True)
    split = split_manifest(manifest, params=params, seed=42)
    shuffled = manifest.sample(frac=1.0, random_state=0)
    again = split_manifest(shuffled, params=params, seed=42)
    assert (pd.Series(again, index=shuffled.index).loc[manifest.index].to_numpy()
            == split).all()
    assert _test_artists_unseen(artist_groups(manifest["artist"], manifest["source_path"]),
                                split)


def test_a_movement_painted_by_one_artist_is_refused_naming_it():
    labels, groups = _catalogue({"Cubism": [("Picasso", 8)], "Two": TWO, "Four": FOUR})
    with pytest.raises(DatasetError) as info:
        split_indices(labels, groups, val_fraction=0.15, test_fraction=0.2, seed=0)
    assert str(info.value) == (
        "keeping artists apart (prepare.group_by_artist: true) needs at least 2 artists per "
        "class, one to test and one to train; painted by one artist: Cubism (Picasso); add "
        "paintings by other artists, leave these out with data.classes, or set "
        "prepare.group_by_artist: false")


def test_an_artist_of_two_movements_is_placed_once():
    # "X" paints in both: wherever the first movement puts them, the second follows.
    labels, groups = _catalogue({"P": [("X", 5), ("Y", 5), ("Z", 5), ("W", 5)],
                                 "Q": [("X", 4), ("V", 4), ("U", 4), ("T", 4), ("S", 4)]})
    for seed in range(6):
        split = split_indices(labels, groups, val_fraction=0.2, test_fraction=0.2, seed=seed)
        assert _test_artists_unseen(groups, split)
        assert len(set(split[np.asarray(groups) == "X"])) == 1
        assert validation_shares_artists(labels, groups, split) == []


def test_a_movement_left_without_a_validation_image_is_refused():
    # B: b0 (2 paintings) drawn for test leaves one painting, which must train
    labels, groups = _catalogue({"A": [(f"a{i}", 4) for i in range(5)],
                                 "B": [("b0", 2), ("b1", 1)]})
    with pytest.raises(DatasetError) as info:
        split_indices(labels, groups, val_fraction=0.15, test_fraction=0.2, seed=0)
    assert str(info.value) == (
        "keeping artists apart left no validation image for: B (too few artists, or too few "
        "paintings beside those held out, counting artists placed by another class); add "
        "paintings by other artists, or set prepare.group_by_artist: false")


def test_a_movement_whose_artists_all_test_or_validate_elsewhere_is_refused():
    labels, groups = _catalogue({"P": [("X", 5), ("Y", 5), ("Z", 5)],
                                 "Q": [("X", 3), ("Y", 3)]})
    with pytest.raises(DatasetError, match=r"^keeping artists apart left no train image for: "
                       r"Q \(too few artists"):
        split_indices(labels, groups, val_fraction=0.15, test_fraction=0.2, seed=1)


def _png(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(path)


def test_prepare_with_artists_apart_reports_the_shared_movements(tmp_path):
    raw, seed = tmp_path / "raw", 0
    for cls, artists in {"Symbolism": TWO, "Cubism": FOUR}.items():
        for artist, n in artists:
            for i in range(n):
                _png(raw / cls / artist / f"{i}.png", seed)
                seed += 1
    summary = prepare_dataset(raw, tmp_path / "prepared", tmp_path / "report", image_size=16,
                              seed=42, params=PrepareParams(group_by_artist=True),
                              progress=False)
    assert summary["split"] == {"train": 17, "validation": 8, "test": 15}
    assert summary["validation_shares_artists"] == 1
    md = (tmp_path / "report" / "summary.md").read_text(encoding="utf-8")
    assert "Validation shares training artists for: Symbolism (too few artists" in md
    manifest = pd.read_csv(tmp_path / "prepared" / "manifest.csv", keep_default_na=False)
    test_artists = set(manifest.loc[manifest["split"] == "test", "artist"])
    assert not test_artists & set(manifest.loc[manifest["split"] != "test", "artist"])


def test_the_stratified_summary_has_no_artist_field(tmp_path):
    raw = tmp_path / "raw"
    for c_i, cls in enumerate(("A", "B")):
        for i in range(10):
            _png(raw / cls / f"{i}.png", 100 * c_i + i)
    summary = prepare_dataset(raw, tmp_path / "prepared", tmp_path / "report", image_size=16,
                              seed=42, params=PrepareParams(), progress=False)
    assert "validation_shares_artists" not in summary
    assert "Artists kept apart" not in (tmp_path / "report" / "summary.md").read_text()


@pytest.mark.shared
def test_painting91_mini_splits_with_artists_apart(shared_dir):
    # From the catalogue (no image decoded): painting91-mini keeps every painting, so
    # the manifest prepare writes holds exactly these rows.
    scan = scan_tree(shared_dir / "datasets" / "painting91-mini")
    manifest = pd.DataFrame({"class": [c.cls for c in scan.candidates],
                             "artist": [c.artist for c in scan.candidates],
                             "source_path": [c.relpath for c in scan.candidates]})
    assert len(manifest) == 520 and manifest["artist"].ne("").all()
    split = split_manifest(manifest, params=PrepareParams(group_by_artist=True), seed=42)
    groups = artist_groups(manifest["artist"], manifest["source_path"])
    assert {s: int((split == s).sum()) for s in ("train", "validation", "test")} == {
        "train": 243, "validation": 119, "test": 158}
    assert _test_artists_unseen(groups, split)
    assert validation_shares_artists(manifest["class"], groups, split) == [
        "Neo-classicism", "Symbolism"]
    counts = pd.crosstab(manifest["class"], split)
    assert (counts > 0).all().all()
    assert counts.loc["Neo-classicism"].to_dict() == {"test": 23, "train": 11,
                                                      "validation": 6}
    test_artists = manifest.loc[split == "test"].groupby("class")["artist"].nunique()
    assert (test_artists == 1).all()     # one whole artist per movement, 13 in all
    # the stratified split of the same catalogue is today's: 338 / 78 / 104
    strat = split_manifest(manifest, params=PrepareParams(), seed=42)
    assert {s: int((strat == s).sum()) for s in ("train", "validation", "test")} == {
        "train": 338, "validation": 78, "test": 104}
