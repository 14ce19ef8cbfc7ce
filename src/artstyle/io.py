"""Atomic writes (an interrupted stage never leaves half an output that looks complete),
JSON, and CSV files that spreadsheets open safely."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from artstyle.errors import ArtstyleError

logger = logging.getLogger(__name__)

#: Error numbers that mean "the disk refused the write" (full, over quota, file too large,
#: read-only): inside an atomic write they become :class:`WriteFailed`.
WRITE_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None),
                                     errno.EFBIG, errno.EROFS) if e is not None)


class WriteFailed(ArtstyleError, OSError):
    """An output could not be written; the message names it and what was kept.

    Parameters
    ----------
    target : str or Path
        The file or folder that was being written.
    cause : OSError
        The operating system's error (``errno``, ``strerror`` are copied).
    kept : str
        What is on disk now, in words (e.g. "the previous x.png is kept unchanged").

    Attributes
    ----------
    target, kept, reason
        ``reason`` is the operating system's words ("No space left on device").
    """

    def __init__(self, target: str | Path, cause: OSError | str, kept: str) -> None:
        reason = cause if isinstance(cause, str) else (cause.strerror or str(cause))
        super().__init__(getattr(cause, "errno", None), reason)
        self.target, self.reason, self.kept = Path(target), reason, kept
        self.filename = str(target)

    def __str__(self) -> str:
        return f"cannot write {self.target}: {self.reason}; {self.kept}"

    def __reduce__(self):
        return (type(self), (self.target, self.reason, self.kept))

    def also_kept(self, more: str) -> WriteFailed:
        """The same failure, its message adding ``more`` (e.g. an output written before)."""
        err = WriteFailed(self.target, self.reason, f"{self.kept}; {more}")
        err.errno = self.errno
        return err


def _left_as_it_was(target: Path, existed: bool) -> str:
    return (f"the previous {target.name} is kept unchanged" if existed
            else f"no {target.name} was created")


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Build a directory under a temporary name beside ``target``, then swap it in.

    Raises
    ------
    WriteFailed
        The disk refused a write (full, over quota, read-only: :data:`WRITE_ERRNOS`)
        while building the folder, or the final rename failed; the message names
        ``target`` and says that its previous version is kept (or that none was
        created). Other errors of the ``with`` block pass through unchanged.

    Yields
    ------
    Path
        An empty temporary directory on the same file system as ``target``
        (``.<name>.<pid>-<hex>.tmp``). When the ``with`` block ends normally it replaces
        ``target`` (an older ``target`` is removed); when the block raises, it is
        deleted and ``target`` is untouched. A process killed outright (``kill -9``, a
        power cut) cannot clean up: the next atomic write into the same folder removes
        what dead processes left there (:func:`remove_stale_temporaries`).
    """
    target = Path(target)
    existed = target.exists()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target.parent)
        # mkdir (not tempfile.mkdtemp, which makes it 0700): the usual umask permissions
        tmp = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
        tmp.mkdir()
    except OSError as exc:
        if isinstance(exc, ArtstyleError) or exc.errno not in WRITE_ERRNOS:
            raise
        raise WriteFailed(target, exc, _left_as_it_was(target, existed)) from exc
    try:
        yield tmp
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, ArtstyleError) \
                and exc.errno in WRITE_ERRNOS:
            where = f" (writing {exc.filename})" if exc.filename else ""
            raise WriteFailed(target, f"{exc.strerror or exc}{where}",
                              _left_as_it_was(target, existed)) from exc
        raise
    old = None
    try:
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
            shutil.rmtree(old, ignore_errors=True)
            target.rename(old)
        tmp.rename(target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not target.exists():
            old.rename(target)   # put the previous version back
        raise WriteFailed(target, exc, _left_as_it_was(target, existed)) from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def scratch_dir(beside: str | Path) -> Iterator[Path]:
    """A scratch folder beside ``beside`` (same file system), removed when the block ends.

    Named as :func:`atomic_dir`'s temporary folders (``.<name>.<pid>-<hex>.tmp``), so
    that what a killed process leaves is removed by the next atomic write into the same
    folder (:func:`remove_stale_temporaries`).

    Yields
    ------
    Path
        An empty folder; deleted with its content at the end, whatever happens.
    """
    beside = Path(beside)
    beside.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(beside.parent)
    tmp = beside.with_name(f".{beside.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    tmp.mkdir()
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(target: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[Any]:
    """Open a temporary file beside ``target`` and rename it into place on success.

    The file is created by ``open`` (so it gets the usual umask permissions, e.g. 0644,
    unlike ``tempfile.mkstemp``'s 0600); on any error the temporary file is removed and
    ``target`` is left as it was.

    Raises
    ------
    WriteFailed
        The disk refused the write (:data:`WRITE_ERRNOS`) or the final rename failed:
        one line naming ``target`` and saying that its previous version is kept (or
        that none was created). The same holds for :func:`atomic_path`,
        :func:`write_json`, :func:`write_csv` and every writer built on them
        (:func:`artstyle.images.save_image`, :func:`artstyle.figures.save_figure`).
    """
    with _atomic_path(Path(target)) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def atomic_path(target: str | Path) -> contextmanager[Path]:
    """Yield a temporary *path* (not yet created) that is renamed to ``target`` on success.

    For writers that insist on a file name (``model.save``, ``savefig``,
    ``save_weights``); the temporary name *ends with* ``target``'s whole name (e.g.
    ``.tmp-123-0f3a9c1e-vgg19.weights.h5``), so suffix-based format detection still works.
    """
    return _atomic_path(Path(target))


def save_weights_atomic(model: Any, target: str | Path) -> None:
    """``model.save_weights(target)`` (a Keras ``.weights.h5``), written atomically."""
    with atomic_path(target) as tmp:   # keeps the ``.weights.h5`` suffix Keras insists on
        model.save_weights(tmp)


#: The temporary names of this module, each with the id of the process that made it:
#: ``.<name>.<pid>-<hex>.tmp`` and ``.<name>.old-<pid>-<hex>`` (:func:`atomic_dir`),
#: ``.tmp-<pid>-<hex>-<name>`` (:func:`atomic_file`, :func:`atomic_path`); ``<hex>`` is 8
#: random hexadecimal digits.
_TEMPORARY = re.compile(r"\..+\.(?P<a>\d+)-[0-9a-f]{8}\.tmp|\..+\.old-(?P<b>\d+)-[0-9a-f]{8}"
                        r"|\.tmp-(?P<c>\d+)-[0-9a-f]{8}-.+")


def _alive(pid: int) -> bool:
    """Whether a process with this id runs (on this machine); unsure counts as alive."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporary files and folders that dead processes left in ``folder``.

    An atomic write of this module works under a hidden temporary name beside its target
    (``.<name>.<pid>-<hex>.tmp``, ``.<name>.old-<pid>-<hex>``, ``.tmp-<pid>-<hex>-<name>``,
    with the id of the writing process) and removes it when it ends, even on an error; only a
    process killed outright (``SIGKILL``, out of memory, a power cut) leaves one behind.
    Every atomic write calls this first, so such leftovers live until the next write
    into the same folder (in practice: the next run of the stage). Entries of processes
    still running (or whose state cannot be told) are kept, so concurrent writers are
    safe. Only this machine's process ids are checked: do not share an output folder
    between machines while they write.

    Parameters
    ----------
    folder : str or Path
        The folder to tidy (not recursive). A missing folder is fine.

    Returns
    -------
    list of Path
        What was removed (logged at INFO).
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TEMPORARY.fullmatch(name)
        if not match:
            continue
        pid = int(next(g for g in match.groups() if g is not None))
        if _alive(pid):
            continue
        path = Path(folder) / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        removed.append(path)
        logger.info("removed %s, left by process %d that was killed while writing", path, pid)
    return removed


def temporary_sibling(target: str | Path) -> Path:
    """A fresh hidden name beside ``target`` for work that replaces it when complete.

    ``.tmp-<pid>-<hex>-<name>``: it ends with ``target``'s whole name (suffix-based
    format detection still works) and carries this process's id, so that
    :func:`remove_stale_temporaries` (run here first, on ``target``'s folder) can remove
    it should this process be killed before it cleans up. Nothing is created.
    """
    target = Path(target)
    remove_stale_temporaries(target.parent)
    return target.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}-{target.name}")


@contextmanager
def _atomic_path(target: Path) -> Iterator[Path]:
    existed = target.exists()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        raise WriteFailed(target, exc, _left_as_it_was(target, existed)) from exc
    tmp = temporary_sibling(target)
    replacing = False
    try:
        yield tmp
        replacing = True
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, ArtstyleError) \
                and (replacing or exc.errno in WRITE_ERRNOS):
            raise WriteFailed(target, exc, _left_as_it_was(target, existed)) from exc
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


# --------------------------------------------------------------------------- CSV

#: First characters that make a spreadsheet (Excel, LibreOffice Calc, Google Sheets)
#: read a cell as a formula or a command (OWASP, "CSV Injection"), and the quote itself,
#: so that :func:`csv_safe` can be undone (:func:`csv_unsafe`).
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def csv_safe(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text instead of running it.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    (OWASP's CSV-injection rules), or with ``'``, gets a leading ``'``: the spreadsheet
    shows the text as it was (the quote is its "text" marker) and never evaluates it.
    Text that is a plain number (``-0.5``, ``+3``, ``1e-4``) and values that are not text
    are returned unchanged; :func:`csv_unsafe` gives back the original text.

    Parameters
    ----------
    value : Any
        One cell.

    Returns
    -------
    Any
        ``"'" + value`` for such text, else ``value``.

    Examples
    --------
    >>> csv_safe("=1+1"), csv_safe("-0.5"), csv_safe(-0.5)
    ("'=1+1", '-0.5', -0.5)
    """
    if isinstance(value, str) and value.startswith(CSV_FORMULA_STARTS) \
            and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_unsafe(value: Any) -> Any:
    """The text :func:`csv_safe` was given (the leading ``'`` removed)."""
    if isinstance(value, str) and value.startswith("'") and csv_safe(value[1:]) == value:
        return value[1:]
    return value


def csv_safe_frame(frame: Any) -> Any:
    """A copy of a pandas DataFrame with :func:`csv_safe` applied to every text cell, the
    column names and the index (numbers are untouched)."""
    from pandas.api.types import is_numeric_dtype

    out = frame.copy()
    for column in out.columns:
        if not is_numeric_dtype(out[column]):
            out[column] = out[column].map(csv_safe)
    out.columns = [csv_safe(c) for c in out.columns]
    out.index = out.index.map(csv_safe)
    if out.index.name is not None:
        out.index.name = csv_safe(out.index.name)
    return out


def write_csv(frame: Any, path: str | Path, **kwargs: Any) -> None:
    """``frame.to_csv(path, **kwargs)`` written atomically, every text cell :func:`csv_safe`.

    Every CSV file the product writes goes through here (or :class:`CsvWriter`), so that
    opening it in a spreadsheet never runs a formula hidden in a file or class name.
    :func:`read_csv` reads it back with the original text.
    """
    with atomic_file(path, "w", encoding="utf-8", newline="") as fh:
        csv_safe_frame(frame).to_csv(fh, **kwargs)


def read_csv(path: str | Path, **kwargs: Any) -> Any:
    """``pandas.read_csv`` of a :func:`write_csv` file, text cells as they were written."""
    import pandas as pd
    from pandas.api.types import is_numeric_dtype

    frame = pd.read_csv(path, **kwargs)
    for column in frame.columns:
        if not is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(csv_unsafe)
    frame.columns = [csv_unsafe(c) for c in frame.columns]
    return frame


class CsvWriter:
    """:func:`csv.writer` whose rows go through :func:`csv_safe` (e.g. ``classify --csv``).

    Parameters
    ----------
    fh : text file
        Where the rows go (``sys.stdout``, or a file opened with ``newline=""``).
    """

    def __init__(self, fh: Any) -> None:
        import csv

        self._writer = csv.writer(fh)

    def writerow(self, row: Any) -> None:
        """Write one row, each cell :func:`csv_safe`."""
        self._writer.writerow([csv_safe(cell) for cell in row])
