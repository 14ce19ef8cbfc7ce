"""Stage ``download``: fetch the raw paintings into ``data/raw/<Movement>/[<Artist>/]<file>``.

Sources (:data:`SOURCES`):

* ``pandora7k`` / ``pandora18k`` -- the Pandora art-movement datasets of the Image
  Processing and Analysis Laboratory (LAPI), University Politehnica of Bucharest
  (Florea et al.), downloaded as one zip each over plain HTTP;
* ``folder`` -- a local folder or ``.zip`` in the same layout;
* ``sample`` -- the synthetic set, made by :mod:`artstyle.data.sample`, not here.

The pieces, usable on their own:

:func:`download_file`
    Streaming HTTP(S) download with a tqdm progress bar, retries with exponential
    backoff, resume of an interrupted transfer through an HTTP ``Range`` request into
    ``<dest>.part`` (RFC 9110 sec. 14; ``If-Range`` with the first response's
    ``ETag``/``Last-Modified`` guards against a file that changed on the server),
    detection of truncated transfers (fewer bytes than ``Content-Length`` or than the
    ``Content-Range`` total is never accepted) and an optional SHA-256 pin. The file is
    renamed to ``dest`` only after everything checked out.
:func:`safe_extract_zip`
    Zip extraction that refuses the whole archive when any entry would escape the
    target (absolute path, drive letter, ``..``, symlink), decodes legacy non-UTF-8
    names (Info-ZIP Unicode Path extra field, else UTF-8, else the zip default CP437),
    skips ``__MACOSX/`` and hidden/system files, unwraps a single wrapping top folder
    and builds the result under a temporary name before renaming it into place.
:func:`import_folder`
    The ``folder`` source: a local tree (hard-linked where possible, else copied) or a
    local zip.
:func:`select_classes`
    Pick class folders by name, case- and separator-insensitively.
:func:`fetch_raw`
    The single entry point the stage calls for every source except ``sample``.
"""

from __future__ import annotations

import difflib
import http.client
import json
import logging
import os
import re
import shutil
import stat
import struct
import tempfile
import time
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from artstyle import __version__
from artstyle.images import content_hash, is_hidden_or_system
from artstyle.io import atomic_dir

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_SUFFIXES",
    "SOURCES",
    "ChecksumError",
    "DownloadError",
    "Source",
    "UnsafeArchiveError",
    "class_key",
    "download_file",
    "fetch_raw",
    "import_folder",
    "safe_extract_zip",
    "select_classes",
]


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

#: File-name suffixes taken as images by the wrapper-folder heuristic of
#: :func:`safe_extract_zip` (the ``prepare`` stage detects formats from the content).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".gif", ".tif",
                            ".tiff", ".webp", ".ppm", ".avif"})

_CHUNK = 1 << 20
_RETRY_HTTP_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})
_MAX_UNWRAP = 8
_UTF8_FLAG = 0x800
_ENCRYPTED_FLAG = 0x1
_UNICODE_PATH_EXTRA = 0x7075


class DownloadError(RuntimeError):
    """A download failed for good (HTTP error, retries exhausted, bad server reply)."""


class ChecksumError(DownloadError):
    """A file's SHA-256 differs from the pinned one.

    Attributes
    ----------
    path : str
        What was checked (a URL or a local path).
    expected, actual : str
        Lower-case hex digests.
    """

    def __init__(self, path: str, expected: str, actual: str, *, deleted: bool = True) -> None:
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(f"SHA-256 mismatch for {path}: expected {expected}, got {actual}"
                         f"{' (the download was deleted)' if deleted else ''}. If the source "
                         "really changed, update the pin (data.sha256) to the new value.")


class UnsafeArchiveError(ValueError):
    """A zip archive holds entries that would be written outside the target folder."""


class _Truncated(OSError):
    """The server sent fewer bytes than announced (retryable)."""


_RETRYABLE = (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException,
              _Truncated)


# --------------------------------------------------------------------------- download


def _normalise_sha256(value: str) -> str:
    digest = value.strip().lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"sha256 pin must be 64 hex digits, got {value!r}")
    return digest


