"""File digests: the one place that hashes files (downloads, weights, exact duplicates)."""

from __future__ import annotations

import hashlib
import os
import re

from artstyle.errors import ArtstyleError


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in streaming fashion (any size).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    algorithm : str, default ``"sha256"``
        Any name :func:`hashlib.new` accepts (``"md5"`` for Keras' published weights).

    Returns
    -------
    str
        Lower-case hexadecimal digest (64 characters for SHA-256).

    Raises
    ------
    OSError
        The file cannot be read.
    """
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, algorithm).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes as 64 lower-case hex digits (:func:`file_digest`)."""
    return file_digest(path, "sha256")


class ChecksumFormatError(ArtstyleError, ValueError):
    """A SHA-256 pin is not 64 hex digits."""


def normalise_sha256(value: str) -> str:
    """A SHA-256 pin as 64 lower-case hex digits (an optional ``sha256:`` prefix dropped).

    Raises
    ------
    ChecksumFormatError
        ``value`` is not 64 hexadecimal digits.
    """
    digest = value.strip().lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ChecksumFormatError(f"sha256 pin must be 64 hex digits, got {value!r}")
    return digest
