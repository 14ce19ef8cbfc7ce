"""Atomic writes: an interrupted stage never leaves half an output that looks complete."""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name beside ``target``, then swap it in.

    Yields
    ------
    Path
        An empty temporary directory on the same file system as ``target``. When the
        ``with`` block ends normally it replaces ``target`` (an older ``target`` is
        removed); when the block raises, it is deleted and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # mkdir (not tempfile.mkdtemp, which makes it 0700): the usual umask permissions
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_file(target: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """Open a temporary file beside ``target`` and rename it into place on success.

    The file is created by ``open`` (so it gets the usual umask permissions, e.g. 0644,
    unlike ``tempfile.mkstemp``'s 0600); on any error the temporary file is removed and
    ``target`` is left as it was.
    """
    with _atomic_path(Path(target)) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def atomic_path(target: str | Path) -> contextmanager[Path]:
    """Yield a temporary *path* (not yet created) that is renamed to ``target`` on success.

    For writers that insist on a file name (``model.save``, ``savefig``,
    ``save_weights``); the temporary name *ends with* ``target``'s whole name (e.g.
    ``.tmp-123-vgg19.weights.h5``), so suffix-based format detection still works.
    """
    return _atomic_path(Path(target))


def save_weights_atomic(model: Any, target: str | Path) -> None:
    """``model.save_weights(target)`` (a Keras ``.weights.h5``), written atomically."""
    with atomic_path(target) as tmp:   # keeps the ``.weights.h5`` suffix Keras insists on
        model.save_weights(tmp)


@contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def _plain(value: Any) -> Any:
    """Convert numpy scalars/arrays to plain Python; NaN/Inf become None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically; numpy values become plain numbers and NaN/Inf become null."""
    with atomic_file(path, "w", encoding="utf-8") as fh:
        json.dump(_plain(data), fh, indent=2, ensure_ascii=False, allow_nan=False)
        fh.write("\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))