def download_file(url: str, dest: str | os.PathLike, *, sha256: str | None = None,
                  retries: int = 3, timeout: float = 60, progress: bool = True,
                  backoff: float = 1.0, keep_partial: bool = False) -> Path:
    """Download ``url`` to ``dest`` with resume, retries, truncation check and SHA-256 pin.

    Bytes go to ``<dest>.part`` (plus a small ``<dest>.part.json`` holding the URL, the
    total size and the server's ``ETag``/``Last-Modified``). A later attempt, or a later
    call after an interruption, asks for the rest with ``Range: bytes=<size>-`` (and
    ``If-Range`` when a validator is known); a ``206 Partial Content`` reply is
    appended, a ``200`` reply (server without range support, or a changed file) restarts
    from zero, a ``416`` reply means the part is already complete or is discarded. A
    transfer that ends before ``Content-Length`` (or the ``Content-Range`` total) bytes
    is never accepted: it is retried (resuming). Only when the size, and the SHA-256
    when pinned, check out is the part renamed to ``dest`` (same folder, atomic).

    Parameters
    ----------
    url : str
        ``http://`` or ``https://`` URL (redirects are followed).
    dest : str or PathLike
        Final file path; its folder is created.
    sha256 : str or None, optional
        Expected SHA-256 (64 hex digits, optional ``sha256:`` prefix). An existing
        ``dest`` with this hash is reused without any network access.
    retries : int, optional
        Retries after the first attempt for transient failures (connection errors,
        timeouts, truncated transfers, HTTP 408/425/429/500/502/503/504). Default 3.
    timeout : float, optional
        Socket timeout in seconds for connecting and for each read. Default 60.
    progress : bool, optional
        Show a tqdm progress bar (bytes) on stderr. Default True.
    backoff : float, optional
        Wait before retry ``k`` (1-based) is ``backoff * 2**(k-1)`` seconds. Default 1.
    keep_partial : bool, optional
        Keep ``<dest>.part`` for a later resume when the download fails for good.
        Default False: a failed call leaves no file behind. A ``KeyboardInterrupt``
        always keeps it.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    ValueError
        Unsupported URL scheme, malformed ``sha256`` or negative ``retries``.
    DownloadError
        Non-retryable HTTP status (e.g. 404), or still failing after ``retries``.
    ChecksumError
        The downloaded bytes do not match ``sha256`` (message names both hashes); the
        part file is deleted.
    OSError
        Local file-system errors (disk full, permissions).
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"only http:// and https:// URLs can be downloaded, got {url!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    expected = _normalise_sha256(sha256) if sha256 else None
    dest = Path(dest)
    if expected and dest.is_file():
        if content_hash(dest) == expected:
            logger.info("%s already present with the pinned SHA-256; not downloading", dest)
            return dest
        logger.warning("%s exists but does not match the pinned SHA-256; downloading again",
                       dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    meta = dest.with_name(dest.name + ".part.json")
    try:
        last: BaseException | None = None
        for attempt in range(retries + 1):
            if attempt:
                wait = backoff * 2 ** (attempt - 1)
                logger.warning("download of %s failed (%s); retry %d/%d in %.2g s",
                               url, last, attempt, retries, wait)
                time.sleep(wait)
            try:
                _attempt(url, part, meta, timeout, progress)
                break
            except urllib.error.HTTPError as err:
                err.close()  # release the connection
                if err.code not in _RETRY_HTTP_CODES:
                    raise DownloadError(f"HTTP {err.code} {err.reason} for {url}") from err
                last = err
            except _RETRYABLE as err:
                last = err
        else:
            raise DownloadError(f"download of {url} failed after {retries + 1} attempt(s): "
                                f"{last}") from last
        if expected:
            actual = content_hash(part)
            if actual != expected:
                raise ChecksumError(url, expected, actual)
        os.replace(part, dest)
        meta.unlink(missing_ok=True)
        logger.info("downloaded %s -> %s (%d bytes)", url, dest, dest.stat().st_size)
        return dest
    except KeyboardInterrupt:
        if part.exists():
            logger.warning("interrupted; kept %s to resume later", part)
        raise
    except BaseException as err:
        if keep_partial and part.exists() and not isinstance(err, ChecksumError):
            logger.warning("kept %s to resume later", part)
        else:
            part.unlink(missing_ok=True)
            meta.unlink(missing_ok=True)
        raise


def _read_meta(meta: Path) -> dict:
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes <start>-<end>/<total>`` or ``bytes */<total>`` -> (start, total)."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def _discard(part: Path, meta: Path) -> None:
    part.unlink(missing_ok=True)
    meta.unlink(missing_ok=True)


def _attempt(url: str, part: Path, meta: Path, timeout: float, progress: bool) -> None:
    """One request: resume or start ``part``; return only when it is complete."""
    offset = part.stat().st_size if part.is_file() else 0
    info = _read_meta(meta) if offset else {}
    if info.get("url", url) != url or (info.get("total") is not None and offset > info["total"]):
        logger.info("discarding %s (other URL or larger than the file)", part)
        _discard(part, meta)
        offset, info = 0, {}
    headers = {"User-Agent": f"artstyle/{__version__} (Python urllib)",
               "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        validator = info.get("etag") or info.get("last_modified")
        if validator:
            headers["If-Range"] = validator
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                      timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            _, total = _content_range(err.headers.get("Content-Range"))
            err.close()
            if total is not None and total == offset:
                logger.info("%s is already complete (%d bytes)", part, offset)
                return
            logger.info("server refused range %d- for %s; restarting", offset, part)
            _discard(part, meta)
            return _attempt(url, part, meta, timeout, progress)
        raise
    with resp:
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.strip().isdigit() else None
        if resp.status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            if start is None or start > offset:
                _discard(part, meta)
                raise _Truncated(f"unusable Content-Range {resp.headers.get('Content-Range')!r}"
                                 f" for a request from byte {offset}; restarting")
            total = total if total is not None else info.get("total")
        elif resp.status == 200:
            if offset:
                logger.info("server sent the whole file instead of bytes %d-; restarting",
                            offset)
            start, total = 0, length
            meta.write_text(json.dumps({
                "url": url, "total": total, "etag": resp.headers.get("ETag"),
                "last_modified": resp.headers.get("Last-Modified")}), encoding="utf-8")
        else:
            raise DownloadError(f"unexpected HTTP status {resp.status} for {url}")
        received = 0
        with open(part, "r+b" if start else "wb") as fh, \
                tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=part.name.removesuffix(".part"), disable=not progress,
                     leave=False) as bar:
            fh.truncate(start)
            fh.seek(start)
            try:
                while chunk := resp.read(_CHUNK):
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            finally:
                fh.flush()
                os.fsync(fh.fileno())
    size = part.stat().st_size
    if length is not None and received < length:
        raise _Truncated(f"connection closed after {received} of {length} bytes "
                         f"(file now {size} bytes)")
    if total is not None and size != total:
        raise _Truncated(f"have {size} of {total} bytes")


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
    return unicodedata.normalize("NFC", name.replace("\\", "/"))


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
    FileNotFoundError
        ``zip_path`` does not exist.
    zipfile.BadZipFile
        Not a zip archive, or a member fails its CRC check.
    UnsafeArchiveError
        Some entry would escape ``out_dir`` (the message lists them); nothing is written.
    ValueError
        Encrypted entries, or no file inside any folder.
    OSError
        Not enough free disk space for the declared uncompressed size, or other
        file-system errors.
    """
    zip_path, out_dir = Path(zip_path), Path(out_dir)
    if not zip_path.is_file():
        raise FileNotFoundError(f"zip archive {zip_path} does not exist")
    try:
        zf = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise zipfile.BadZipFile(f"{zip_path} is not a valid zip archive: {err}") from err
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
                f"{', '.join(unsafe[:5])}{' ...' if len(unsafe) > 5 else ''}")
        if skipped:
            logger.info("%s: skipping %d hidden/system entr%s (__MACOSX, .DS_Store, ...)",
                        zip_path.name, skipped, "y" if skipped == 1 else "ies")
        encrypted = ["/".join(p) for i, p in members if i.flag_bits & _ENCRYPTED_FLAG]
        if encrypted:
            raise ValueError(f"{zip_path} holds encrypted entries (e.g. {encrypted[0]!r}); "
                             "extract it yourself and use data.source: folder")
        prefix, keep = _plan([p for _, p in members], zip_path.name)
        if not keep:
            raise ValueError(f"{zip_path} holds no file inside a class folder")
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
            raise OSError(f"extracting {zip_path} needs {need / 2**30:.2f} GiB, only "
                          f"{free / 2**30:.2f} GiB free under {out_dir.parent}")
        with atomic_dir(out_dir) as tmp:
            root = os.path.realpath(tmp)
            for rel, info in tqdm(targets.items(), desc=f"extract {zip_path.name}",
                                  unit="file", disable=not progress, leave=False):
                target = os.path.realpath(os.path.join(tmp, *rel))
                if os.path.commonpath([root, target]) != root:  # defence in depth
                    raise UnsafeArchiveError(f"entry {'/'.join(rel)!r} escapes {out_dir}")
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with zf.open(info) as src, open(target, "xb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
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
            elif os.path.isfile(os.path.join(dirpath, name)):
                files.append((*rel, name))
            else:
                logger.warning("skipping %s: not a regular file (or a broken link)",
                               os.path.join(dirpath, name))
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
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is a file but not a zip, ``path`` and ``out_dir`` overlap, or it holds
        no file inside a class folder.
    UnsafeArchiveError, zipfile.BadZipFile
        See :func:`safe_extract_zip`.
    """
    src, out_dir = Path(path).expanduser(), Path(out_dir)
    if not src.exists():
        raise FileNotFoundError(f"data folder or zip {src} does not exist "
                                f"(resolved: {src.resolve()})")
    if src.is_file():
        if not zipfile.is_zipfile(src):
            raise ValueError(f"{src} is a file but not a zip archive; give a folder laid out "
                             "as <Movement>/[<Artist>/]<image> or a .zip of one")
        return safe_extract_zip(src, out_dir, name_encoding=name_encoding, progress=progress)
    _check_no_overlap(src, out_dir)
    files, skipped = _walk_files(src)
    if skipped:
        logger.info("%s: skipping %d hidden/system entr%s", src, skipped,
                    "y" if skipped == 1 else "ies")
    prefix, keep = _plan(files, str(src))
    if not keep:
        raise ValueError(f"{src} holds no file inside a class folder "
                         "(expected <Movement>/[<Artist>/]<image>)")
    linked = copied = 0
    with atomic_dir(out_dir) as tmp:
        for i in tqdm(keep, desc=f"import {src.name}", unit="file", disable=not progress,
                      leave=False):
            parts = files[i]
            source = src.joinpath(*parts)
            target = tmp.joinpath(*parts[len(prefix):])
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


def _check_no_overlap(src: Path, out_dir: Path) -> None:
    real_src, real_out = Path(os.path.realpath(src)), Path(os.path.realpath(out_dir))
    if real_src == real_out or real_src in real_out.parents or real_out in real_src.parents:
        raise ValueError(f"source {src} and target {out_dir} overlap; import from a folder "
                         "outside the target")


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
        raise FileNotFoundError(f"raw data folder {raw_dir} does not exist")
    return sorted((p.name for p in raw_dir.iterdir()
                   if p.is_dir() and not is_hidden_or_system(p.name)), key=str.casefold)


def select_classes(raw_dir: str | os.PathLike, classes: Iterable[str] = ()) -> list[str]:
    """Resolve requested class names to the class folders of ``raw_dir``.

    Names match when their :func:`class_key` is equal, i.e. ignoring case, accents,
    separators (space, ``-``, ``_``, ``.``) and a leading number (``01_``).

    Parameters
    ----------
    raw_dir : str or PathLike
        A folder holding one sub-folder per class.
    classes : iterable of str, optional
        Requested names; empty means all classes.

    Returns
    -------
    list of str
        Actual folder names: all of them sorted case-insensitively when ``classes`` is
        empty, else one per distinct request in request order.

    Raises
    ------
    FileNotFoundError
        ``raw_dir`` does not exist.
    ValueError
        A requested name matches no folder (the message lists the available folders
        and close matches) or several folders.
    """
    raw_dir = Path(raw_dir)
    available = _class_folders(raw_dir)
    wanted = [c for c in classes]
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
            raise ValueError(f"class {req!r} is ambiguous in {raw_dir}: it matches "
                             f"{', '.join(map(repr, matches))}")
        elif matches[0] not in chosen:
            chosen.append(matches[0])
    if unknown:
        hints = []
        for req in unknown:
            close = difflib.get_close_matches(class_key(req), list(by_key), n=1, cutoff=0.6)
            if close:
                hints.append(f"{req!r} -> did you mean {by_key[close[0]][0]!r}?")
        raise ValueError(
            f"unknown class(es) {', '.join(map(repr, unknown))} in {raw_dir}; available: "
            f"{', '.join(map(repr, available))}" + (f" ({'; '.join(hints)})" if hints else ""))
    return chosen


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
    ValueError
        Unknown source, ``sample``, missing/conflicting ``url``/``path``/``sha256``,
        unknown class names, or an archive/folder without class folders.
    FileNotFoundError
        ``path`` does not exist.
    DownloadError, ChecksumError, UnsafeArchiveError, zipfile.BadZipFile
        From the steps above; ``out_dir`` is then left untouched and no partial file
        stays behind (except a resumable ``.part`` in ``cache_dir`` after an interrupt).
    """
    if source == "sample":
        raise ValueError("source 'sample' is generated by artstyle.data.sample, "
                         "not fetched; call generate_sample instead")
    if source not in SOURCES:
        raise ValueError(f"unknown data source {source!r}; known: {', '.join(SOURCES)}")
    out_dir = Path(out_dir)
    classes = [str(c) for c in classes]
    archive: Path | None = None
    digest: str | None = None
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.fetch-",
                                     dir=_mkparent(out_dir)) as work:
        tree = Path(work) / "tree"
        if source == "folder":
            if path is None:
                raise ValueError("source 'folder' needs path= (a folder or a .zip)")
            if url is not None:
                raise ValueError("source 'folder' takes path=, not url=")
            origin = str(path)
            src = Path(path).expanduser()
            if src.is_dir():
                _check_no_overlap(src, out_dir)
            if sha256 and not src.is_file():
                raise ValueError("sha256= can only pin a zip archive, not a folder")
            if src.is_file():
                digest = content_hash(src)
                if sha256 and digest != _normalise_sha256(sha256):
                    raise ChecksumError(str(src), _normalise_sha256(sha256), digest,
                                        deleted=False)
            import_folder(src, tree, progress=progress)
        else:
            if path is not None and url is not None:
                raise ValueError("give either url= (download) or path= (local copy), not both")
            if path is not None:
                archive = Path(path).expanduser()
                origin = str(archive)
                if not archive.is_file():
                    raise FileNotFoundError(f"archive {archive} does not exist")
                digest = content_hash(archive)
                if sha256 and digest != _normalise_sha256(sha256):
                    raise ChecksumError(str(archive), _normalise_sha256(sha256), digest,
                                        deleted=False)
            else:
                origin = url or SOURCES[source].url
                sha256 = sha256 or (SOURCES[source].sha256 if url is None else None)
                archive = _fetch_archive(origin, Path(cache_dir) if cache_dir else Path(work),
                                         sha256=sha256, retries=retries, timeout=timeout,
                                         progress=progress, backoff=backoff)
                # download_file has verified a pin; hash only an unpinned archive.
                digest = _normalise_sha256(sha256) if sha256 else content_hash(archive)
            safe_extract_zip(archive, tree, progress=progress)
        chosen = select_classes(tree, classes)
        for name in _class_folders(tree):
            if name not in chosen:
                shutil.rmtree(tree / name)
        counts = {name: _count_files(tree / name) for name in sorted(chosen, key=str.casefold)}
        empty = [c for c, n in counts.items() if n == 0]
        if empty:
            logger.warning("class folder(s) without files: %s", ", ".join(empty))
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


def _mkparent(out_dir: Path) -> Path:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    return out_dir.parent


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
