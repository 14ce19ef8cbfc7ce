"""The speed machinery of style transfer: cheaper image gradients, same loss.

The loss-and-gradient pass needs the gradient with respect to the *image* only.
:class:`PlainConvChain` runs a backbone that is a chain of stride-1 'same'
convolutions and max-pools (VGG19) as plain ``tf.nn`` ops whose input gradient is a
forward convolution with the flipped kernel (the transposed convolution, Dumoulin &
Visin, "A guide to convolution arithmetic for deep learning", arXiv:1603.07285,
section 4), cheaper on CPUs than TensorFlow's stock ``Conv2DBackpropInput``;
:func:`artstyle.gram.fast_gram_matrix` gives the Gram matrix a one-product gradient.
Values equal the plain definitions in :mod:`artstyle.nst.losses` within float32 rounding; measured
speed-ups are in ``docs/benchmarks.md``.

The chain can also run its convolutions in **bfloat16** (``compute_dtype``, Keras'
name for the dtype of a layer's computations): the image, kernels and activations
rounded to bfloat16's 8-bit mantissa, the layer outputs handed to the loss in
float32. On CPUs with native bfloat16 arithmetic (Intel AMX, AVX-512 BF16) a VGG19
loss-and-gradient pass is then faster (:func:`bfloat16_is_fast`,
:func:`resolve_compute_dtype`); loss values differ from the float32 ones by about 1%
(figures in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from artstyle.gram import fast_gram_matrix  # noqa: F401 (part of the speed machinery)

logger = logging.getLogger(__name__)

#: The compute dtypes a :class:`PlainConvChain` runs in (``"auto"`` resolves to one).
COMPUTE_DTYPES = ("float32", "bfloat16")


#: ``/proc/cpuinfo`` flags of native bfloat16 arithmetic that oneDNN uses for
#: convolutions: Intel AMX tiles (Sapphire Rapids and later) and the AVX-512 BF16
#: dot-product instructions (Cooper Lake; AMD Zen 4 and later). Without either, oneDNN
#: emulates bfloat16 and it is slower than float32.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.cache
def bfloat16_is_fast(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether bfloat16 convolutions beat float32 ones here: a CPU with native bfloat16
    arithmetic (one of :data:`BF16_CPU_FLAGS` in the flags of ``/proc/cpuinfo``) and no
    GPU visible to TensorFlow. Elsewhere (no such flag, no ``/proc/cpuinfo``, or a GPU,
    where float32 convolutions already use TensorFloat-32) False. Measured speed-ups per
    CPU are in ``docs/benchmarks.md`` (``benchmarks/feedforward.py --part dtype``).
    Worked out once per ``cpuinfo`` path (cached).
    """
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            native = any(line.startswith("flags") and
                         any(flag in line.split() for flag in BF16_CPU_FLAGS) for line in f)
    except OSError:
        return False
    if not native:
        return False
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def resolve_compute_dtype(compute_dtype: str) -> str:
    """``"float32"`` or ``"bfloat16"`` for a setting that may be ``"auto"``
    (bfloat16 where :func:`bfloat16_is_fast`, else float32).

    Raises
    ------
    ValueError
        Not one of ``"auto"``, ``"float32"``, ``"bfloat16"``.
    """
    if compute_dtype == "auto":
        return "bfloat16" if bfloat16_is_fast() else "float32"
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be 'auto', 'float32' or 'bfloat16'; got {compute_dtype!r}")
    return compute_dtype


