"""Optimising the image: L-BFGS (default) or Adam, one or several scales, best image kept.

``"lbfgs"`` runs ``scipy.optimize.minimize(method="L-BFGS-B")`` with loss and gradient
from a ``tf.function`` (float32 inside, float64 at the scipy boundary), by default over
the Fourier coefficients of the change to the start image (:mod:`artstyle.nst.fourier`);
``"adam"`` is the TensorFlow tutorial's recipe (``keras.optimizers.Adam(learning_rate,
beta_1=0.99, epsilon=0.1)``, clipping to [0, 1] after each step). One *evaluation* is
one loss-and-gradient pass (one forward and one backward pass) for both, so counts of
evaluations compare cost (scipy's ``maxfun``, not its ``maxiter``).
"""

from __future__ import annotations

import logging
import math
import resource
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from artstyle.config import (
    AUTO_COARSEST_SIDE,
    AUTO_ONE_SCALE_MAX_SIDE,
    LossWeights,
    TransferParams,
)
from artstyle.errors import ArtstyleError
from artstyle.images import as_rgb_uint8, check_mask_aspect
from artstyle.nst.extractor import FeatureExtractor
from artstyle.nst.fourier import fourier_image, fourier_scale
from artstyle.nst.inputs import (
    composite,
    keep_colours,
    mask_at,
    match_colour,
    prepare_images,
    scaled_shape,
    style_mask,
)
from artstyle.nst.losses import StyleTransferLoss, normalised_blend_weights

logger = logging.getLogger(__name__)

#: Adam settings of the tutorial recipe.
ADAM_BETA_1 = 0.99
ADAM_EPSILON = 0.1


class StyleTransferDiverged(ArtstyleError, RuntimeError):
    """The style-transfer loss became NaN/Inf (or the result is degenerate) and no usable image exists."""


class OutputTooLarge(ArtstyleError, ValueError):
    """The output size would need more memory than allowed; the message names a size that fits."""


