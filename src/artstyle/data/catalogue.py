"""Stage ``prepare``: scan a Pandora-layout tree, validate, de-duplicate, split, store resized.

Layout read (Pandora 7K / 18K, Painting-91 style)::

    <raw>/<Movement>/<file>                 (artist unknown)
    <raw>/<Movement>/<Artist>/.../<file>    (artist = first sub-folder)

Classes are the top-level folders, taken by their exact names and sorted
case-insensitively (``Baroque`` next to ``realism``); hidden and system entries are
ignored at any depth. Every image is decoded once by :func:`artstyle.images.load_rgb`;
a file that cannot be used is *rejected* with a reason and listed, never fatal.
Exact duplicates (same sha256 of the file bytes) are kept once; the same bytes under
two classes is a label conflict and every copy is dropped and reported.

The split is stratified by class (scikit-learn), optionally keeping all paintings
of one artist in one split (``StratifiedGroupKFold``), so it is disjoint by
construction: each kept content hash appears in exactly one row of the manifest.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split
from tqdm.auto import tqdm

from artstyle import images, paths
from artstyle.hashing import sha256_file
from artstyle.figures import new_figure, save_figure, set_title
from artstyle.io import atomic_dir, write_json
from artstyle.config import PrepareParams
from artstyle.errors import ArtstyleError

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["path", "class", "artist", "split", "content_hash", "source_path",
                    "width", "height"]
MIN_IMAGES_PER_CLASS = 3


class DatasetError(ArtstyleError, ValueError):
    """The raw tree cannot make a usable dataset (no classes, a class too small to split)."""


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
        ``classes`` sorted case-insensitively; ``candidates`` in a stable order;
        ``ignored`` lists hidden/system entries and stray top-level files.

    Raises
    ------
    DatasetError
        When ``raw_dir`` does not exist or holds no class folder.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DatasetError(f"raw data folder {raw_dir} does not exist")
    result = ScanResult(classes=[])
    for top in sorted(raw_dir.iterdir(), key=lambda p: p.name.casefold()):
        if images.is_hidden_or_system(top.name):
            result.ignored.append(top.name)
            continue
        if not top.is_dir():
            result.ignored.append(top.name)
            continue
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
                artist = rel.parts[1] if len(rel.parts) > 2 else ""
                result.candidates.append(Candidate(path, top.name, artist, rel.as_posix()))
                found = True
        if found:
            result.classes.append(top.name)
        else:
            logger.warning("class folder %r holds no files; not a class", top.name)
    if not result.classes:
        raise DatasetError(f"no class folders with files under {raw_dir}")
    return result


@dataclass
class _Decoded:
    candidate: Candidate
    content_hash: str
    image: object | None = None   # PIL image, resized
    size: tuple[int, int] = (0, 0)
    reason: str = ""
    message: str = ""


def _decode(c: Candidate, image_size: int, max_pixels: int) -> _Decoded:
    digest = sha256_file(c.path)
    try:
        img = images.load_rgb(c.path, max_pixels=max_pixels)
    except images.ImageRejected as err:
        return _Decoded(c, digest, reason=err.reason, message=str(err))
    size = img.size
    return _Decoded(c, digest, image=images.resize_to_square(img, image_size), size=size)


def split_indices(labels: list[str], groups: list[str] | None, *, val_fraction: float,
                  test_fraction: float, seed: int) -> np.ndarray:
    """Assign each item to ``train``, ``validation`` or ``test``, stratified by label.

    Parameters
    ----------
    labels : list of str, length n
        Class of each item.
    groups : list of str or None
        When given (e.g. artists), items of one group never straddle two splits
        (``sklearn.model_selection.StratifiedGroupKFold``; fractions are then approximate).
    val_fraction, test_fraction : float
        Target fractions of the whole set, in [0, 1).
    seed : int
        Seed of the shuffles.

    Returns
    -------
    ndarray of str, shape (n,)
        The split of each item.

    Raises
    ------
    DatasetError
        When a class has fewer than ``MIN_IMAGES_PER_CLASS`` items.
    """
    y = np.asarray(labels)
    counts = Counter(labels)
    small = sorted(c for c, n in counts.items() if n < MIN_IMAGES_PER_CLASS)
    if small:
        raise DatasetError(
            f"classes with fewer than {MIN_IMAGES_PER_CLASS} usable images cannot be split: "
            + ", ".join(f"{c} ({counts[c]})" for c in small))
    idx = np.arange(len(y))
    out = np.full(len(y), "train", dtype=object)
    if groups is None:
        # Per class, so that every class reaches every split even when it is small:
        # round(n * fraction) items, at least one each, the rest to train.
        for c_i, cls in enumerate(sorted(counts)):
            members = idx[y == cls]
            n = len(members)
            n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
            n_val = max(1, round(n * val_fraction)) if val_fraction > 0 else 0
            if n_test:
                members, test = train_test_split(members, test_size=n_test,
                                                 random_state=seed + c_i)
                out[test] = "test"
            if n_val:
                _, val = train_test_split(members, test_size=n_val, random_state=seed + c_i)
                out[val] = "validation"
        return out.astype(str)
    g = np.asarray(groups)
    for name, frac, base in (("test", test_fraction, 1.0), ("validation", val_fraction,
                                                            1.0 - test_fraction)):
        if frac == 0:
            continue
        pool = idx[out == "train"]
        n_splits = max(2, round(base / frac))
        sgkf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        _, held = next(sgkf.split(pool, y[pool], g[pool]))
        out[pool[held]] = name
    out = out.astype(str)
    no_train = sorted(c for c in counts if not np.any((y == c) & (out == "train")))
    if no_train:
        raise DatasetError(
            "keeping each artist in one split left no training image for: "
            + ", ".join(no_train) + " (too few artists per class); set "
            "prepare.group_by_artist: false")
    for split in ("validation", "test"):
        missing = sorted(c for c in counts if not np.any((y == c) & (out == split)))
        if missing and (val_fraction if split == "validation" else test_fraction) > 0:
            logger.warning("artist-grouped split: no %s image for %s", split, ", ".join(missing))
    return out


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
        ``rejects.csv``, ``duplicates.csv`` and ``class_distribution.png``.
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
        No classes, or a class too small to split after rejects and conflicts.
    """
    max_pixels, group_by_artist = params.max_pixels, params.group_by_artist
    t0 = time.perf_counter()
    scan = scan_tree(raw_dir)
    logger.info("found %d classes and %d files under %s", len(scan.classes),
                len(scan.candidates), raw_dir)
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
        by_hash: dict[str, list[_Decoded]] = defaultdict(list)
        for d in decoded:
            if not d.reason:
                by_hash[d.content_hash].append(d)
        kept: list[_Decoded] = []
        duplicates = []
        for digest, copies in by_hash.items():
            classes = sorted({c.candidate.cls for c in copies})
            if len(classes) > 1:
                for c in copies:
                    duplicates.append({"content_hash": digest, "source_path": c.candidate.relpath,
                                       "class": c.candidate.cls, "kind": "label_conflict",
                                       "kept": False})
                (img_dir / f"{digest}.png").unlink(missing_ok=True)
                continue
            kept.append(copies[0])
            for c in copies[1:]:
                duplicates.append({"content_hash": digest, "source_path": c.candidate.relpath,
                                   "class": c.candidate.cls, "kind": "duplicate",
                                   "kept_as": copies[0].candidate.relpath, "kept": False})
        kept.sort(key=lambda d: d.candidate.relpath)
        classes = sorted({d.candidate.cls for d in kept}, key=str.casefold)
        lost = [c for c in scan.classes if c not in classes]
        if lost:
            raise DatasetError(f"classes with no usable image left: {', '.join(lost)}")

        labels = [d.candidate.cls for d in kept]
        groups = ([d.candidate.artist or f"?{d.candidate.relpath}" for d in kept]
                  if group_by_artist else None)
        split = split_indices(labels, groups, val_fraction=params.val_fraction,
                              test_fraction=params.test_fraction, seed=seed)
        manifest = pd.DataFrame({
            "path": [f"{paths.IMAGES_DIRNAME}/{d.content_hash}.png" for d in kept],
            "class": labels,
            "artist": [d.candidate.artist for d in kept],
            "split": split,
            "content_hash": [d.content_hash for d in kept],
            "source_path": [d.candidate.relpath for d in kept],
            "width": [d.size[0] for d in kept],
            "height": [d.size[1] for d in kept],
        }, columns=MANIFEST_COLUMNS)
        manifest.to_csv(tmp_prepared / paths.MANIFEST_NAME, index=False)
        write_json(tmp_prepared / paths.CLASSES_NAME, classes)
        write_json(tmp_prepared / paths.DATASET_NAME, {"notice": dataset_notice,
                                                   "image_size": image_size})

        summary = _summarise(manifest, classes, rejects, duplicates, len(scan.candidates),
                             len(scan.ignored), time.perf_counter() - t0)
        write_json(tmp_report / "summary.json", summary)
        pd.DataFrame(rejects, columns=["source_path", "class", "reason", "message"]).to_csv(
            tmp_report / "rejects.csv", index=False)
        pd.DataFrame(duplicates, columns=["content_hash", "source_path", "class", "kind",
                                          "kept_as", "kept"]).to_csv(
            tmp_report / "duplicates.csv", index=False)
        counts = manifest.groupby(["class", "split"]).size().unstack(fill_value=0)
        counts = counts.reindex(index=classes, columns=list(_SPLITS), fill_value=0)
        counts.to_csv(tmp_report / "counts.csv")
        _plot_distribution(counts, tmp_report / "class_distribution.png", dataset_notice)
        (tmp_report / "summary.md").write_text(
            _summary_markdown(summary, counts, rejects, dataset_notice), encoding="utf-8")
    logger.info("prepared %d images in %d classes (%d rejected, %d duplicates) in %.1f s",
                summary["images"], summary["classes"], summary["rejected"],
                summary["duplicates"] + summary["label_conflicts"], summary["seconds"])
    return summary


