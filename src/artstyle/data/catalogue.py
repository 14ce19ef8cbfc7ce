"""Stage ``prepare``: scan a Pandora-layout tree, validate, de-duplicate, split, store resized.

Layout read (Pandora 7K / 18K, Painting-91 style)::

    <raw>/<Movement>/<file>                 (artist unknown)
    <raw>/<Movement>/<Artist>/.../<file>    (artist = first sub-folder)

Classes are the top-level folders, taken by their names as text (a folder ``10`` is
the class ``"10"``, never a number), Unicode-normalised to NFC (an accented letter
stored decomposed, as macOS and some zip tools write it, becomes the composed form, so
a folder and a zip of the same tree give the same class and artist names), and sorted
case-insensitively as text (``Baroque`` next to ``realism``; ``1``, ``10``, ``2``).
Hidden and system entries are ignored at any depth. At least two classes are needed.
Every image is decoded once by :func:`artstyle.images.load_rgb`; a file that cannot be
used is *rejected* with a reason and listed, never fatal.

Duplicates are found on the decoded pixels (SHA-256 of the RGB array's shape and
bytes), so copies that differ only in metadata (PNG text chunks, EXIF, JPEG comments)
count too: copies under one class are kept once; copies under two classes are a label
conflict and every copy is dropped and reported. Stored files keep their names, the
SHA-256 of the kept copy's file bytes (``content_hash``).

The split is stratified by class (scikit-learn), or keeps artists apart
(``prepare.group_by_artist``, :func:`artist_split`: no test painting's artist has a
painting in train or validation); it is disjoint by construction: each kept content
hash appears in exactly one row of the manifest.
Every class must reach every split; a class that cannot stops the stage with a
:class:`DatasetError` naming the class, the split and the ``prepare`` key to change.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import unicodedata
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from artstyle import images, paths
from artstyle.config import PrepareParams
from artstyle.errors import ArtstyleError
from artstyle.figures import new_figure, save_figure, set_title
from artstyle.hashing import sha256_file
from artstyle.io import atomic_dir, write_csv, write_json

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["path", "class", "artist", "split", "content_hash", "source_path",
                    "width", "height"]
MIN_IMAGES_PER_CLASS = 3
MIN_CLASSES = 2


class DatasetError(ArtstyleError, ValueError):
    """The raw tree cannot make a usable dataset (under two classes, a class too small to split)."""


def normalise_name(name: str) -> str:
    """A class or artist name as stored everywhere: the folder name as text, NFC-normalised.

    ``"Cafe\u0301"`` (decomposed, as macOS and some zip tools write it) and ``"Caf\u00e9"``
    both give ``"Caf\u00e9"``; ``"10"`` stays the text ``"10"``.
    """
    return unicodedata.normalize("NFC", str(name))


@dataclass(frozen=True)
class Candidate:
    """One file found under a class folder."""

    path: Path
    cls: str
    artist: str
    relpath: str


@dataclass
class ScanResult:
    """What :func:`scan_tree` found: candidate files and the sorted class list."""

    classes: list[str]
    candidates: list[Candidate] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def scan_tree(raw_dir: str | Path) -> ScanResult:
    """Find the classes (top-level folders) and every non-hidden file below them.

    Parameters
    ----------
    raw_dir : str or Path
        Root of a Pandora-layout tree.

    Returns
    -------
    ScanResult
        ``classes`` (:func:`normalise_name` of the folder names: text, NFC) sorted
        case-insensitively; ``candidates`` in a stable order, their ``cls`` and
        ``artist`` normalised the same way (``relpath`` keeps the names on disk);
        ``ignored`` lists hidden/system entries and stray top-level files. Two
        folders whose names differ only in Unicode normalisation form one class.

    Raises
    ------
    DatasetError
        When ``raw_dir`` does not exist or holds no class folder.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DatasetError(f"raw data folder {raw_dir} does not exist; run the download "
                           "stage first (dvc repro download)")
    result = ScanResult(classes=[])
    for top in sorted(raw_dir.iterdir(), key=lambda p: p.name.casefold()):
        if images.is_hidden_or_system(top.name):
            result.ignored.append(top.name)
            continue
        if not top.is_dir():
            result.ignored.append(top.name)
            continue
        cls = normalise_name(top.name)
        found = False
        for dirpath, dirnames, filenames in os.walk(top):
            kept = [d for d in dirnames if not images.is_hidden_or_system(d)]
            result.ignored += [str(Path(dirpath, d).relative_to(raw_dir))
                               for d in dirnames if d not in kept]
            dirnames[:] = sorted(kept)
            for name in sorted(filenames):
                path = Path(dirpath) / name
                rel = path.relative_to(raw_dir)
                if images.is_hidden_or_system(name):
                    result.ignored.append(str(rel))
                    continue
                artist = normalise_name(rel.parts[1]) if len(rel.parts) > 2 else ""
                result.candidates.append(Candidate(path, cls, artist, rel.as_posix()))
                found = True
        if found:
            if cls not in result.classes:
                result.classes.append(cls)
        else:
            logger.warning("class folder %r holds no files; not a class", top.name)
    if not result.classes:
        raise DatasetError(f"no class folders with files under {raw_dir}; expected "
                           "<Movement>/[<Artist>/]<image> (check data.source and data.path)")
    result.classes.sort(key=_class_order)
    return result


