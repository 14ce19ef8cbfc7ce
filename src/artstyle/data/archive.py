"""Bringing a local dataset in: safe zip extraction and folder import.

:func:`safe_extract_zip`
    Zip extraction that refuses the whole archive when any entry would escape the
    target (absolute path, drive letter, ``..``, symlink), decodes legacy non-UTF-8
    names (Info-ZIP Unicode Path extra field, else UTF-8, else the zip default CP437),
    skips ``__MACOSX/`` and hidden/system files, unwraps a single wrapping top folder
    and builds the result under a temporary name before renaming it into place.
:func:`import_folder`
    The ``folder`` source: a local tree (hard-linked where possible, else copied) or a
    local zip.

Both deliveries give the same tree: every path component (class, artist and file
names) is Unicode-normalised to NFC, so an accented letter stored decomposed (NFD, as
macOS and some zip tools write it) comes out composed whether it arrives in a folder or
a zip. Every failure a user can cause (missing path, not a zip, damaged or unsafe
archive, no class folder, not enough disk space) raises an
:class:`artstyle.errors.ArtstyleError` with a one-line message.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import struct
import unicodedata
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from artstyle.errors import ArtstyleError
from artstyle.images import IMAGE_SUFFIXES, is_hidden_or_system, not_a_regular_file
from artstyle.io import atomic_dir

logger = logging.getLogger(__name__)

_MAX_UNWRAP = 8
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNICODE_PATH_EXTRA = 0x7075
_CHUNK = 1 << 20


class ArchiveError(ArtstyleError, ValueError):
    """A local dataset cannot be imported: not a zip, encrypted, no class folder, overlap."""


class UnsafeArchiveError(ArchiveError):
    """A zip archive holds entries that would be written outside the target folder."""


class ArchiveNotFoundError(ArtstyleError, FileNotFoundError):
    """The folder or zip to import does not exist."""


class BadArchiveError(ArtstyleError, zipfile.BadZipFile):
    """Not a zip archive, or a damaged one (a member fails its CRC or cannot be decompressed)."""


class NotEnoughSpaceError(ArtstyleError, OSError):
    """Not enough free disk space for the extracted archive."""


def nfc(name: str) -> str:
    """A path component in Unicode normal form C, as every imported name is stored."""
    return unicodedata.normalize("NFC", name)


# --------------------------------------------------------------------------- zip


def _unicode_path_extra(extra: bytes, raw_name: bytes) -> str | None:
    """Name from an Info-ZIP Unicode Path extra field (0x7075) that matches ``raw_name``."""
    i = 0
    while i + 4 <= len(extra):
        header_id, size = struct.unpack_from("<HH", extra, i)
        data = extra[i + 4:i + 4 + size]
        i += 4 + size
        if header_id == _UNICODE_PATH_EXTRA and len(data) >= 5 and data[0] == 1:
            if struct.unpack_from("<I", data, 1)[0] == zlib.crc32(raw_name):
                try:
                    return data[5:].decode("utf-8")
                except UnicodeDecodeError:
                    return None
    return None


def _entry_name(info: zipfile.ZipInfo, name_encoding: str | None) -> str:
    """Decoded, ``/``-separated, NFC-normalised entry name."""
    if info.flag_bits & _UTF8_FLAG:
        name = info.orig_filename
    else:
        # zipfile decoded the raw bytes as CP437, a lossless byte<->char mapping.
        raw = info.orig_filename.encode("cp437")
        name = _unicode_path_extra(info.extra, raw)
        if name is None:
            if name_encoding:
                name = raw.decode(name_encoding, errors="replace")
            else:
                try:  # many tools write UTF-8 without setting the flag
                    name = raw.decode("utf-8")
                except UnicodeDecodeError:
                    name = raw.decode("cp437")  # the zip specification's default
    return nfc(name.replace("\\", "/"))


def _unsafe_reason(info: zipfile.ZipInfo, name: str) -> str | None:
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' component"
    if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def _wrapper_prefix(files: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """Folders that only wrap the class folders (``Pandora_V1/`` in ``Pandora_V1/Baroque/x``).

    A level is unwrapped when it holds exactly one folder and no image file, and that
    folder holds sub-folders but no image file of its own (a class folder usually holds
    images or artist folders; a wrapper holds only class folders). A single-class
    archive whose class holds only artist folders cannot be told apart from a wrapper.
    """
    prefix: tuple[str, ...] = ()
    for _ in range(_MAX_UNWRAP):
        n = len(prefix)
        under = [p for p in files if p[:n] == prefix]
        dirs = {p[n] for p in under if len(p) > n + 1}
        if len(dirs) != 1 or any(len(p) == n + 1 and _is_image_name(p[n]) for p in under):
            break
        (top,) = dirs
        inner = [p for p in under if p[n] == top]
        if not any(len(p) > n + 2 for p in inner) or any(
                len(p) == n + 2 and _is_image_name(p[n + 1]) for p in inner):
            break
        prefix += (top,)
    return prefix


def _plan(files: Sequence[tuple[str, ...]], what: str) -> tuple[tuple[str, ...], list[int]]:
    """Wrapper prefix and the indices of ``files`` that lie inside a class folder."""
    prefix = _wrapper_prefix(files)
    if prefix:
        logger.info("%s: unwrapping top folder %r", what, "/".join(prefix))
    keep, loose = [], []
    for i, p in enumerate(files):
        (keep if p[:len(prefix)] == prefix and len(p) > len(prefix) + 1 else loose).append(i)
    if loose:
        logger.warning("%s: skipping %d file(s) outside any class folder, e.g. %s", what,
                       len(loose), ", ".join("/".join(files[i]) for i in loose[:3]))
    return prefix, keep


def safe_extract_zip(zip_path: str | os.PathLike, out_dir: str | os.PathLike, *,
                     name_encoding: str | None = None, progress: bool = False) -> Path:
    """Extract a dataset zip into ``out_dir`` (one folder per class), refusing unsafe entries.

    Every entry is checked before anything is written: an absolute name (``/x``,
    ``C:\\x``), a ``..`` component or a symbolic link (Unix mode ``S_IFLNK``) makes the
    whole archive refused (the *zip slip* class of attack). Names are taken as UTF-8
    when the archive says so (general-purpose flag bit 11); otherwise from an Info-ZIP
    Unicode Path extra field (0x7075) when present, else ``name_encoding``, else UTF-8
    when the bytes are valid UTF-8, else CP437 (the zip specification's default, used by
    Windows tools); ``\\`` counts as a separator and names are NFC-normalised.
    ``__MACOSX/``, dotfiles and OS clutter (:func:`artstyle.images.is_hidden_or_system`)
    at any depth are skipped, as are files outside any class folder. Folders that only
    wrap the class folders (``Pandora_V1/``) are unwrapped. The tree is built in a
    temporary folder beside ``out_dir`` and renamed over it (an older ``out_dir`` is
    replaced) only when complete; CRC-32 of every member is verified while reading.

    Parameters
    ----------
    zip_path : str or PathLike
        The archive.
    out_dir : str or PathLike
        Target folder; its parent is created.
    name_encoding : str or None, optional
        Codec for entry names stored without the UTF-8 flag (e.g. ``"cp852"`` for a
        Central-European Windows archive). Default: automatic, as described above.
    progress : bool, optional
        Show a tqdm bar over the entries. Default False.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ArchiveNotFoundError
        ``zip_path`` does not exist (a ``FileNotFoundError``).
    BadArchiveError
        Not a zip archive, or a member fails its CRC check or cannot be decompressed
        (a ``zipfile.BadZipFile``); nothing is left behind.
    UnsafeArchiveError
        Some entry would escape ``out_dir`` (the message lists them); nothing is written.
    ArchiveError
        Encrypted entries, or no file inside any folder (a ``ValueError``).
    NotEnoughSpaceError
        Not enough free disk space for the declared uncompressed size (an ``OSError``).
    OSError
        Other file-system errors.
    """
    zip_path, out_dir = Path(zip_path), Path(out_dir)
    if not zip_path.is_file():
        raise ArchiveNotFoundError(f"zip archive {zip_path} does not exist; check data.path")
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise BadArchiveError(f"{zip_path} is not a valid zip archive: {err}; download or "
                              "zip it again") from err
    with zf:
        members: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
        unsafe, skipped = [], 0
        for info in zf.infolist():
            name = _entry_name(info, name_encoding)
            reason = _unsafe_reason(info, name)
            if reason:
                unsafe.append(f"{name!r} ({reason})")
                continue
            parts = tuple(p for p in name.split("/") if p not in ("", "."))
            if name.endswith("/") or not parts:
                continue  # folders are created from their files
            if any(is_hidden_or_system(p) for p in parts):
                skipped += 1
                continue
            members.append((info, parts))
        if unsafe:
            raise UnsafeArchiveError(
                f"refusing to extract {zip_path}: {len(unsafe)} unsafe entr"
                f"{'y' if len(unsafe) == 1 else 'ies'} would be written outside the target: "
                f"{', '.join(unsafe[:5])}{' ...' if len(unsafe) > 5 else ''}; nothing was "
                "extracted: use an archive with relative paths and no links")
        if skipped:
            logger.info("%s: skipping %d hidden/system entr%s (__MACOSX, .DS_Store, ...)",
                        zip_path.name, skipped, "y" if skipped == 1 else "ies")
        encrypted = ["/".join(p) for i, p in members if i.flag_bits & _ENCRYPTED_FLAG]
        if encrypted:
            raise ArchiveError(f"{zip_path} holds encrypted entries (e.g. {encrypted[0]!r}); "
                               "extract it yourself and use data.source: folder")
        prefix, keep = _plan([p for _, p in members], zip_path.name)
        if not keep:
            raise ArchiveError(f"{zip_path} holds no file inside a class folder (expected "
                               "<Movement>/[<Artist>/]<image>)")
        targets: dict[tuple[str, ...], zipfile.ZipInfo] = {}
        folded: dict[tuple[str, ...], tuple[str, ...]] = {}
        for i in keep:
            info, parts = members[i]
            rel = parts[len(prefix):]
            if rel in targets:  # zip semantics: the later entry wins
                logger.warning("%s: %r appears more than once; keeping the last copy",
                               zip_path.name, "/".join(parts))
            targets[rel] = info
            key = tuple(p.casefold() for p in rel)
            if key in folded:  # would collide on case-insensitive file systems
                logger.warning("%s: %r and %r differ only in case", zip_path.name,
                               "/".join(folded[key]), "/".join(rel))
            folded[key] = rel
        need = sum(info.file_size for info in targets.values())
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(out_dir.parent).free
        if need > free:
            raise NotEnoughSpaceError(f"extracting {zip_path} needs {need / 2**30:.2f} GiB, "
                                      f"only {free / 2**30:.2f} GiB free under "
                                      f"{out_dir.parent}; free some disk space")
        with atomic_dir(out_dir) as tmp:
            root = os.path.realpath(tmp)
            for rel, info in tqdm(targets.items(), desc=f"extract {zip_path.name}",
                                  unit="file", disable=not progress, leave=False):
                target = os.path.realpath(os.path.join(tmp, *rel))
                if os.path.commonpath([root, target]) != root:  # defence in depth
                    raise UnsafeArchiveError(f"entry {'/'.join(rel)!r} escapes {out_dir}")
                os.makedirs(os.path.dirname(target), exist_ok=True)
                try:
                    with zf.open(info) as src, open(target, "xb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as err:
                    raise BadArchiveError(
                        f"{zip_path} is damaged: member {info.filename!r} cannot be read "
                        f"({err}); download or zip it again") from err
    logger.info("extracted %d file(s) from %s into %s", len(targets), zip_path, out_dir)
    return out_dir


# --------------------------------------------------------------------------- folders


def _walk_files(root: Path) -> tuple[list[tuple[str, ...]], int]:
    """Non-hidden files under ``root`` (following folder links once), and skipped count."""
    files: list[tuple[str, ...]] = []
    skipped = 0
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link loop or the same folder linked twice
            logger.warning("skipping %s: already visited as %s", dirpath, real)
            dirnames[:] = []
            continue
        seen.add(real)
        kept = sorted(d for d in dirnames if not is_hidden_or_system(d))
        skipped += len(dirnames) - len(kept)
        dirnames[:] = kept
        rel = Path(dirpath).relative_to(root).parts
        for name in sorted(filenames):
            if is_hidden_or_system(name):
                skipped += 1
            elif (problem := not_a_regular_file(os.path.join(dirpath, name))) is None:
                files.append((*rel, name))
            else:
                logger.warning("skipping %s: %s", os.path.join(dirpath, name), problem)
                skipped += 1
    return files, skipped


def import_folder(path: str | os.PathLike, out_dir: str | os.PathLike, *,
                  link: bool = True, name_encoding: str | None = None,
                  progress: bool = False) -> Path:
    """Bring a local dataset (folder or ``.zip``) into ``out_dir``, one folder per class.

    A folder is mirrored file by file: hard links when ``link`` and the file system
    allows it (same device, permitted by ``fs.protected_hardlinks``), else a copy
    (``shutil.copy2``). Hidden/system entries are skipped, folder symlinks are followed
    (each real folder once), a wrapping top folder is unwrapped and files outside any
    class folder are skipped, as in :func:`safe_extract_zip`, which handles a zip file.
    Every path component is NFC-normalised, as in a zip, so that a folder and a zip of
    the same tree give the same names; two source paths that differ only in their
    normalisation keep the later one, with a warning (as a zip's repeated entry).
    The result is built beside ``out_dir`` and renamed into place when complete.

    Note that hard-linked files share their content with the source: editing one in
    place edits the other (tools that rewrite files, DVC included, replace them instead).

    Parameters
    ----------
    path : str or PathLike
        A folder or a zip archive (recognised by content, any suffix).
    out_dir : str or PathLike
        Target folder (replaced when it exists).
    link : bool, optional
        Try hard links before copying. Default True.
    name_encoding : str or None, optional
        Passed to :func:`safe_extract_zip` for a zip.
    progress : bool, optional
        Show a tqdm bar over the files. Default False.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ArchiveNotFoundError
        ``path`` does not exist (a ``FileNotFoundError``).
    ArchiveError
        ``path`` is a file but not a zip, ``path`` and ``out_dir`` overlap, or it holds
        no file inside a class folder (a ``ValueError``).
    UnsafeArchiveError, BadArchiveError, NotEnoughSpaceError
        See :func:`safe_extract_zip`.
    """
    src, out_dir = Path(path).expanduser(), Path(out_dir)
    if not src.exists():
        raise ArchiveNotFoundError(f"data folder or zip {src} does not exist "
                                   f"(resolved: {src.resolve()}); check data.path")
    if not src.is_dir() and (problem := not_a_regular_file(src)):
        raise ArchiveError(f"data folder or zip {src} is {problem}; give a folder or a "
                           ".zip file (data.path)")
    if src.is_file():
        if not zipfile.is_zipfile(src):
            raise ArchiveError(f"{src} is a file but not a zip archive; give a folder laid "
                               "out as <Movement>/[<Artist>/]<image> or a .zip of one")
        return safe_extract_zip(src, out_dir, name_encoding=name_encoding, progress=progress)
    check_no_overlap(src, out_dir)
    files, skipped = _walk_files(src)
    if skipped:
        logger.info("%s: skipping %d hidden/system entr%s", src, skipped,
                    "y" if skipped == 1 else "ies")
    prefix, keep = _plan(files, str(src))
    if not keep:
        raise ArchiveError(f"{src} holds no file inside a class folder "
                           "(expected <Movement>/[<Artist>/]<image>)")
    targets: dict[tuple[str, ...], tuple[str, ...]] = {}
    for i in keep:
        parts = files[i]
        rel = tuple(nfc(p) for p in parts[len(prefix):])
        if rel in targets:  # names that differ only in Unicode normalisation
            logger.warning("%s: %r and %r are the same name once NFC-normalised; keeping "
                           "the last", src, "/".join(targets[rel]), "/".join(parts))
        targets[rel] = parts
    linked = copied = 0
    with atomic_dir(out_dir) as tmp:
        for rel, parts in tqdm(targets.items(), desc=f"import {src.name}", unit="file",
                               disable=not progress, leave=False):
            source = src.joinpath(*parts)
            target = tmp.joinpath(*rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            if link:
                try:
                    os.link(os.path.realpath(source), target)
                    linked += 1
                    continue
                except OSError:
                    link = linked > 0  # keep trying only if linking has worked before
            shutil.copy2(source, target)
            copied += 1
    logger.info("imported %d file(s) from %s into %s (%d hard-linked, %d copied)",
                linked + copied, src, out_dir, linked, copied)
    return out_dir


def check_no_overlap(src: Path, out_dir: Path) -> None:
    """Refuse to import ``src`` into ``out_dir`` when one contains the other.

    Raises
    ------
    ArchiveError
        The two paths are the same folder or nested (a ``ValueError``).
    """
    real_src, real_out = Path(os.path.realpath(src)), Path(os.path.realpath(out_dir))
    if real_src == real_out or real_src in real_out.parents or real_out in real_src.parents:
        raise ArchiveError(f"source {src} and target {out_dir} overlap; import from a folder "
                         "outside the target")