_SPLITS = ("train", "validation", "test")


def _summarise(manifest: pd.DataFrame, classes: list[str], rejects: list[dict],
               duplicates: list[dict], scanned: int, ignored: int, seconds: float) -> dict:
    reasons = Counter(r["reason"] for r in rejects)
    kinds = Counter(d["kind"] for d in duplicates)
    return {
        "files_scanned": scanned,
        "ignored_entries": ignored,
        "images": int(len(manifest)),
        "classes": len(classes),
        "rejected": len(rejects),
        "rejected_by_reason": dict(sorted(reasons.items())),
        "duplicates": kinds.get("duplicate", 0),
        "label_conflicts": len({d["content_hash"] for d in duplicates
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
                      notice: str) -> str:
    lines = ["# Data report", ""]
    if notice:
        lines += [f"> **{notice}**", ""]
    lines += [f"{summary['images']} images in {summary['classes']} classes; "
              f"{summary['rejected']} rejected, {summary['duplicates']} duplicates dropped, "
              f"{summary['label_conflicts']} label conflicts dropped.", "",
              counts.assign(total=counts.sum(axis=1)).to_markdown(), ""]
    if rejects:
        lines += ["## Rejected files", "", pd.DataFrame(rejects).to_markdown(index=False), ""]
    return "\n".join(lines)


__all__ = ["Candidate", "DatasetError", "MANIFEST_COLUMNS", "ScanResult", 
           "prepare_dataset", "scan_tree", "split_indices"]
