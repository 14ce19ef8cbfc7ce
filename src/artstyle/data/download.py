"""Stage ``download``: fetch the raw paintings into ``data/raw/<Movement>/[<Artist>/]<file>``.

Sources (:data:`SOURCES`):

* ``pandora7k`` / ``pandora18k`` -- the Pandora art-movement datasets of the Image
  Processing and Analysis Laboratory (LAPI), University Politehnica of Bucharest
  (Florea et al.), downloaded as one zip each over plain HTTP;
* ``folder`` -- a local folder or ``.zip`` in the same layout;
* ``sample`` -- the synthetic set, made by :mod:`artstyle.data.sample`, not here.

The pieces, usable on their own:

:func:`select_classes`
    Pick class folders by name, case- and separator-insensitively.
:func:`fetch_raw`
    The single entry point the stage calls for every source except ``sample``:
    :func:`artstyle.http_download.download_file` then :func:`artstyle.data.archive.safe_extract_zip`
    for Pandora, :func:`artstyle.data.archive.import_folder` for ``folder``.
:func:`resolve_data_path`
    ``data.path`` made absolute against the repository root the user ran from, also
    inside the temporary copies of ``dvc exp run --temp`` and the experiment queue.

Class (and artist and file) names come out NFC-normalised from a folder and from a zip
alike (:mod:`artstyle.data.archive`). Every failure a user can cause raises an
:class:`artstyle.errors.ArtstyleError` with a one-line message that names no internal
temporary folder.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import shutil
import unicodedata
import urllib.parse
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from artstyle.data.archive import check_no_overlap, import_folder, safe_extract_zip
from artstyle.errors import ArtstyleError
from artstyle.hashing import normalise_sha256, sha256_file
from artstyle.http_download import ChecksumError, DownloadError, download_file
from artstyle.images import is_hidden_or_system
from artstyle.io import atomic_dir, scratch_dir

logger = logging.getLogger(__name__)

__all__ = [
    "EXPS_TMP_PARTS",
    "SOURCES",
    "DataPathError",
    "DataSourceError",
    "Source",
    "class_key",
    "fetch_raw",
    "repository_root",
    "resolve_data_path",
    "select_classes",
]


class DataSourceError(ArtstyleError, ValueError):
    """``data`` params that cannot be fetched: unknown source or class, conflicting options."""


class DataPathError(ArtstyleError, FileNotFoundError):
    """``data.path`` (or a raw folder) does not exist."""


@dataclass(frozen=True)
class Source:
    """One known data source.

    Attributes
    ----------
    name : str
        The value of ``data.source`` in ``params.yaml``.
    url : str or None
        Default download URL (``None`` for sources that are not downloaded).
    description : str
        One line for humans (logs, ``--help``, the README).
    sha256 : str or None
        Known SHA-256 of the archive at ``url``, when one has been recorded.
    """

    name: str
    url: str | None
    description: str
    sha256: str | None = None


#: Known sources, by ``data.source`` name. No checksum is recorded for the Pandora
#: archives yet: :func:`fetch_raw` logs the SHA-256 it saw so it can be pinned in
#: ``params.yaml`` (``data.sha256``).
SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source("sample", None,
               "synthetic paintings rendered locally by artstyle.data.sample (no download)"),
        Source("pandora7k", "http://imag.pub.ro/pandora/Download/Pandora_V1.zip",
               "Pandora 7K (LAPI, Univ. Politehnica of Bucharest): about 7,700 paintings in "
               "12 art-movement folders, some split by artist"),
        Source("pandora18k", "http://imag.pub.ro/pandora/Download/Pandora_18k.zip",
               "Pandora 18K (Florea et al., LAPI, Univ. Politehnica of Bucharest): about "
               "18,000 paintings in 18 art-movement folders (01_Byzantin_Iconography, ...) "
               "with artist sub-folders"),
        Source("folder", None,
               "a local folder or .zip laid out as <Movement>/[<Artist>/]<image>"),
    )
}

# --------------------------------------------------------------------------- classes


def class_key(name: str) -> str:
    """Comparison key of a class name: case, accents, separators and a numeric prefix ignored.

    ``"High renaissance"``, ``"high-renaissance"`` and ``"High_Renaissance"`` give
    ``"highrenaissance"``; ``"01_Byzantin_Iconography"`` gives ``"byzantiniconography"``.

    Parameters
    ----------
    name : str
        A class (folder) name.

    Returns
    -------
    str
        Lower-case letters and digits only (Unicode, accents stripped by NFKD).
    """
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    stripped = re.sub(r"^\d+[\s_.\-]+", "", text)
    return re.sub(r"[\W_]+", "", stripped or text)


def _class_folders(raw_dir: Path) -> list[str]:
    if not raw_dir.is_dir():
        raise DataPathError(f"raw data folder {raw_dir} does not exist")
    return sorted((p.name for p in raw_dir.iterdir()
                   if p.is_dir() and not is_hidden_or_system(p.name)), key=str.casefold)


def select_classes(raw_dir: str | os.PathLike, classes: Iterable[str] = (), *,
                   where: str | None = None) -> list[str]:
    """Resolve requested class names to the class folders of ``raw_dir``.

    Names match when their :func:`class_key` is equal, i.e. ignoring case, accents,
    separators (space, ``-``, ``_``, ``.``) and a leading number (``01_``). Names are
    text: a folder ``10`` is matched by ``"10"``.

    Parameters
    ----------
    raw_dir : str or PathLike
        A folder holding one sub-folder per class.
    classes : iterable of str, optional
        Requested names (``data.classes``); empty means all classes.
    where : str or None, optional
        How to name the dataset in error messages (the user's path or URL);
        default ``raw_dir``. :func:`fetch_raw` passes its source, never the temporary
        folder it extracted into.

    Returns
    -------
    list of str
        Actual folder names: all of them sorted case-insensitively when ``classes`` is
        empty, else one per distinct request in request order.

    Raises
    ------
    DataPathError
        ``raw_dir`` does not exist (a ``FileNotFoundError``).
    DataSourceError
        A requested name matches no folder (the message names it and lists the
        available classes, with close matches) or several folders (a ``ValueError``).
    """
    raw_dir = Path(raw_dir)
    where = where if where is not None else str(raw_dir)
    available = _class_folders(raw_dir)
    wanted = [str(c) for c in classes]
    if not wanted:
        return available
    by_key: dict[str, list[str]] = {}
    for name in available:
        by_key.setdefault(class_key(name), []).append(name)
    chosen: list[str] = []
    unknown: list[str] = []
    for req in wanted:
        matches = by_key.get(class_key(req), [])
        if not matches:
            unknown.append(req)
        elif len(matches) > 1:
            raise DataSourceError(
                f"data.classes entry {req!r} is ambiguous in {where}: it matches "
                f"{', '.join(map(repr, matches))}; rename one of these class folders")
        elif matches[0] not in chosen:
            chosen.append(matches[0])
    if unknown:
        hints = []
        for req in unknown:
            close = difflib.get_close_matches(class_key(req), list(by_key), n=1, cutoff=0.6)
            if close:
                hints.append(f"{req!r} -> did you mean {by_key[close[0]][0]!r}?")
        raise DataSourceError(
            f"unknown class(es) {', '.join(map(repr, unknown))} in data.classes (not a class "
            f"folder of {where}); available: {', '.join(map(repr, available))}"
            + (f" ({'; '.join(hints)})" if hints else "")
            + "; fix data.classes, or [] for all")
    return chosen


# --------------------------------------------------------------------------- data.path

#: Where DVC runs ``dvc exp run --temp`` and queued experiments: a copy of the
#: repository at ``<root>/.dvc/tmp/exps/<name>/``.
EXPS_TMP_PARTS = (".dvc", "tmp", "exps")


def repository_root(cwd: str | os.PathLike | None = None) -> Path:
    """The repository root the user ran from, seen from the stage's working directory.

    Stages run from the repository root, or from DVC's temporary copy of it under
    ``<root>/.dvc/tmp/exps/`` (``dvc exp run --temp``, the experiment queue); there the
    root is the part of the path before ``/.dvc/tmp/exps/``.

    Parameters
    ----------
    cwd : str or PathLike or None, optional
        The stage's working directory; default :func:`os.getcwd`.

    Returns
    -------
    Path
        Absolute.
    """
    cwd = Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))
    parts = cwd.parts
    n = len(EXPS_TMP_PARTS)
    for i in range(1, len(parts) - n + 1):
        if parts[i:i + n] == EXPS_TMP_PARTS:
            return Path(*parts[:i])
    return cwd


def resolve_data_path(path: str | os.PathLike, cwd: str | os.PathLike | None = None) -> Path:
    """``data.path`` as an absolute path: a relative one is taken from the repository root.

    A relative path means relative to the repository root the user ran from
    (:func:`repository_root`), also when the stage runs in a temporary experiment copy
    under ``<root>/.dvc/tmp/exps/``, where ``../shared/...`` would otherwise point into
    ``.dvc/tmp``. ``~`` is expanded; an absolute path is kept as it is.

    Parameters
    ----------
    path : str or PathLike
        ``data.path`` as written in ``params.yaml`` (or ``-S data.path=...``).
    cwd : str or PathLike or None, optional
        The stage's working directory; default :func:`os.getcwd`.

    Returns
    -------
    Path
        The absolute, normalised path, which exists.

    Raises
    ------
    DataPathError
        Nothing exists there; the message names the root it was resolved against and
        suggests an absolute path.
    """
    given = Path(path).expanduser()
    if given.is_absolute():
        resolved, root = Path(os.path.normpath(given)), None
    else:
        root = repository_root(cwd)
        resolved = Path(os.path.normpath(root / given))
    if not resolved.exists():
        against = f" (relative to the repository root {root})" if root is not None else ""
        raise DataPathError(f"data.path {os.fspath(path)!r} does not exist: looked for "
                            f"{resolved}{against}; give an absolute path, e.g. "
                            f"-S data.path=/full/path/to/{given.name or 'dataset'}")
    return resolved


# --------------------------------------------------------------------------- entry point


def _count_files(class_dir: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(class_dir))


def fetch_raw(source: str, out_dir: str | os.PathLike, *, url: str | None = None,
              path: str | os.PathLike | None = None, sha256: str | None = None,
              classes: Iterable[str] = (), cache_dir: str | os.PathLike | None = None,
              retries: int = 3, timeout: float = 60, progress: bool = True,
              backoff: float = 1.0) -> dict:
    """Fetch a non-synthetic source into ``out_dir`` (``<Movement>/[<Artist>/]<file>``).

    ``pandora7k``/``pandora18k``: download the zip (``url`` overrides the default of
    :data:`SOURCES`; ``path`` may name an already downloaded copy instead) with
    :func:`download_file`, then :func:`safe_extract_zip`. ``folder``: :func:`import_folder`
    on ``path``. Then, when ``classes`` is given, only the folders chosen by
    :func:`select_classes` are kept. Everything is built in a temporary folder beside
    ``out_dir`` and renamed over it at the end, so ``out_dir`` is either the old tree
    or the complete new one.

    Parameters
    ----------
    source : {"pandora7k", "pandora18k", "folder"}
        Which source (``sample`` is made by :mod:`artstyle.data.sample`).
    out_dir : str or PathLike
        Target folder, e.g. ``data/raw``; replaced when it exists.
    url : str or None, optional
        Download URL for the Pandora sources.
    path : str or PathLike or None, optional
        Folder or zip for ``folder`` (required); a local copy of the archive for the
        Pandora sources.
    sha256 : str or None, optional
        Pin for the archive (downloaded or local zip); not allowed for a folder.
    classes : iterable of str, optional
        Class subset (see :func:`select_classes`); empty keeps all.
    cache_dir : str or PathLike or None, optional
        Keep the downloaded archive here (``<cache_dir>/<url file name>``) and reuse it
        on later calls (after checking the pin, when given); an interrupted download
        resumes from its ``.part`` file. ``None``: download into the temporary folder and
        delete the archive afterwards.
    retries, timeout, progress, backoff
        Passed to :func:`download_file` (``progress`` also to the extraction).

    Returns
    -------
    dict
        ``{"source", "origin" (URL or path), "sha256" (of the archive, None for a
        folder), "classes" (sorted folder names), "counts" ({class: n_files}),
        "n_classes", "n_files"}``.

    Raises
    ------
    DataSourceError
        Unknown source, ``sample``, missing/conflicting ``url``/``path``/``sha256``,
        unknown class names (a ``ValueError``).
    DataPathError
        ``path`` does not exist (a ``FileNotFoundError``).
    ArchiveError, ArchiveNotFoundError, BadArchiveError, UnsafeArchiveError
        From :mod:`artstyle.data.archive` (not a zip, no class folder, damaged or
        unsafe archive).
    DownloadError, ChecksumError
        From the download.

    Every one of these is an :class:`artstyle.errors.ArtstyleError`; ``out_dir`` is
    then left untouched and no partial file stays behind (except a resumable ``.part``
    in ``cache_dir`` after an interrupt).
    """
    if source == "sample":
        raise DataSourceError("source 'sample' is generated by artstyle.data.sample, "
                              "not fetched; call generate_sample instead")
    if source not in SOURCES:
        raise DataSourceError(f"unknown data source {source!r}; known: {', '.join(SOURCES)}")
    out_dir = Path(out_dir)
    classes = [str(c) for c in classes]
    archive: Path | None = None
    digest: str | None = None
    with scratch_dir(out_dir.with_name(f"{out_dir.name}.fetch")) as work:
        tree = Path(work) / "tree"
        if source == "folder":
            if path is None:
                raise DataSourceError("source 'folder' needs path= (a folder or a .zip); "
                                      "set data.path")
            if url is not None:
                raise DataSourceError("source 'folder' takes path=, not url=; set data.url "
                                      "to null")
            origin = str(path)
            src = Path(path).expanduser()
            if not src.exists():
                raise DataPathError(f"data folder or zip {src} does not exist (resolved: "
                                    f"{src.resolve()}); check data.path")
            if src.is_dir():
                check_no_overlap(src, out_dir)
            if sha256 and not src.is_file():
                raise DataSourceError("sha256= can only pin a zip archive, not a folder; set "
                                      "data.sha256 to null")
            if src.is_file():
                digest = sha256_file(src)
                if sha256 and digest != normalise_sha256(sha256):
                    raise ChecksumError(str(src), normalise_sha256(sha256), digest,
                                        deleted=False)
            import_folder(src, tree, progress=progress)
        else:
            if path is not None and url is not None:
                raise DataSourceError("give either url= (download) or path= (local copy), "
                                      "not both: set data.url or data.path to null")
            if path is not None:
                archive = Path(path).expanduser()
                origin = str(archive)
                if not archive.is_file():
                    raise DataPathError(f"archive {archive} does not exist; check data.path")
                digest = sha256_file(archive)
                if sha256 and digest != normalise_sha256(sha256):
                    raise ChecksumError(str(archive), normalise_sha256(sha256), digest,
                                        deleted=False)
            else:
                origin = url or SOURCES[source].url
                sha256 = sha256 or (SOURCES[source].sha256 if url is None else None)
                archive = _fetch_archive(origin, Path(cache_dir) if cache_dir else Path(work),
                                         sha256=sha256, retries=retries, timeout=timeout,
                                         progress=progress, backoff=backoff)
                # download_file has verified a pin; hash only an unpinned archive.
                digest = normalise_sha256(sha256) if sha256 else sha256_file(archive)
            safe_extract_zip(archive, tree, progress=progress)
        chosen = select_classes(tree, classes, where=origin)
        for name in _class_folders(tree):
            if name not in chosen:
                shutil.rmtree(tree / name)
        counts = {name: _count_files(tree / name) for name in sorted(chosen, key=str.casefold)}
        empty = [c for c, n in counts.items() if n == 0]
        if empty:
            logger.warning("class folder(s) without files: %s", ", ".join(empty))
        if len(counts) - len(empty) < 2:
            logger.warning("%s gives %d class(es) with files; the prepare stage needs at "
                           "least 2", origin, len(counts) - len(empty))
        keys: dict[str, str] = {}
        for name in counts:
            if class_key(name) in keys:
                logger.warning("class folders %r and %r look like the same movement",
                               keys[class_key(name)], name)
            keys[class_key(name)] = name
        with atomic_dir(out_dir) as tmp:  # swap the finished tree in, old tree removed
            tmp.rmdir()
            tree.rename(tmp)
    summary = {"source": source, "origin": origin, "sha256": digest,
               "classes": list(counts), "counts": counts, "n_classes": len(counts),
               "n_files": sum(counts.values())}
    logger.info("%s: %d classes, %d files in %s%s", source, summary["n_classes"],
                summary["n_files"], out_dir,
                f" (archive sha256 {digest}; pin it as data.sha256)" if digest and not sha256
                else "")
    return summary


def _fetch_archive(url: str, folder: Path, *, sha256: str | None, retries: int,
                   timeout: float, progress: bool, backoff: float) -> Path:
    """Download ``url`` into ``folder`` unless a valid copy is already there."""
    name = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name or "archive.zip"
    dest = folder / name
    if dest.is_file() and not sha256:
        if zipfile.is_zipfile(dest):
            logger.info("using cached %s (no sha256 pin to check)", dest)
            return dest
        logger.warning("cached %s is not a zip archive; downloading again", dest)
    download_file(url, dest, sha256=sha256, retries=retries, timeout=timeout,
                  progress=progress, backoff=backoff)
    if not zipfile.is_zipfile(dest):
        with open(dest, "rb") as fh:
            head = fh.read(64)
        dest.unlink()
        raise DownloadError(f"{url} did not return a zip archive (starts with {head!r}); "
                            "the server may have sent an error page")
    return dest