class _StopOptimisation(Exception):
    """Internal: ends an optimiser run (budget spent, callback asked, or divergence)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class StylizeResult:
    """Outcome of :func:`stylize`.

    Attributes
    ----------
    image : numpy.ndarray (H, W, 3) uint8
        The image with the lowest loss at the final scale (the working content size).
    history : list of dict
        One record per loss evaluation: ``step`` (1-based, counted over all levels),
        ``seconds`` (since the call started), ``total``, ``content``, ``style``, ``tv``
        (weighted loss terms), ``level`` (the coarse-to-fine scale level, 0 = coarsest),
        ``scale``, ``height``, ``width``.
    seconds : float
        Wall-clock seconds of the whole call.
    evaluations : int
        Loss-and-gradient evaluations done (all scales).
    diverged : bool
        The loss became NaN/Inf and the last good image was returned instead.
    style_shape : (H, W)
        Working size of the style image at the final level.
    optimizer : str
    extra : dict
        ``stop_reason``, ``init``, ``seed`` (of the noise start; the run is repeatable
        from it), ``preserve_colors``, ``blend_weights`` (normalised, one per style),
        ``scales``, ``budgets`` (evaluations per scale), ``compute_dtype`` (of the
        backbone's convolutions; the losses in ``history`` are computed in it),
        ``estimated_memory_mb`` (the
        estimate checked before starting, :func:`estimate_memory_mb`),
        ``peak_memory_mb`` (the process's peak resident memory so far,
        ``getrusage(RUSAGE_SELF).ru_maxrss``: a high-water mark of the whole process,
        including earlier work), and ``fourier_exponent`` (L-BFGS).
    """

    image: np.ndarray
    history: list[dict[str, float]]
    seconds: float
    evaluations: int
    diverged: bool = False
    style_shape: tuple[int, int] = (0, 0)
    optimizer: str = "lbfgs"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best_record(self) -> dict[str, float]:
        """The history record of the returned image: the lowest finite total loss at the
        final scale (its ``content``, ``style``, ``tv`` add up to its ``total``); empty
        when there is none. The *last* record can be a rejected line-search trial."""
        last_level = max((r["level"] for r in self.history), default=0)
        finite = [r for r in self.history if r["level"] == last_level and math.isfinite(r["total"])]
        return dict(min(finite, key=lambda r: r["total"])) if finite else {}

    @property
    def final_loss(self) -> float:
        """Lowest total loss recorded at the final scale (NaN when there is none)."""
        return float(self.best_record.get("total", float("nan")))

    def with_photo_colours(self, content: np.ndarray) -> StylizeResult:
        """This result with the photo's colours kept, without optimising again.

        :func:`stylize` keeps the colours after the optimisation
        (:func:`artstyle.nst.inputs.keep_colours`, Gatys et al. 2017), so this is exactly
        what it returns with ``preserve_colors`` and otherwise the same settings and seed.
        ``seconds`` is the time this took, ``extra["preserve_colors"]`` is True.

        Parameters
        ----------
        content : numpy.ndarray, (H, W, 3) uint8
            The photo given to :func:`stylize`.

        Raises
        ------
        ValueError
            The result kept the colours already, or was composited through a mask (the
            colours are kept before the mask is applied: run :func:`stylize` instead).
        """
        if self.extra.get("preserve_colors") or self.extra.get("mask"):
            raise ValueError("with_photo_colours needs a result without preserve_colors and "
                             "without a mask")
        t0 = time.perf_counter()
        image = keep_colours(self.image, content)
        return replace(self, image=image, seconds=time.perf_counter() - t0,
                       extra={**self.extra, "preserve_colors": True})

    def summary(self) -> dict[str, Any]:
        """Scalar metrics for reports/DVC (JSON-serialisable)."""
        return {
            "seconds": round(self.seconds, 3), "evaluations": self.evaluations,
            "final_loss": self.final_loss, "diverged": self.diverged, "optimizer": self.optimizer,
            "height": int(self.image.shape[0]), "width": int(self.image.shape[1]),
            "style_height": int(self.style_shape[0]), "style_width": int(self.style_shape[1]),
            **{k: self.extra[k] for k in ("seed", "preserve_colors", "blend_weights", "mask",
                                          "compute_dtype", "peak_memory_mb", "estimated_memory_mb")
               if k in self.extra},
        }


class _Tracker:
    """Records every evaluation, keeps the best image, enforces budget, callback and NaN guard."""

    def __init__(self, start: float, budget_total: int, callback: Callable[[dict], Any] | None,
                 progress: bool, preview: Callable[[np.ndarray], Any] | None = None,
                 preview_every: int = 1):
        from tqdm.auto import tqdm

        self.start = start
        self.history: list[dict[str, float]] = []
        self.step = 0
        self.callback = callback
        self.preview, self.preview_every = preview, max(1, int(preview_every))
        self.pbar = tqdm(total=budget_total, disable=not progress, desc="stylize", unit="evaluation")
        self.best_img: np.ndarray | None = None
        self.best_loss = math.inf
        self.level = 0
        self.scale = 1.0
        self.level_budget_end = 0

    def new_level(self, level: int, scale: float, evaluations: int) -> None:
        self.level, self.scale = level, scale
        self.best_img, self.best_loss = None, math.inf
        self.level_budget_end = self.step + evaluations

    def record(self, losses: Mapping[str, Any], image01: np.ndarray, grad_finite: bool = True) -> None:
        """Record one evaluation of ``image01`` (1, H, W, 3); raise _StopOptimisation when done."""
        vals = {k: float(v) for k, v in losses.items()}
        self.step += 1
        rec = {"step": self.step, "seconds": time.perf_counter() - self.start, **vals,
               "level": self.level, "scale": self.scale,
               "height": int(image01.shape[1]), "width": int(image01.shape[2])}
        self.history.append(rec)
        self.pbar.update(1)
        self.pbar.set_postfix(loss=f"{vals['total']:.4g}", refresh=False)
        if not (math.isfinite(vals["total"]) and grad_finite):
            logger.warning("loss became non-finite at step %d (total=%s)", self.step, vals["total"])
            raise _StopOptimisation("diverged")
        if vals["total"] < self.best_loss:
            self.best_loss = vals["total"]
            self.best_img = np.array(image01, dtype=np.float32, copy=True)
        if self.preview is not None and self.step % self.preview_every == 0 \
                and self.best_img is not None:
            self.preview(np.clip(np.rint(self.best_img[0] * 255.0), 0, 255).astype(np.uint8))
        if self.callback is not None and self.callback(dict(rec)):
            raise _StopOptimisation("callback")
        if self.step >= self.level_budget_end:
            raise _StopOptimisation("budget")


#: L-BFGS-B starts with an identity Hessian guess, so its first step moves by the raw
#: gradient (huge here: the image leaps to the box corners and the line search backs off
#: over several evaluations). The objective seen by scipy is therefore divided by a
#: constant chosen so that the first step moves no variable by more than this (pixels in
#: [0, 1], or Fourier coefficients in the same units).
LBFGS_FIRST_STEP = 0.05
#: L-BFGS memory (number of correction pairs).
LBFGS_MEMORY = 20


def auto_scales(side: int, coarsest_side: int = AUTO_COARSEST_SIDE,
                max_levels: int | None = None,
                one_scale_max_side: int = AUTO_ONE_SCALE_MAX_SIDE) -> list[float]:
    """The coarse-to-fine scales of ``scales: auto`` for an output whose longest side is ``side``.

    One scale up to ``one_scale_max_side``; larger outputs halve from the output (scale
    1.0) while the level's longest side is above ``coarsest_side``, as the
    multi-resolution recipes for neural-style do (optimise small, upsample, refine):
    512 px or less -> ``[1.0]``, 868 or 1024 -> ``[0.25, 0.5, 1.0]``, 2048 ->
    ``[0.125, 0.25, 0.5, 1.0]``. (At 512 px a coarse level is pure cost: its upsampled
    result starts the full-size level at the photo's loss, ``benchmarks/coarse_to_fine.py``.)

    Parameters
    ----------
    side : int
        Longest side of the output in px (>= 1).
    coarsest_side : int
        The coarsest level's longest side is at most this (px), default
        :data:`artstyle.config.AUTO_COARSEST_SIDE`.
    max_levels : int, optional
        At most this many levels (the finest ones): one evaluation per level at least.
    one_scale_max_side : int
        Outputs up to this side run at one scale, default
        :data:`artstyle.config.AUTO_ONE_SCALE_MAX_SIDE`.

    Returns
    -------
    list of float
        Increasing scales ending in 1.0.
    """
    if side <= one_scale_max_side:
        return [1.0]
    scales = [1.0]
    while side * scales[0] > coarsest_side and (max_levels is None or len(scales) < max_levels):
        scales.insert(0, scales[0] / 2)
    return scales


def _split_budget(total: int, scales: Sequence[float]) -> list[int]:
    """``total`` evaluations over the levels of ``scales``: shares proportional to 1/scale.

    A level at scale ``s`` costs about ``s**2`` of a full-size evaluation, so most
    evaluations go to the cheap coarse levels (the multires recipes for neural-style):
    ``[0.25, 0.5, 1.0]`` splits 4 : 2 : 1 (150 -> 87, 42, 21). Every level gets at least
    one; rounding leftovers go to the coarsest level.
    """
    n_scales = len(scales)
    if total < n_scales:
        raise ValueError(f"max_evaluations ({total}) must be at least one per scale ({n_scales})")
    inverse = [1.0 / s for s in scales]
    shares = [max(1, math.floor(total * v / sum(inverse))) for v in inverse]
    while sum(shares) > total:  # the minimum of one per level overshot: take from the largest
        shares[shares.index(max(shares))] -= 1
    shares[0] += total - sum(shares)
    return shares


#: Bytes of process memory per float of the backbone's activations at the working size,
#: measured with VGG19 (fast gradient, L-BFGS): forward activations kept for the
#: backward pass, their gradients and TensorFlow's temporaries (``docs/style-transfer.md``).
MEMORY_BYTES_PER_ACTIVATION = 12.0
#: Fixed allowance for the style images' features and TensorFlow's workspace (MB).
MEMORY_OVERHEAD_MB = 300.0
#: L-BFGS state per working pixel (bytes): ``LBFGS_MEMORY`` correction pairs of float64
#: vectors over about 3 variables per pixel (pixels or Fourier coefficients), plus
#: scipy's working vectors. A 512 px run of 150 evaluations peaked 270 MB above one of 3.
LBFGS_BYTES_PER_PIXEL = (2 * 20 + 10) * 3 * 8


def activation_floats_per_pixel(extractor: FeatureExtractor) -> float:
    """Floats of all the extractor's 4-D layer outputs per input pixel (cached on it).

    Measured once by running every layer of ``extractor.model`` with a rank-4 output at
    64 x 64 px (VGG19 up to ``block5_conv2``: 325 floats per pixel). A
    fixed-input extractor (``input_size`` set) needs the same memory at any size: 0.
    """
    cached = getattr(extractor, "_floats_per_pixel", None)
    if cached is not None:
        return cached
    if extractor.input_size is not None:
        value = 0.0
    else:
        import keras

        model = extractor.model
        outs = [layer.output for layer in model.layers[1:]
                if len(getattr(layer.output, "shape", ())) == 4]
        probe = keras.Model(model.inputs[0], outs)
        side = 64
        feats = probe(np.zeros((1, side, side, 3), np.float32), training=False)
        feats = feats if isinstance(feats, (list, tuple)) else [feats]
        value = float(sum(int(np.prod(f.shape[1:])) for f in feats)) / (side * side) + 3.0
    extractor._floats_per_pixel = value
    return value


def estimate_memory_mb(extractor: FeatureExtractor, height: int, width: int,
                       optimizer: str = "lbfgs") -> float:
    """Estimated memory (MB) of optimising an image of ``height`` x ``width`` px.

    ``(MEMORY_BYTES_PER_ACTIVATION * floats_per_pixel + LBFGS_BYTES_PER_PIXEL) * H * W +
    MEMORY_OVERHEAD_MB`` (no L-BFGS term for ``optimizer="adam"``), with
    :func:`activation_floats_per_pixel` from the backbone's feature-map sizes (VGG19,
    L-BFGS, 1024 x 707 px: about 3.8 GB), on top of the process as it is (TensorFlow and
    the weights, about 1 GB).
    """
    per_pixel = MEMORY_BYTES_PER_ACTIVATION * activation_floats_per_pixel(extractor)
    if optimizer == "lbfgs":
        per_pixel += LBFGS_BYTES_PER_PIXEL
    return per_pixel * height * width / 2**20 + MEMORY_OVERHEAD_MB


def available_memory_mb() -> float:
    """Memory available to a new allocation now (MB): ``MemAvailable`` of /proc/meminfo,
    else the physical memory (``os.sysconf``)."""
    import os

    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


def peak_memory_mb() -> float:
    """The process's peak resident memory so far (MB), ``getrusage(RUSAGE_SELF).ru_maxrss``."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


def check_memory(extractor: FeatureExtractor, content_shape: tuple[int, int], max_side: int,
                 limit_mb: float, optimizer: str = "lbfgs") -> float:
    """Refuse an output size whose optimisation would need more than ``limit_mb``.

    Parameters
    ----------
    content_shape : (H, W) of the photo; the working size is it reduced to ``max_side``.
    max_side : int, px
    limit_mb : float
    optimizer : ``"lbfgs"`` or ``"adam"`` (L-BFGS keeps its correction pairs)

    Returns
    -------
    float
        The estimate (MB) at the working size.

    Raises
    ------
    OutputTooLarge
        One line naming the estimate, the limit and the largest ``max_side`` that fits.
    """
    h, w = content_shape
    longest = max(h, w)

    def need(side: int) -> float:
        hh, ww = scaled_shape((h, w), min(1.0, side / longest))
        return estimate_memory_mb(extractor, hh, ww, optimizer)

    estimate = need(max_side)
    if estimate <= limit_mb:
        return estimate
    fits = next((side for side in range(min(max_side, longest), 15, -8)
                 if need(side) <= limit_mb), None)
    if fits is None:
        raise OutputTooLarge(
            f"an output of max_side {max_side} px needs about {estimate:.0f} MB but only "
            f"{limit_mb:.0f} MB are available, too little for any size (16 px needs "
            f"{need(16):.0f} MB)")
    raise OutputTooLarge(
        f"an output of max_side {max_side} px needs about {estimate:.0f} MB but {limit_mb:.0f} MB "
        f"are available: use --max-side {fits} or less (max_side: {fits})")


def _run_lbfgs(loss_fn: StyleTransferLoss, init01: np.ndarray, tracker: _Tracker,
               fourier_exponent: float) -> str:
    """L-BFGS (scipy L-BFGS-B) from ``init01`` (1, H, W, 3) in [0, 1].

    ``fourier_exponent > 0``: over the Fourier coefficients of the change to the start
    image (:func:`fourier_scale`), unbounded, the image clipped to [0, 1] in the graph;
    0: over the flattened pixels with box bounds [0, 1]. After L-BFGS-B ends on its own
    (converged or line search failed) it restarts from the best image with a fresh
    curvature memory while there is budget and progress.
    """
    import scipy.optimize
    import tensorflow as tf

    _, h, w, _ = init01.shape
    if fourier_exponent > 0:
        gain = tf.constant(fourier_scale(h, w, fourier_exponent))
        var_shape: tuple[int, ...] = (3, h, w // 2 + 1, 2)  # real and imaginary parts
        bounds = None
        base = tf.Variable(np.asarray(init01, np.float32), trainable=False)  # what z changes

        def to_image(z):
            return fourier_image(z, base, gain)

        def variables_at(image01: np.ndarray) -> np.ndarray:
            base.assign(np.asarray(image01, np.float32))
            return np.zeros(int(np.prod(var_shape)))
    else:
        var_shape = tuple(init01.shape)
        bounds = scipy.optimize.Bounds(np.zeros(init01.size), np.ones(init01.size))

        def to_image(z):
            return z

        def variables_at(image01: np.ndarray) -> np.ndarray:
            return image01.astype(np.float64).ravel()

    @tf.function
    def value_and_grad(z):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(z)
            image = to_image(z)
            losses = loss_fn(image)
        return losses, tape.gradient(losses["total"], z), image

    scale = [0.0]  # objective divisor, set at the first evaluation of each run

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        losses, grad, image = value_and_grad(tf.constant(x.reshape(var_shape), tf.float32))
        g = grad.numpy().astype(np.float64).ravel()
        tracker.record(losses, image.numpy(), grad_finite=bool(np.all(np.isfinite(g))))
        if scale[0] == 0.0:
            scale[0] = max(float(np.abs(g).max()) / LBFGS_FIRST_STEP, 1e-12)
        return float(losses["total"]) / scale[0], g / scale[0]

    x0 = variables_at(init01)
    while True:
        before = tracker.step
        scale[0] = 0.0
        try:
            res = scipy.optimize.minimize(
                fun, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                options={"maxiter": 10**9, "maxfun": 10**9, "ftol": 0.0, "gtol": 0.0,
                         "maxcor": LBFGS_MEMORY},
            )
        except _StopOptimisation as stop:
            return stop.reason
        logger.debug("L-BFGS-B stopped after %d evaluations: %s", tracker.step - before, res.message)
        if tracker.step - before < 3 or tracker.best_img is None:
            return "converged"
        x0 = variables_at(tracker.best_img)


def _run_adam(loss_fn: StyleTransferLoss, init01: np.ndarray, tracker: _Tracker,
              learning_rate: float) -> str:
    import keras
    import tensorflow as tf

    image = tf.Variable(init01.astype(np.float32))
    opt = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=ADAM_BETA_1, epsilon=ADAM_EPSILON)
    opt.build([image])

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            losses = loss_fn(image)
        grad = tape.gradient(losses["total"], image)
        finite = tf.reduce_all(tf.math.is_finite(grad))
        opt.apply_gradients([(grad, image)])
        image.assign(tf.clip_by_value(image, 0.0, 1.0))
        return losses, finite

    @tf.function
    def evaluate():
        return loss_fn(image)

    try:
        while True:
            before = image.numpy()  # the image whose loss this step computes
            losses, finite = train_step()
            tracker.record(losses, before, grad_finite=bool(finite))
    except _StopOptimisation as stop:
        if stop.reason != "budget":
            return stop.reason
    # The budget's last step updated the image: evaluate it too (one forward pass).
    final = image.numpy()
    losses = evaluate()
    tracker.level_budget_end += 1
    try:
        tracker.record(losses, final)
    except _StopOptimisation as stop:
        return stop.reason
    return "budget"


def repeatable_threads() -> None:
    """Let TensorFlow run one op at a time (inter-op threads 1), each op still on every core.

    With two or more inter-op threads, ops that are independent in the loss-and-gradient
    graph run concurrently and share the intra-op thread pool; their sums then split
    differently from call to call, and VGG19's image gradient at 512 px differs between
    two calls on the same image in the 8th digit (float32) or the 12th (bfloat16).
    L-BFGS amplifies that into outputs a few grey levels apart. With one inter-op thread
    the gradients are bit-identical and a pass is no slower (measured in
    ``docs/style-transfer.md``). It sets ``TF_NUM_INTEROP_THREADS=1`` unless the
    environment already sets it, which TensorFlow reads when it starts its runtime: call
    it before TensorFlow runs its first op (the command line and the ``stylize`` stage
    do); afterwards it changes nothing.
    """
    import os

    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")


def _upsample01(image01: np.ndarray, height: int, width: int) -> np.ndarray:
    import tensorflow as tf

    out = tf.image.resize(image01, (height, width), method="bicubic", antialias=False)
    return np.clip(out.numpy(), 0.0, 1.0).astype(np.float32)


def stylize(content: np.ndarray, style: np.ndarray | Sequence[np.ndarray], *,
            extractor: FeatureExtractor,
            settings: TransferParams = TransferParams(), weights: LossWeights = LossWeights(),
            style_scale: float = 1.0, seed: int = 0,
            blend_weights: Sequence[float] | None = None, mask: np.ndarray | None = None,
            on_divergence: str = "recover",
            callback: Callable[[dict], Any] | None = None,
            progress: bool = False, preview: Callable[[np.ndarray], Any] | None = None,
            preview_every: int = 1) -> StylizeResult:
    """Gatys neural style transfer of ``content`` in the style of ``style``.

    Parameters
    ----------
    content, style : numpy.ndarray, (H, W, 3) uint8 RGB
        ``style`` may be a list of paintings (any sizes), blended with ``blend_weights``.
    extractor : FeatureExtractor
        ``FeatureExtractor.vgg19(weights)`` or ``FeatureExtractor.from_model(own_cnn)``.
    settings : artstyle.config.TransferParams
        How to optimise (defaults in the schema): ``optimizer`` (``"lbfgs"``: scipy
        L-BFGS-B; ``"adam"``: the tutorial's recipe at ``learning_rate``),
        ``max_evaluations`` (loss-and-gradient evaluations over all scales),
        ``max_side`` (longest output side, px; the photo is reduced, never enlarged),
        ``scales`` (coarse-to-fine scales ending in 1.0, each level starting from the
        previous result upsampled, bicubic; ``[]`` = one scale), ``init``
        (``"colour_matched"``: the photo re-coloured to the painting's colour mean and
        covariance, :func:`artstyle.nst.inputs.match_colour`; ``"content"``: the photo,
        the tutorial's start; ``"noise"``: uniform noise from ``seed``; ``"fast"``: the
        feed-forward engine's result, :func:`artstyle.nst.feedforward.stylize_fast`) and
        ``fourier_exponent`` (L-BFGS: optimise the change to the start image as Fourier
        coefficients with gains ``(f / f_max) ** -p``,
        :func:`artstyle.nst.fourier.fourier_scale`; 0 = the pixels, box-bounded),
        ``preserve_colors`` (the final image takes the photo's YIQ chroma,
        :func:`artstyle.nst.inputs.keep_colours`), ``compute_dtype`` (VGG19's
        convolutions in ``"float32"`` or ``"bfloat16"``; ``"auto"``:
        :func:`artstyle.nst.fast_gradient.resolve_compute_dtype`) and ``memory_limit_mb`` (None = the
        memory available now; a larger estimate, :func:`estimate_memory_mb`, is refused
        before any work).
    weights : artstyle.config.LossWeights
        ``content_weight``, ``style_weight``, ``tv_weight`` (:mod:`artstyle.nst.losses`).
    style_scale : float
        Style image area = content area * ``style_scale**2``.
    seed : int
        Seed for ``init="noise"`` (the only random choice: the same inputs, settings and
        seed give the same output on the same machine and library versions).
    blend_weights : sequence of float or None
        Several paintings: one weight >= 0 each, normalised to sum 1 (None = equal). The
        style loss is the weighted sum of each painting's Gram losses; paintings of weight
        0 are dropped before any work (so weights ``(1, 0)`` are exactly the first style
        alone), and the colour-matched start uses the weighted mixture of their colours.
    mask : numpy.ndarray or None
        Region mask of the photo's aspect ratio (within 2 %, then resized to it; else a
        ``ValueError`` naming both sizes, :func:`artstyle.images.check_mask_aspect`)
        (:func:`artstyle.nst.inputs.style_mask`: white = style,
        black = the photo, grey in between): the image's Gram matrices are taken over the
        white region only (:func:`artstyle.gram.masked_gram_matrix`, Gatys et al.
        2017), and the result is the stylised image inside the mask and the photo outside
        (:func:`artstyle.nst.inputs.composite`). None = the whole picture.
    on_divergence : ``"recover"`` or ``"raise"``
        On a NaN/Inf loss or gradient: return the last good (lowest-loss) image with
        ``diverged=True`` and a warning, or raise :class:`StyleTransferDiverged`.
    callback : callable or None
        Called with each history record (a dict); returning True stops early.
    progress : bool
        Show a tqdm progress bar.
    preview : callable or None
        Called every ``preview_every`` evaluations with the lowest-loss image of the
        current scale so far, (h, w, 3) uint8 at the working size (a live preview).
    preview_every : int

    Returns
    -------
    StylizeResult

    Raises
    ------
    ValueError
        Bad images or arguments.
    OutputTooLarge
        ``max_side`` would need more memory than ``memory_limit_mb`` (one line naming the
        largest side that fits).
    StyleTransferDiverged
        Non-finite loss with ``on_divergence="raise"`` or before any good image, or a
        constant (e.g. black) result.
    """
    start = time.perf_counter()
    content = as_rgb_uint8(content, what="content image")
    styles = [style] if isinstance(style, np.ndarray) else list(style)
    styles = [as_rgb_uint8(s, what="style image") for s in styles]
    blend = normalised_blend_weights(blend_weights, len(styles))
    # Paintings of weight 0 take no part (weights (1, 0) are exactly the first alone).
    styles, blend = zip(*[(s, w) for s, w in zip(styles, blend, strict=True) if w > 0], strict=True)
    styles, blend = list(styles), list(blend)
    mask_u8 = None if mask is None else style_mask(mask)
    if mask_u8 is not None:
        check_mask_aspect(mask_u8.shape, content.shape[:2])   # within 2 %: resized
    if on_divergence not in ("recover", "raise"):
        raise ValueError(f"on_divergence must be 'recover' or 'raise'; got {on_divergence!r}")
    optimizer, init, max_side = settings.optimizer, settings.init, settings.max_side
    if settings.scales == "auto":
        side = min(max(content.shape[:2]), max_side)   # the photo is never enlarged
        scales = auto_scales(side, max_levels=settings.max_evaluations)
    else:
        scales = [float(s) for s in settings.scales] or [1.0]
    budgets = _split_budget(settings.max_evaluations, scales)
    compute_dtype = extractor.effective_compute_dtype(settings.compute_dtype)
    limit_mb = (settings.memory_limit_mb if settings.memory_limit_mb is not None
                else available_memory_mb())
    estimate_mb = check_memory(extractor, content.shape[:2], max_side, limit_mb, optimizer)

    tracker = _Tracker(start, sum(budgets) + (len(scales) if optimizer == "adam" else 0), callback,
                       progress, preview, preview_every)
    image01: np.ndarray | None = None
    diverged = False
    styles_w = styles
    reason = "budget"
    try:
        for level, (scale, budget) in enumerate(zip(scales, budgets, strict=True)):
            pairs = [prepare_images(content, s, max_side=max_side, min_side=extractor.min_side,
                                    style_scale=style_scale, scale=scale) for s in styles]
            content_w, styles_w = pairs[0][0], [p[1] for p in pairs]
            h, w = content_w.shape[:2]
            if image01 is None:
                if init == "content":
                    image01 = content_w[None].astype(np.float32) / 255.0
                elif init == "colour_matched":
                    image01 = match_colour(content_w, styles_w[0] if len(styles_w) == 1 else styles_w,
                                           weights=blend)[None]
                elif init == "fast":
                    from artstyle.nst.feedforward import stylize_fast

                    image01 = (stylize_fast(content_w, styles, weights=blend)
                               .astype(np.float32) / 255.0)[None]
                else:
                    image01 = np.random.default_rng(seed).uniform(0, 1, (1, h, w, 3)).astype(np.float32)
            else:
                image01 = _upsample01(image01, h, w)
            logger.info("level %d: scale %.3g, content %dx%d, style %dx%d, %s for %d evaluations",
                        level, scale, h, w, *styles_w[0].shape[:2], optimizer, budget)
            loss_fn = StyleTransferLoss(extractor, content_w,
                                        styles_w[0] if len(styles_w) == 1 else styles_w, weights,
                                        blend_weights=blend,
                                        mask=None if mask_u8 is None else mask_at(mask_u8, h, w),
                                        compute_dtype=compute_dtype)
            tracker.new_level(level, scale, budget)
            if optimizer == "lbfgs":
                reason = _run_lbfgs(loss_fn, image01, tracker, settings.fourier_exponent)
            else:
                reason = _run_adam(loss_fn, image01, tracker, settings.learning_rate)
            if tracker.best_img is None:
                raise StyleTransferDiverged(
                    f"the loss was non-finite from the first evaluation of level {level} "
                    f"(scale {scale}); no usable image")
            image01 = tracker.best_img
            if reason == "diverged":
                if on_divergence == "raise":
                    raise StyleTransferDiverged(
                        f"loss became non-finite at step {tracker.step} (level {level}, scale {scale})")
                diverged = True
                logger.warning("style transfer diverged; returning the last good image (loss %.6g)",
                               tracker.best_loss)
                break
            if reason == "callback":
                break
    finally:
        tracker.pbar.close()

    if scale != scales[-1]:  # stopped early in a coarse level: bring it to the output size
        content_w = prepare_images(content, styles[0], max_side=max_side,
                                   min_side=extractor.min_side, style_scale=style_scale)[0]
        image01 = _upsample01(image01, *content_w.shape[:2])
    result_img = np.clip(np.rint(image01[0] * 255.0), 0, 255).astype(np.uint8)
    if int(result_img.max()) == int(result_img.min()):
        raise StyleTransferDiverged(f"the result is a constant image (value {int(result_img.min())})")
    if settings.preserve_colors:
        result_img = keep_colours(result_img, content_w)
    if mask_u8 is not None:
        result_img = composite(result_img, content_w, mask_at(mask_u8, *result_img.shape[:2]))
    seconds = time.perf_counter() - start
    logger.info("stylize: %d evaluations in %.1f s, final loss %.6g", tracker.step, seconds,
                tracker.best_loss)
    return StylizeResult(image=result_img, history=tracker.history, seconds=seconds,
                         evaluations=tracker.step, diverged=diverged,
                         style_shape=tuple(styles_w[0].shape[:2]), optimizer=optimizer,
                         extra={"stop_reason": reason, "init": init, "seed": int(seed),
                                "preserve_colors": bool(settings.preserve_colors),
                                "blend_weights": [round(float(b), 6) for b in blend],
                                "mask": mask_u8 is not None,
                                "scales": scales, "budgets": budgets,
                                "compute_dtype": compute_dtype,
                                "estimated_memory_mb": round(estimate_mb, 1),
                                "peak_memory_mb": round(peak_memory_mb(), 1),
                                **({"fourier_exponent": float(settings.fourier_exponent)}
                                   if optimizer == "lbfgs" else {})})
