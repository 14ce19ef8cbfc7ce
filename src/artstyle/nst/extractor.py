"""Content and style features of a CNN: VGG19 (ImageNet) or one of our own art-movement CNNs."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from artstyle.config import VGG19_CONTENT_LAYERS, VGG19_STYLE_LAYERS
from artstyle.models.vgg19 import build_vgg19_notop, vgg_preprocess
from artstyle.nst.fast_gradient import PlainConvChain, resolve_compute_dtype

logger = logging.getLogger(__name__)

_CONV_CLASS_NAMES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")


def _is_conv(layer: Any) -> bool:
    return any(cls.__name__ in _CONV_CLASS_NAMES for cls in type(layer).__mro__)


def _spatial_layers(model: Any) -> list[str]:
    """Names of the (top-level) layers with a rank-4 (B, H, W, C) output."""
    names = []
    for layer in model.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        if len(shape) == 4:
            names.append(layer.name)
    return names


def default_own_cnn_layers(model: Any, *, max_style_layers: int = 5) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Default content/style layers for an own CNN: EARLIER layers for content, DEEPER for style.

    Follows the project study's finding (content is best kept by earlier layers of our
    art-movement CNNs, style is best captured by deeper ones). Heuristic on the
    model's top-level convolution layers in graph order ``c_0 .. c_{n-1}``:

    * content: ``c_{(n-1)//3}`` (end of the first third);
    * style: up to ``max_style_layers`` layers evenly spaced over the deeper half
      ``c_{n//2} .. c_{n-1}`` (always including the last).

    Raises
    ------
    ValueError
        Fewer than two convolution layers.
    """
    convs = [layer.name for layer in model.layers if _is_conv(layer)]
    if len(convs) < 2:
        raise ValueError(
            f"model {model.name!r} has {len(convs)} top-level convolution layers; pass "
            f"content_layers/style_layers explicitly (layers with 4-D outputs: {_spatial_layers(model)})"
        )
    n = len(convs)
    content = (convs[(n - 1) // 3],)
    deep = convs[n // 2:]
    idx = np.unique(np.rint(np.linspace(0, len(deep) - 1, min(max_style_layers, len(deep)))).astype(int))
    style = tuple(deep[i] for i in idx)
    return content, style


class FeatureExtractor:
    """Multi-output feature extractor (content and style layers) over a Keras CNN backbone.

    Call it with a float batch of RGB images in [0, 255], shape (B, H, W, 3); it returns
    ``(content_features, style_features)``, two lists of (B, H_l, W_l, C_l) tensors in
    the order of :attr:`content_layers` / :attr:`style_layers`. Only the part of the
    backbone up to the deepest chosen layer is run; the backbone is frozen (inference
    mode: ``training=False``).

    Parameters
    ----------
    backbone : keras.Model
        Functional or Sequential (built) model with one image input. Layer names refer
        to its top-level layers (for a nested base model pass that model itself).
    content_layers, style_layers : sequence of str
    preprocess : callable or None
        Applied inside the graph to the [0, 255] RGB input before the backbone
        (``vgg_preprocess`` for VGG19; ``None`` for own CNNs, which rescale inside).
    name : str
    min_side : int or None
        Override the smallest usable image side (otherwise measured, see below).
    fast_gradient : bool
        ``True`` (default): the library's hand-written gradients. The backbone runs as
        a :class:`PlainConvChain` when it is one (VGG19 is; the project's own CNNs, with
        batch normalisation and dense heads, are not), and :class:`StyleTransferLoss`
        over this extractor computes Gram matrices with
        :func:`artstyle.gram.fast_gram_matrix`. ``False``: the Keras model and TensorFlow's automatic gradients
        throughout, as the TensorFlow tutorial (the reference of
        ``benchmarks/style_transfer.py``). Loss values are the same either way and the
        image gradients agree within float32 rounding; a VGG19 loss-and-gradient pass at
        256 px is about a quarter cheaper (``docs/benchmarks.md``). The chain can also
        run in bfloat16 (the ``compute_dtype`` of :meth:`__call__`).

    Notes
    -----
    Input size: if the backbone has a fixed spatial input size (e.g. an own CNN trained
    at 224x224), the truncated graph is rebuilt with ``(None, None, 3)`` input and the
    same layers and weights (``keras.models.clone_model`` with shared layers); this
    works for purely convolutional parts. If the rebuild fails (e.g. a ``Reshape`` or
    ``Dense`` before the chosen layers), images are instead resized (bilinear,
    differentiable) to the fixed size inside the graph, so the optimised image keeps
    its own size and aspect ratio; :attr:`input_size` is then set.

    :attr:`min_side` is the smallest image side for which every chosen layer still has
    a non-empty feature map, measured by running the truncated model on zero images
    (VGG19 up to ``block5_conv2``: 16 px; 1 in resize mode).
    """

    def __init__(self, backbone: Any, content_layers: Sequence[str], style_layers: Sequence[str], *,
                 preprocess: Callable[[Any], Any] | None = None, name: str | None = None,
                 min_side: int | None = None, fast_gradient: bool = True):
        import keras

        if len(backbone.inputs) != 1:
            raise ValueError(f"backbone must have exactly one image input; has {len(backbone.inputs)}")
        self.content_layers = tuple(content_layers)
        self.style_layers = tuple(style_layers)
        if not self.content_layers or not self.style_layers:
            raise ValueError("need at least one content layer and one style layer")
        self.name = name or backbone.name
        self.preprocess = preprocess
        self.layer_names = tuple(dict.fromkeys(self.content_layers + self.style_layers))
        available = _spatial_layers(backbone)
        missing = [n for n in self.layer_names if n not in available]
        if missing:
            raise ValueError(
                f"layers {missing} are not top-level layers with 4-D (B, H, W, C) outputs of "
                f"{backbone.name!r}; available: {available}"
            )
        outputs = [backbone.get_layer(n).output for n in self.layer_names]
        model = keras.Model(backbone.inputs[0], outputs, name=f"{self.name}_features")
        model.trainable = False
        in_shape = tuple(backbone.inputs[0].shape)
        if len(in_shape) != 4 or in_shape[-1] != 3:
            raise ValueError(f"backbone input must be (B, H, W, 3); got {in_shape}")
        self.input_size: tuple[int, int] | None = None
        if in_shape[1] is not None or in_shape[2] is not None:
            try:
                new_input = keras.Input((None, None, 3), name=f"{self.name}_image")
                structure = [new_input] if isinstance(model.input, (list, tuple)) else new_input
                flex = keras.models.clone_model(model, input_tensors=structure,
                                                clone_function=lambda layer: layer)
                flex = keras.Model(flex.inputs[0], flex.outputs, name=f"{self.name}_features")
                # Symbolic shapes may pass where runtime fails (e.g. a Reshape): run it once
                # at a size other than the native one.
                probe_h, probe_w = (int(in_shape[1] or 32) + 32, int(in_shape[2] or 32) + 48)
                flex(np.zeros((1, probe_h, probe_w, 3), np.float32), training=False)
                model = flex
                model.trainable = False
                logger.info("rebuilt %r with flexible (None, None, 3) input", self.name)
            except Exception as exc:  # noqa: BLE001 - any Keras failure means "cannot rebuild"
                self.input_size = (int(in_shape[1]), int(in_shape[2]))
                logger.warning(
                    "cannot rebuild %r with a flexible input size (%s: %s); images will be resized "
                    "to the fixed %dx%d inside the graph", self.name, type(exc).__name__, exc,
                    *self.input_size,
                )
        self.model = model
        #: Whether losses over these features use the library's hand-written gradients.
        self.fast_gradient = bool(fast_gradient)
        #: The :class:`PlainConvChain` used instead of ``model`` (cheaper image gradient), or None.
        self.chain = (PlainConvChain.from_model(model, self.layer_names)
                      if fast_gradient and self.input_size is None else None)
        self._chains = {"float32": self.chain}
        self.min_side = int(min_side) if min_side is not None else self._measure_min_side()

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def vgg19(cls, weights: str | os.PathLike | None = None, *,
              content_layers: Sequence[str] = VGG19_CONTENT_LAYERS,
              style_layers: Sequence[str] = VGG19_STYLE_LAYERS, seed: int = 0,
              fast_gradient: bool = True) -> FeatureExtractor:
        """VGG19 (no top, flexible input size) extractor with VGG preprocessing.

        Parameters
        ----------
        weights : path or None
            A Keras ``.weights.h5`` of the no-top VGG19 (stage ``pretrained``);
            ``None`` gives deterministic random He-normal weights from ``seed``
            (:func:`artstyle.models.vgg19.build_vgg19_notop`; tests, no download).
        content_layers, style_layers : layer names (defaults as the keras.io example).
        seed : int
            Seed of the random weights (``weights=None`` only).
        fast_gradient : bool
            See the class parameters (:class:`PlainConvChain`).

        Raises
        ------
        FileNotFoundError
            ``weights`` path does not exist.
        """
        backbone = build_vgg19_notop(weights, seed=seed)
        return cls(backbone, content_layers, style_layers, preprocess=vgg_preprocess, name="vgg19",
                   fast_gradient=fast_gradient)

    @classmethod
    def from_model(cls, model: Any, *, content_layers: Sequence[str] | None = None,
                   style_layers: Sequence[str] | None = None, name: str | None = None,
                   fast_gradient: bool = True) -> FeatureExtractor:
        """Extractor over an own CNN (a ``keras.Model`` or a path to a ``.keras`` file).

        The model must take float RGB images in [0, 255] and do its own rescaling in the
        graph (as the project's zoo models), so no preprocessing is added. Missing layer
        lists default to :func:`default_own_cnn_layers` (earlier layers for content,
        deeper layers for style). ``fast_gradient``: see the class parameters.
        """
        import keras

        if not isinstance(model, keras.Model):
            path = Path(model)
            if not path.is_file():
                raise FileNotFoundError(f"model file not found: {path}")
            model = keras.models.load_model(path, compile=False)
        if content_layers is None or style_layers is None:
            d_content, d_style = default_own_cnn_layers(model)
            content_layers = d_content if content_layers is None else content_layers
            style_layers = d_style if style_layers is None else style_layers
            logger.info("own CNN %r: content layers %s, style layers %s", model.name,
                        list(content_layers), list(style_layers))
        return cls(model, content_layers, style_layers, preprocess=None, name=name or model.name,
                   fast_gradient=fast_gradient)

    # -- calling ----------------------------------------------------------------------------
    def effective_compute_dtype(self, compute_dtype: str) -> str:
        """The dtype :meth:`__call__` computes in when asked for ``compute_dtype``
        (``"float32"``, ``"bfloat16"`` or ``"auto"``,
        :func:`artstyle.nst.fast_gradient.resolve_compute_dtype`): bfloat16 needs the
        :class:`PlainConvChain` (VGG19 with ``fast_gradient``); any other backbone
        computes in float32.

        Raises
        ------
        ValueError
            Another value.
        """
        dtype = resolve_compute_dtype(compute_dtype)
        return dtype if self.chain is not None else "float32"

    def _chain_for(self, compute_dtype: str) -> PlainConvChain | None:
        dtype = self.effective_compute_dtype(compute_dtype)
        if dtype not in self._chains:
            self._chains[dtype] = PlainConvChain.from_model(self.model, self.layer_names, dtype)
        return self._chains[dtype]

    def __call__(self, images: Any, compute_dtype: str = "float32") -> tuple[list[Any], list[Any]]:
        """Features of a float batch (B, H, W, 3) of RGB images in [0, 255].

        Parameters
        ----------
        images : array-like or tf.Tensor, (B, H, W, 3), float RGB in [0, 255]
        compute_dtype : ``"float32"`` (default), ``"bfloat16"`` or ``"auto"``
            The dtype of the backbone's computations (:meth:`effective_compute_dtype`);
            the features are float32 either way.

        Returns
        -------
        (content_features, style_features) : lists of float32 tf.Tensor (B, H_l, W_l, C_l).
        """
        import tensorflow as tf

        x = tf.cast(images, tf.float32)
        if self.input_size is not None:
            x = tf.image.resize(x, self.input_size, method="bilinear", antialias=True)
        if self.preprocess is not None:
            x = self.preprocess(x)
        chain = self._chain_for(compute_dtype)
        outs = chain(x) if chain is not None else self.model(x, training=False)
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        by_name = dict(zip(self.layer_names, outs, strict=True))
        return [by_name[n] for n in self.content_layers], [by_name[n] for n in self.style_layers]

    def _measure_min_side(self, limit: int = 1024) -> int:
        if self.input_size is not None:
            return 1

        def ok(side: int) -> bool:
            try:
                content, style = self(np.zeros((1, side, side, 3), np.float32))
            except Exception:  # noqa: BLE001 - too small for a 'valid' layer
                return False
            return all(int(np.prod(f.shape[1:3])) > 0 for f in content + style)

        hi = 1
        while not ok(hi):
            hi *= 2
            if hi > limit:
                raise ValueError(f"{self.name}: no input side up to {limit} px gives non-empty features")
        lo = hi // 2  # ok(lo) is False (or lo == 0)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if ok(mid):
                hi = mid
            else:
                lo = mid
        return hi

    def __repr__(self) -> str:
        return (f"FeatureExtractor(name={self.name!r}, content_layers={list(self.content_layers)}, "
                f"style_layers={list(self.style_layers)}, min_side={self.min_side}, "
                f"input_size={self.input_size})")
