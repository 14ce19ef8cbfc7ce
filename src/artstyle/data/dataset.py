"""Reading the prepared splits into arrays and ``tf.data`` pipelines.

The ``prepare`` stage stores every painting once, already resized, so loading a split
is a fast read of small PNGs; nothing here decodes a full-size original.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from artstyle import paths
from artstyle.errors import ArtstyleError
from artstyle.io import read_csv


class PreparedDataError(ArtstyleError, ValueError):
    """``data/prepared`` is inconsistent (a manifest class missing from ``classes.json``)."""


def load_manifest(prepared_dir: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Read ``manifest.csv`` and ``classes.json`` written by the ``prepare`` stage.

    Returns
    -------
    (pandas.DataFrame, list of str)
        The manifest, every column read as text except ``width`` and ``height``
        (class names such as ``1``, ``01`` or ``10`` stay the strings they are in
        ``classes.json``, spelt as their folders), and the class list in label order
        (as text).
    """
    prepared_dir = Path(prepared_dir)
    manifest = read_csv(prepared_dir / paths.MANIFEST_NAME, keep_default_na=False, dtype=str)
    for column in ("width", "height"):
        if column in manifest:
            manifest[column] = manifest[column].astype(int)
    classes = [str(c) for c in
               json.loads((prepared_dir / paths.CLASSES_NAME).read_text(encoding="utf-8"))]
    return manifest, classes


def dataset_notice(prepared_dir: str | Path) -> str:
    """The provenance notice (e.g. "synthetic") recorded by ``prepare``; '' when none."""
    path = Path(prepared_dir) / paths.DATASET_NAME
    if not path.exists():
        return ""
    return json.loads(path.read_text(encoding="utf-8")).get("notice", "")


@dataclass(frozen=True)
class Split:
    """One split in memory.

    Attributes
    ----------
    images : ndarray of shape (n, S, S, 3), uint8
        RGB, ``S`` = ``base.image_size``.
    labels : ndarray of shape (n,), int64
        Index into the class list.
    ids : ndarray of shape (n,), str
        Content hashes (stable file ids).
    """

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def load_split(prepared_dir: str | Path, split: str) -> tuple[Split, list[str]]:
    """Load one split of a prepared dataset.

    Parameters
    ----------
    prepared_dir : path
        Output of the ``prepare`` stage.
    split : {"train", "validation", "test"}

    Returns
    -------
    (Split, list of str)
        The split and the fixed class list (index order of ``labels``), class names
        as text exactly as in ``classes.json``.

    Raises
    ------
    PreparedDataError
        The manifest names a class that ``classes.json`` lacks.
    """
    prepared_dir = Path(prepared_dir)
    manifest, classes = load_manifest(prepared_dir)
    rows = manifest[manifest["split"] == split]
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(rows["class"]) - index.keys())
    if unknown:
        raise PreparedDataError(
            f"{prepared_dir / paths.MANIFEST_NAME} names class(es) {unknown} missing from "
            f"{paths.CLASSES_NAME} {classes}; run the prepare stage again (dvc repro prepare)")
    images = [np.asarray(Image.open(prepared_dir / p).convert("RGB")) for p in rows["path"]]
    side = images[0].shape[0] if images else 0
    arr = np.stack(images) if images else np.zeros((0, side, side, 3), np.uint8)
    labels = np.array([index[c] for c in rows["class"]], dtype=np.int64)
    return Split(arr, labels, rows["content_hash"].to_numpy(dtype=str)), classes


def undersample(split: Split, seed: int) -> Split:
    """Randomly undersample every class to the size of the smallest one (the study's balancing).

    Returns
    -------
    Split
        A new split with ``min_count * n_present_classes`` items, order shuffled.
    """
    rng = np.random.default_rng(seed)
    present, counts = np.unique(split.labels, return_counts=True)
    n = counts.min()
    keep = np.concatenate([rng.choice(np.flatnonzero(split.labels == c), n, replace=False)
                           for c in present])
    keep = rng.permutation(keep)
    return Split(split.images[keep], split.labels[keep], split.ids[keep])


def make_dataset(split: Split, *, input_size: int, batch_size: int, shuffle: bool, seed: int):
    """A batched, cached, prefetched ``tf.data.Dataset`` of ``(float32 image, label)``.

    Images are resized to ``input_size`` (bilinear, antialiased) once and cached;
    shuffling happens after the cache so each epoch sees a new order.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((split.images, split.labels))

    def _resize(img, label):
        img = tf.cast(img, tf.float32)
        if split.images.shape[1] != input_size:
            img = tf.image.resize(img, (input_size, input_size), antialias=True)
        return img, label

    ds = ds.map(_resize, num_parallel_calls=tf.data.AUTOTUNE).cache()
    if shuffle:
        ds = ds.shuffle(max(1, len(split)), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def resize_batch(images: np.ndarray, input_size: int) -> np.ndarray:
    """Resize a uint8 batch ``(n, H, W, 3)`` to float32 ``(n, input_size, input_size, 3)``."""
    import tensorflow as tf

    x = tf.cast(images, tf.float32)
    if images.shape[1:3] != (input_size, input_size):
        x = tf.image.resize(x, (input_size, input_size), antialias=True)
    return x.numpy()