class PlainConvChain:
    """A chain of stride-1 'same' convolutions (ReLU or linear) and max-pools, with a
    cheaper gradient with respect to the input.

    The loss-and-gradient pass of style transfer needs the gradient with respect to the
    *image* only; TensorFlow's stock CPU kernel for it (``Conv2DBackpropInput``) costs
    more than the forward convolutions (profile in ``docs/benchmarks.md``). For a stride-1 convolution with an odd ``kh x kw`` kernel ``K`` and 'same' padding,
    the gradient with respect to its input is itself a stride-1 'same' *forward*
    convolution of the upstream gradient with ``K`` flipped in both spatial axes and its
    input/output channels swapped (the transposed convolution, Dumoulin & Visin, "A
    guide to convolution arithmetic for deep learning", arXiv:1603.07285, section 4).
    Each convolution here is a ``tf.custom_gradient`` that computes exactly that, with
    the ReLU mask folded in; max-pools keep TensorFlow's own gradient. Values are the
    same as the Keras model's, gradients equal within float32 rounding (relative
    difference ~1e-7 on VGG19). No gradient flows to the weights: they are read once, at construction.

    Use :meth:`from_model`, which returns ``None`` when the model is not such a chain.
    Calling the object with a float32 tensor (B, H, W, C_in) returns the list of the
    requested layers' outputs (B, H_l, W_l, C_l) in float32, like the truncated Keras
    model; with ``compute_dtype="bfloat16"`` the input, kernels, biases and every
    activation between are bfloat16 (module docstring).
    """

    def __init__(self, steps: Sequence[tuple[str, Callable[[Any], Any]]], outputs: Sequence[str],
                 compute_dtype: str = "float32"):
        self.steps = list(steps)
        self.outputs = tuple(outputs)
        self.compute_dtype = compute_dtype

    @staticmethod
    def _conv_step(layer: Any, compute_dtype: str = "float32") -> Callable[[Any], Any] | None:
        import tensorflow as tf

        cfg = layer.get_config()
        kh, kw = (int(k) for k in cfg["kernel_size"])
        activation = cfg.get("activation")
        if (tuple(cfg.get("strides", (1, 1))) != (1, 1) or cfg.get("padding") != "same"
                or tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1) or int(cfg.get("groups", 1)) != 1
                or cfg.get("data_format", "channels_last") != "channels_last"
                or kh % 2 == 0 or kw % 2 == 0 or activation not in ("relu", "linear")):
            return None
        weights = layer.get_weights()
        kernel = np.asarray(weights[0], np.float32)
        bias = (tf.constant(np.asarray(weights[1], np.float32), compute_dtype)
                if len(weights) > 1 else None)
        forward_kernel = tf.constant(kernel, compute_dtype)
        # (kh, kw, C_in, C_out) -> flipped spatially, channels swapped: (kh, kw, C_out, C_in)
        input_grad_kernel = tf.constant(
            np.ascontiguousarray(np.transpose(kernel[::-1, ::-1], (0, 1, 3, 2))), compute_dtype)
        relu = activation == "relu"

        @tf.custom_gradient
        def conv(x):
            y = tf.nn.conv2d(x, forward_kernel, 1, "SAME")
            if bias is not None:
                y = tf.nn.bias_add(y, bias)
            if relu:
                y = tf.nn.relu(y)

            def grad(dy):
                if relu:
                    dy = tf.raw_ops.ReluGrad(gradients=dy, features=y)
                return tf.nn.conv2d(dy, input_grad_kernel, 1, "SAME")

            return y, grad

        return conv

    @staticmethod
    def _pool_step(layer: Any) -> Callable[[Any], Any] | None:
        import tensorflow as tf

        cfg = layer.get_config()
        if cfg.get("data_format", "channels_last") != "channels_last":
            return None
        pool = tuple(int(v) for v in cfg["pool_size"])
        strides = tuple(int(v) for v in (cfg.get("strides") or pool))
        padding = str(cfg.get("padding", "valid")).upper()
        return lambda x: tf.nn.max_pool2d(x, pool, strides, padding)

    @classmethod
    def from_model(cls, model: Any, outputs: Sequence[str],
                   compute_dtype: str = "float32") -> PlainConvChain | None:
        """The chain equivalent of ``model`` up to the deepest of ``outputs``, or ``None``.

        ``model`` qualifies when its top-level layers are an input layer followed by
        ``Conv2D`` (stride 1, 'same', odd kernel, no dilation or groups, ReLU or linear)
        and ``MaxPooling2D`` layers, each fed by the one before (checked numerically
        against the model on a small random image: any mismatch gives ``None``), as the
        Keras VGG16/VGG19 feature stacks. ``compute_dtype``: ``"float32"`` or
        ``"bfloat16"`` (class docstring); the check then allows bfloat16's rounding.
        """
        import tensorflow as tf

        if compute_dtype not in COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype must be 'float32' or 'bfloat16'; got {compute_dtype!r}")
        missing = set(outputs)
        steps: list[tuple[str, Callable[[Any], Any]]] = []
        for layer in model.layers:
            if not missing:
                break
            kind = type(layer).__name__
            if kind == "InputLayer":
                continue
            step = (cls._conv_step(layer, compute_dtype) if kind == "Conv2D"
                    else cls._pool_step(layer) if kind == "MaxPooling2D" else None)
            if step is None:
                logger.debug("%s: layer %r (%s) is not part of a plain conv chain; using Keras gradients",
                             model.name, layer.name, kind)
                return None
            steps.append((layer.name, step))
            missing.discard(layer.name)
        if missing:
            return None
        chain = cls(steps, outputs, compute_dtype)
        tol = 1e-4 if compute_dtype == "float32" else 5e-2  # bfloat16: 8-bit mantissa
        probe = np.random.default_rng(0).uniform(0.0, 255.0, (1, 37, 45, 3)).astype(np.float32)
        try:
            ours = chain(tf.constant(probe))
            theirs = model(probe, training=False)
            theirs = theirs if isinstance(theirs, (list, tuple)) else [theirs]
            same = len(ours) == len(theirs) and all(
                np.allclose(a.numpy(), np.asarray(b), rtol=tol, atol=tol * (1.0 + float(np.abs(b).max())))
                for a, b in zip(ours, theirs))
        except Exception as exc:  # noqa: BLE001 - any failure means "not this chain"
            logger.debug("%s: plain conv chain check failed (%s); using Keras gradients", model.name, exc)
            return None
        return chain if same else None

    def __call__(self, x: Any) -> list[Any]:
        import tensorflow as tf

        found = {}
        x = tf.cast(x, self.compute_dtype)
        for name, step in self.steps:
            x = step(x)
            found[name] = x
        return [tf.cast(found[name], tf.float32) for name in self.outputs]