def _class_order(name: str) -> tuple[str, str]:
    """Sort key of class names: case-insensitive text, ties broken by the exact name."""
    return name.casefold(), name


@dataclass
class _Decoded:
    candidate: Candidate
    content_hash: str             # SHA-256 of the file bytes: the stored file's name
    image: object | None = None   # PIL image, resized
    size: tuple[int, int] = (0, 0)
    reason: str = ""
    message: str = ""
    pixel_hash: str = ""          # SHA-256 of the decoded pixels: the duplicate key
    icc: str = "none"             # load_rgb's info["icc"]: none / converted / unusable


_HASH_ROWS_BYTES = 1 << 24


def pixel_hash(img) -> str:
    """SHA-256 of a decoded image's pixels: mode, shape ``(H, W, bands)`` and raw bytes.

    Copies that differ only in metadata (PNG text chunks, EXIF, JPEG comments, file
    names) decode to the same pixels and hence the same hash. Hashed in strips of rows
    so that a large image is not copied whole.
    """
    width, height = img.size
    bands = len(img.getbands())
    digest = hashlib.sha256(f"{img.mode}:{height}x{width}x{bands}:".encode("ascii"))
    rows = max(1, _HASH_ROWS_BYTES // max(1, width * bands))
    for top in range(0, height, rows):
        digest.update(img.crop((0, top, width, min(height, top + rows))).tobytes())
    return digest.hexdigest()


def _decode(c: Candidate, image_size: int, max_pixels: int) -> _Decoded:
    try:  # a FIFO, device or broken link is rejected before it is opened (never blocks)
        images.check_regular_file(c.path)
    except images.ImageRejected as err:
        return _Decoded(c, "", reason=err.reason, message=str(err))
    digest = sha256_file(c.path)
    try:
        img = images.load_rgb(c.path, max_pixels=max_pixels)
    except images.ImageRejected as err:
        return _Decoded(c, digest, reason=err.reason, message=str(err))
    size = img.size
    return _Decoded(c, digest, image=images.resize_to_square(img, image_size), size=size,
                    pixel_hash=pixel_hash(img), icc=img.info.get("icc", "none"))


def split_indices(labels: list[str], groups: list[str] | None, *, val_fraction: float,
                  test_fraction: float, seed: int) -> np.ndarray:
    """Assign each item to ``train``, ``validation`` or ``test``, stratified by label.

    Every class must reach every split: a split that would hold no image of some class
    is an error, never a silently empty split.

    Parameters
    ----------
    labels : list of str, length n
        Class of each item.
    groups : list of str or None
        When given (artists, :func:`artist_groups`), the split keeps them apart
        (:func:`artist_split`: whole artists to test, and to validation where a class
        has enough artists; fractions are then approximate). Otherwise each class
        gives ``round(n * fraction)`` items, at least one, to each of test and
        validation, and the rest to train.
    val_fraction, test_fraction : float
        Target fractions of the whole set, in (0, 1), summing to less than 1
        (``prepare.val_fraction``, ``prepare.test_fraction``).
    seed : int
        Seed of the shuffles.

    Returns
    -------
    ndarray of str, shape (n,)
        The split of each item.

    Raises
    ------
    DatasetError
        A fraction outside (0, 1); a class with fewer than ``MIN_IMAGES_PER_CLASS``
        items; a class left without an item in some split (the message names the
        class, the split and the ``prepare`` key to change); with ``groups``, a class
        painted by a single artist (:func:`artist_split`).
    """
    for key, frac in (("prepare.val_fraction", val_fraction),
                      ("prepare.test_fraction", test_fraction)):
        if not 0 < frac < 1:
            raise DatasetError(f"{key} is {frac}: every split needs images of every class; "
                               f"set {key} between 0 and 1 (exclusive), e.g. 0.15")
    if val_fraction + test_fraction >= 1:
        raise DatasetError(f"prepare.val_fraction + prepare.test_fraction is "
                           f"{val_fraction + test_fraction:g}, leaving nothing to train on; "
                           "lower them (their sum must stay below 0.9)")
    y = np.asarray(labels)
    counts = Counter(labels)
    small = sorted(c for c, n in counts.items() if n < MIN_IMAGES_PER_CLASS)
    if small:
        raise DatasetError(
            f"classes with fewer than {MIN_IMAGES_PER_CLASS} usable images cannot be split "
            "into train, validation and test: "
            + ", ".join(f"{c} ({counts[c]})" for c in small)
            + "; add images to them or leave them out with data.classes")
    idx = np.arange(len(y))
    out = np.full(len(y), "train", dtype=object)
    if groups is None:
        # Per class, so that every class reaches every split even when it is small:
        # round(n * fraction) items, at least one each, the rest to train.
        plan = {cls: (max(1, round(n * test_fraction)), max(1, round(n * val_fraction)))
                for cls, n in counts.items()}
        starved = sorted((c for c, (n_test, n_val) in plan.items()
                          if counts[c] - n_test - n_val < 1), key=_class_order)
        if starved:
            raise DatasetError(
                "no image left for the train split of class(es) "
                + ", ".join(f"{c!r} ({counts[c]} images: {plan[c][0]} test, "
                            f"{plan[c][1]} validation)" for c in starved)
                + f"; lower prepare.test_fraction ({test_fraction:g}) or "
                f"prepare.val_fraction ({val_fraction:g}), or add images")
        for c_i, cls in enumerate(sorted(counts)):
            members = idx[y == cls]
            n_test, n_val = plan[cls]
            members, test = train_test_split(members, test_size=n_test,
                                             random_state=seed + c_i)
            out[test] = "test"
            _, val = train_test_split(members, test_size=n_val, random_state=seed + c_i)
            out[val] = "validation"
        return out.astype(str)
    out = artist_split(labels, groups, val_fraction=val_fraction,
                       test_fraction=test_fraction, seed=seed)
    for split in _SPLITS:
        missing = sorted((c for c in counts if not np.any((y == c) & (out == split))),
                         key=_class_order)
        if missing:
            raise DatasetError(
                f"keeping artists apart left no {split} image for: " + ", ".join(missing)
                + " (too few artists, or too few paintings beside those held out, counting "
                "artists placed by another class); add paintings by other artists, or set "
                "prepare.group_by_artist: false")
    return out


def split_manifest(manifest: pd.DataFrame, *, params: PrepareParams, seed: int) -> np.ndarray:
    """The split ``prepare`` gives a manifest's paintings (:func:`split_indices`).

    The paintings are split in the order of their ``source_path`` (as
    :func:`prepare_dataset` stores them), whatever the order of the rows, so that a
    benchmark re-splitting a prepared manifest gets the pipeline's split for the same
    params and seed.

    Parameters
    ----------
    manifest : pandas.DataFrame, n rows
        With the columns ``class``, ``artist`` (``""`` or NaN when unknown) and
        ``source_path`` (:data:`MANIFEST_COLUMNS`).
    params : artstyle.config.PrepareParams
        ``val_fraction``, ``test_fraction`` and ``group_by_artist``.
    seed : int
        ``base.seed``.

    Returns
    -------
    ndarray of str, shape (n,)
        The split of each row, in the rows' order.

    Raises
    ------
    DatasetError
        As :func:`split_indices`.
    """
    order = np.argsort(manifest["source_path"].to_numpy(dtype=str), kind="stable")
    rows = manifest.iloc[order]
    groups = (artist_groups(rows["artist"].fillna("").astype(str).tolist(),
                            rows["source_path"].astype(str).tolist())
              if params.group_by_artist else None)
    split = split_indices(rows["class"].astype(str).tolist(), groups,
                          val_fraction=params.val_fraction, test_fraction=params.test_fraction,
                          seed=seed)
    out = np.empty(len(manifest), dtype=object)
    out[order] = split
    return out.astype(str)


def artist_groups(artists: list[str], relpaths: list[str]) -> list[str]:
    """The group of each painting in an artist-disjoint split (:func:`artist_split`).

    Parameters
    ----------
    artists : list of str, length n
        Artist of each painting (:attr:`Candidate.artist`, the manifest's ``artist``);
        ``""`` when unknown (a file directly under its movement folder).
    relpaths : list of str, length n
        Path of each painting under the raw tree (the manifest's ``source_path``).

    Returns
    -------
    list of str, length n
        The artist, or for a painting without a known artist ``"?"`` + its path: each
        such painting is a group of its own.
    """
    return [a or f"?{p}" for a, p in zip(artists, relpaths, strict=True)]


def artist_split(labels: list[str], groups: list[str], *, val_fraction: float,
                 test_fraction: float, seed: int) -> np.ndarray:
    """Split keeping artists apart: the test split's artists are never seen in training.

    The rule, per class (art movement; classes in sorted order, one seeded random
    generator for all):

    1. **test**: the class's artists are shuffled; whole artists are taken in that
       order, the first always and each next one when its paintings bring the count
       closer to ``test_fraction`` of the class, as long as one artist is left for
       training;
    2. **validation**: the same with ``val_fraction`` among the artists left, when at
       least two are left (one stays for training); otherwise the class's validation
       split *shares* its training artists: ``round(val_fraction x n)`` (at least one,
       leaving at least one to train) of the class's remaining paintings, drawn at random;
    3. every other painting trains.

    An artist found under several classes is placed once: where an earlier class put
    them (test, validation or train), their paintings of every later class follow, so
    that no test painting's artist has a painting in train or validation anywhere.
    :func:`validation_shares_artists` names the classes whose validation shares artists
    with training. The result depends only on the labels, groups, their order and the
    seed. Paintings without a known artist are each their own group
    (:func:`artist_groups`).

    Parameters
    ----------
    labels : list of str, length n
        Class of each painting.
    groups : list of str, length n
        Artist of each painting (:func:`artist_groups`).
    val_fraction, test_fraction : float
        Target fractions of each class, in (0, 1) (``prepare.val_fraction``,
        ``prepare.test_fraction``); met only as closely as whole artists allow.
    seed : int
        Seed of the shuffles and draws (``base.seed``).

    Returns
    -------
    ndarray of str, shape (n,)
        ``"train"``, ``"validation"`` or ``"test"`` for each painting. A class whose
        split came out empty is not an error here: :func:`split_indices` checks.

    Raises
    ------
    DatasetError
        A class painted by a single artist: its test split cannot hold an artist unseen
        in training. The message names the classes and their artist, and the fixes
        (more artists, ``data.classes``, or ``prepare.group_by_artist: false``).

    Notes
    -----
    Painting-91 (Khan et al., "Painting-91: a large scale database for computational
    painting categorization", Machine Vision and Applications 2014) and Pandora
    (Florea et al. 2016) label movements per artist, so a split stratified by movement
    alone puts paintings of every test artist in training. The rule is the one of the
    issue-26 benchmark (``benchmarks/style_heads.py``), now the pipeline's.
    """
    y = np.asarray(labels, dtype=object)
    g = np.asarray(groups, dtype=object)
    if len(y) != len(g):
        raise ValueError(f"{len(y)} labels but {len(g)} groups")
    classes = sorted(set(y.tolist()))
    single = [c for c in classes if len(set(g[y == c].tolist())) == 1]
    if single:
        named = ", ".join(f"{c} ({g[y == c][0]})" for c in sorted(single, key=_class_order))
        raise DatasetError(
            "keeping artists apart (prepare.group_by_artist: true) needs at least 2 artists "
            f"per class, one to test and one to train; painted by one artist: {named}; add "
            "paintings by other artists, leave these out with data.classes, or set "
            "prepare.group_by_artist: false")
    rng = np.random.default_rng(seed)
    out = np.full(len(y), "train", dtype=object)
    placed: dict[str, str] = {}     # artist -> split, once a class has placed them
    for cls in classes:
        members = np.flatnonzero(y == cls)
        size = Counter(g[members].tolist())
        left = sorted(size)
        rng.shuffle(left)           # the class's artists not yet in test or validation
        for split, frac in (("test", test_fraction), ("validation", val_fraction)):
            target = frac * len(members)
            taken = 0
            for a in [a for a in left if placed.get(a) == split]:   # placed by a class before
                out[members[g[members] == a]] = split
                left.remove(a)
                taken += size[a]
            for a in [a for a in left if a not in placed]:
                if len(left) > 1 and (taken == 0
                                      or abs(taken + size[a] - target) < abs(taken - target)):
                    out[members[g[members] == a]] = split
                    left.remove(a)
                    taken += size[a]
                    placed[a] = split
            if split == "validation" and taken == 0:
                rest = members[out[members] == "train"]
                share = min(max(1, round(target)), len(rest) - 1)
                if share > 0:
                    out[rng.choice(rest, size=share, replace=False)] = split
        for a in left:
            placed.setdefault(a, "train")
    return out.astype(str)


def validation_shares_artists(labels: list[str], groups: list[str],
                              split: np.ndarray) -> list[str]:
    """Classes whose validation split holds a painting by an artist who also trains.

    Parameters
    ----------
    labels, groups : list of str, length n
        Class and artist group (:func:`artist_groups`) of each painting.
    split : array of str, shape (n,)
        ``"train"``, ``"validation"`` or ``"test"`` (:func:`split_indices`).

    Returns
    -------
    list of str
        Those classes, sorted as the class list is (empty when validation is
        artist-disjoint from training everywhere).
    """
    y, g, s = np.asarray(labels), np.asarray(groups), np.asarray(split)
    training = set(g[s == "train"].tolist())
    return sorted({str(c) for c, a in zip(y[s == "validation"], g[s == "validation"])
                   if a in training}, key=_class_order)


def prepare_dataset(raw_dir: str | Path, prepared_dir: str | Path, report_dir: str | Path, *,
                    image_size: int, seed: int, params: PrepareParams = PrepareParams(),
                    dataset_notice: str = "", workers: int | None = None,
                    progress: bool = True) -> dict:
    """Validate, de-duplicate, split and store every painting of a raw tree.

    Parameters
    ----------
    raw_dir : path
        Pandora-layout tree (see module docstring).
    prepared_dir : path
        Output: ``images/<hash>.png`` (``image_size`` x ``image_size`` 8-bit RGB),
        ``manifest.csv`` (:data:`MANIFEST_COLUMNS`), ``classes.json`` and
        ``dataset.json`` (provenance, e.g. the synthetic notice).
    report_dir : path
        Output: ``summary.json`` (numbers only, a DVC metric), ``summary.md``,
        ``rejects.csv``, ``duplicates.csv`` and ``class_distribution.png``. With
        ``group_by_artist``, ``summary.json`` also counts the classes whose validation
        split shares training artists (``validation_shares_artists``,
        :func:`validation_shares_artists`) and ``summary.md`` names them.
    image_size : int
        Side in pixels of the stored squares (``base.image_size``).
    seed : int
        Seed of the split (``base.seed``).
    params : artstyle.config.PrepareParams
        ``max_pixels`` (decoding limit per image, :func:`artstyle.images.load_rgb`),
        ``val_fraction``, ``test_fraction`` and ``group_by_artist``
        (:func:`split_indices`); defaults from the params schema.
    dataset_notice : str
        Shown in every report (e.g. that the data is synthetic).

    Returns
    -------
    dict
        The summary written to ``summary.json``.

    Raises
    ------
    DatasetError
        Fewer than :data:`MIN_CLASSES` classes, a class with no usable image left after
        rejects and label conflicts, or a class too small to reach every split
        (:func:`split_indices`), or with ``group_by_artist`` a class painted by a
        single artist (:func:`artist_split`). One line, naming the class and what to change. A
        class left with a single training image is not an error: it is logged and
        listed under "Warnings" in ``summary.md``.
    """
    max_pixels, group_by_artist = params.max_pixels, params.group_by_artist
    t0 = time.perf_counter()
    scan = scan_tree(raw_dir)
    logger.info("found %d classes and %d files under %s", len(scan.classes),
                len(scan.candidates), raw_dir)
    _check_enough_classes(scan.classes, raw_dir)
    workers = workers or min(4, os.cpu_count() or 1)
    with atomic_dir(prepared_dir) as tmp_prepared, atomic_dir(report_dir) as tmp_report:
        img_dir = tmp_prepared / paths.IMAGES_DIRNAME
        img_dir.mkdir()
        decoded: list[_Decoded] = []
        with ThreadPoolExecutor(max_workers=workers) as pool:
            it = pool.map(lambda c: _decode(c, image_size, max_pixels), scan.candidates)
            for d in tqdm(it, total=len(scan.candidates), desc="prepare", unit="img",
                          disable=not progress):
                if d.image is not None:
                    # Written as soon as decoded, so memory stays bounded.
                    target = img_dir / f"{d.content_hash}.png"
                    if not target.exists():
                        d.image.save(target, format="PNG")
                    d.image = None
                decoded.append(d)

        rejects = [{"source_path": d.candidate.relpath, "class": d.candidate.cls,
                    "reason": d.reason, "message": d.message}
                   for d in decoded if d.reason]
        # Duplicates are the same decoded pixels, whatever the file bytes (metadata);
        # each row of duplicates.csv keeps the copy's own file hash (content_hash).
        by_pixels: dict[str, list[_Decoded]] = defaultdict(list)
        for d in decoded:
            if not d.reason:
                by_pixels[d.pixel_hash].append(d)
        kept: list[_Decoded] = []
        duplicates = []
        for group, copies in by_pixels.items():
            classes = sorted({c.candidate.cls for c in copies})
            if len(classes) > 1:
                for c in copies:
                    duplicates.append({"content_hash": c.content_hash,
                                       "source_path": c.candidate.relpath,
                                       "class": c.candidate.cls, "kind": "label_conflict",
                                       "kept": False, "group": group})
                    (img_dir / f"{c.content_hash}.png").unlink(missing_ok=True)
                continue
            kept.append(copies[0])
            for c in copies[1:]:
                duplicates.append({"content_hash": c.content_hash,
                                   "source_path": c.candidate.relpath,
                                   "class": c.candidate.cls, "kind": "duplicate",
                                   "kept_as": copies[0].candidate.relpath, "kept": False,
                                   "group": group})
                if c.content_hash != copies[0].content_hash:
                    (img_dir / f"{c.content_hash}.png").unlink(missing_ok=True)
        kept.sort(key=lambda d: d.candidate.relpath)
        classes = sorted({d.candidate.cls for d in kept}, key=_class_order)
        lost = [c for c in scan.classes if c not in classes]
        if lost:
            raise DatasetError(
                f"class(es) with no usable image left after rejects and label conflicts: "
                f"{', '.join(lost)}; fix their files, or leave them out with data.classes")

        labels = [d.candidate.cls for d in kept]
        manifest = pd.DataFrame({
            "path": [f"{paths.IMAGES_DIRNAME}/{d.content_hash}.png" for d in kept],
            "class": labels,
            "artist": [d.candidate.artist for d in kept],
            "split": "",
            "content_hash": [d.content_hash for d in kept],
            "source_path": [d.candidate.relpath for d in kept],
            "width": [d.size[0] for d in kept],
            "height": [d.size[1] for d in kept],
        }, columns=MANIFEST_COLUMNS)
        split = split_manifest(manifest, params=params, seed=seed)
        manifest["split"] = split
        split_warnings = _split_warnings(labels, split, classes)
        for line in split_warnings:
            logger.warning("%s", line)
        shared = (validation_shares_artists(
            labels, artist_groups(manifest["artist"], manifest["source_path"]), split)
            if group_by_artist else None)
        if shared:
            logger.info("artists kept apart; validation shares training artists for: %s "
                        "(too few artists to hold some out; their test artists are still "
                        "unseen in training)", ", ".join(shared))
        write_csv(manifest, tmp_prepared / paths.MANIFEST_NAME, index=False)
        write_json(tmp_prepared / paths.CLASSES_NAME, classes)
        write_json(tmp_prepared / paths.DATASET_NAME, {"notice": dataset_notice,
                                                   "image_size": image_size})

        summary = _summarise(manifest, classes, rejects, duplicates, len(scan.candidates),
                             len(scan.ignored), time.perf_counter() - t0)
        # kept images whose embedded ICC profile was applied / could not be applied
        summary["icc_converted"] = sum(d.icc == "converted" for d in kept)
        summary["icc_unusable"] = sum(d.icc == "unusable" for d in kept)
        if shared is not None:   # only with group_by_artist: the default summary is unchanged
            summary["validation_shares_artists"] = len(shared)
        write_json(tmp_report / "summary.json", summary)
        write_csv(pd.DataFrame(rejects, columns=["source_path", "class", "reason", "message"]),
                  tmp_report / "rejects.csv", index=False)
        write_csv(pd.DataFrame(duplicates, columns=["content_hash", "source_path", "class",
                                                    "kind", "kept_as", "kept"]),
                  tmp_report / "duplicates.csv", index=False)
        counts = manifest.groupby(["class", "split"]).size().unstack(fill_value=0)
        counts = counts.reindex(index=classes, columns=list(_SPLITS), fill_value=0)
        write_csv(counts, tmp_report / "counts.csv")
        _plot_distribution(counts, tmp_report / "class_distribution.png", dataset_notice)
        (tmp_report / "summary.md").write_text(
            _summary_markdown(summary, counts, rejects, dataset_notice, split_warnings,
                              shared),
            encoding="utf-8")
    logger.info("prepared %d images in %d classes (%d rejected, %d duplicates) in %.1f s",
                summary["images"], summary["classes"], summary["rejected"],
                summary["duplicates"] + summary["label_conflicts"], summary["seconds"])
    return summary


_SPLITS = ("train", "validation", "test")


def _check_enough_classes(classes: list[str], raw_dir: str | Path) -> None:
    """Refuse a dataset of fewer than :data:`MIN_CLASSES` classes (nothing to tell apart)."""
    if len(classes) < MIN_CLASSES:
        found = ", ".join(repr(c) for c in classes) or "none"
        raise DatasetError(
            f"{raw_dir} holds {len(classes)} class folder(s) ({found}); a classifier needs at "
            f"least {MIN_CLASSES}: add movement folders to the source, or list at least "
            f"{MIN_CLASSES} in data.classes (or [] for all)")


def _split_warnings(labels: list[str], split: np.ndarray, classes: list[str]) -> list[str]:
    """One line per class whose training split holds a single image."""
    train = Counter(c for c, s in zip(labels, split) if s == "train")
    return [f"class {c!r} has a single training image; add images to it, or lower "
            "prepare.val_fraction / prepare.test_fraction" for c in classes if train[c] == 1]


def _summarise(manifest: pd.DataFrame, classes: list[str], rejects: list[dict],
               duplicates: list[dict], scanned: int, ignored: int, seconds: float) -> dict:
    reasons = Counter(r["reason"] for r in rejects)
    kinds = Counter(d["kind"] for d in duplicates)
    return {
        "files_scanned": scanned,
        "ignored_entries": ignored,
        "images": len(manifest),
        "classes": len(classes),
        "rejected": len(rejects),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "duplicates": kinds.get("duplicate", 0),
        "label_conflicts": len({d.get("group", d["content_hash"]) for d in duplicates
                                if d["kind"] == "label_conflict"}),
        "split": {s: int((manifest["split"] == s).sum()) for s in _SPLITS},
        "per_class": {c: int((manifest["class"] == c).sum()) for c in classes},
        "seconds": round(seconds, 2),
    }


def _plot_distribution(counts: pd.DataFrame, path: Path, notice: str) -> None:
    fig, ax = new_figure(max(6, 0.6 * len(counts) + 2), 4.5)
    counts.plot.bar(stacked=True, ax=ax, color=["#4c72b0", "#dd8452", "#55a868"])
    ax.legend(title="split", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_xlabel("art movement")
    ax.set_ylabel("images")
    set_title(ax, "Images per art movement and split", notice)
    for label in ax.get_xticklabels():
        label.set_rotation(40)
        label.set_horizontalalignment("right")
    save_figure(fig, path)


def _summary_markdown(summary: dict, counts: pd.DataFrame, rejects: list[dict],
                      notice: str, warnings: list[str] = (),
                      shared: list[str] | None = None) -> str:
    lines = ["# Data report", ""]
    if notice:
        lines += [f"> **{notice}**", ""]
    # Class names are text: no number parsing of the class column ("01" stays "01").
    lines += [(f"{summary['images']} images in {summary['classes']} classes; "
               f"{summary['rejected']} rejected, {summary['duplicates']} duplicates dropped, "
               f"{summary['label_conflicts']} label conflicts dropped."), "",
              counts.assign(total=counts.sum(axis=1)).to_markdown(disable_numparse=[0]), ""]
    if shared is not None:   # prepare.group_by_artist: true
        lines += [("Artists kept apart: no test painting's artist has a painting in train "
                   "or validation."), ""]
        if shared:
            lines += [(f"Validation shares training artists for: {', '.join(shared)} (too "
                       "few artists to hold some out for validation)."), ""]
    if warnings:
        lines += ["## Warnings", "", *(f"- **Warning:** {w}" for w in warnings), ""]
    if rejects:
        lines += ["## Rejected files", "",
                  pd.DataFrame(rejects).to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines)


__all__ = [
    "MANIFEST_COLUMNS",
    "MIN_CLASSES",
    "Candidate",
    "DatasetError",
    "ScanResult",
    "artist_groups",
    "artist_split",
    "normalise_name",
    "pixel_hash",
    "prepare_dataset",
    "scan_tree",
    "split_indices",
    "split_manifest",
    "validation_shares_artists",
]
