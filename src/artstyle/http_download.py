"""HTTP(S) downloads: resume, retries, truncation check and an optional SHA-256 pin.

The one place the project talks HTTP: the Pandora archives (:mod:`artstyle.data.download`)
and Keras' VGG19 weights (:mod:`artstyle.models.pretrained`) both come through
:func:`download_file`. Resuming uses an HTTP ``Range`` request into ``<dest>.part``
(RFC 9110 sec. 14; ``If-Range`` with the first response's ``ETag``/``Last-Modified``
guards against a file that changed on the server); a transfer with fewer bytes than
``Content-Length`` or than the ``Content-Range`` total is never accepted.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from artstyle import __version__
from artstyle.errors import ArtstyleError
from artstyle.hashing import normalise_sha256, sha256_file

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_RETRY_HTTP_CODES = frozenset({408, 425, 429, 500, 502, 503, 504})


class DownloadError(ArtstyleError, RuntimeError):
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


class _Truncated(OSError):
    """The server sent fewer bytes than announced (retryable)."""


_RETRYABLE = (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException,
              _Truncated)

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
    expected = normalise_sha256(sha256) if sha256 else None
    dest = Path(dest)
    if expected and dest.is_file():
        if sha256_file(dest) == expected:
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
            actual = sha256_file(part)
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
