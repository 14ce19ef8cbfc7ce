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
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from artstyle.config import LossWeights, TransferParams
from artstyle.errors import ArtstyleError
from artstyle.images import as_rgb_uint8
from artstyle.nst.extractor import FeatureExtractor
from artstyle.nst.fourier import fourier_image, fourier_scale
from artstyle.nst.inputs import match_colour, prepare_images
from artstyle.nst.losses import StyleTransferLoss

logger = logging.getLogger(__name__)

#: Adam settings of the tutorial recipe.
ADAM_BETA_1 = 0.99
ADAM_EPSILON = 0.1


class StyleTransferDiverged(ArtstyleError, RuntimeError):
    """The style-transfer loss became NaN/Inf (or the result is degenerate) and no usable image exists."""


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
        One record per loss evaluation: ``step`` (1-based, counted over all stages),
        ``seconds`` (since the call started), ``total``, ``content``, ``style``, ``tv``
        (weighted loss terms), ``stage``, ``scale``, ``height``, ``width``.
    seconds : float
        Wall-clock seconds of the whole call.
    evaluations : int
        Loss-and-gradient evaluations done (all scales).
    diverged : bool
        The loss became NaN/Inf and the last good image was returned instead.
    style_shape : (H, W)
        Working size of the style image at the final stage.
    optimizer : str
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
        last_stage = max((r["stage"] for r in self.history), default=0)
        finite = [r for r in self.history if r["stage"] == last_stage and math.isfinite(r["total"])]
        return dict(min(finite, key=lambda r: r["total"])) if finite else {}

    @property
    def final_loss(self) -> float:
        """Lowest total loss recorded at the final scale (NaN when there is none)."""
        return float(self.best_record.get("total", float("nan")))

    def summary(self) -> dict[str, Any]:
        """Scalar metrics for reports/DVC (JSON-serialisable)."""
        return {
            "seconds": round(self.seconds, 3), "evaluations": self.evaluations,
            "final_loss": self.final_loss, "diverged": self.diverged, "optimizer": self.optimizer,
            "height": int(self.image.shape[0]), "width": int(self.image.shape[1]),
            "style_height": int(self.style_shape[0]), "style_width": int(self.style_shape[1]),
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
        self.stage = 0
        self.scale = 1.0
        self.stage_budget_end = 0

    def new_stage(self, stage: int, scale: float, evaluations: int) -> None:
        self.stage, self.scale = stage, scale
        self.best_img, self.best_loss = None, math.inf
        self.stage_budget_end = self.step + evaluations

    def record(self, losses: Mapping[str, Any], image01: np.ndarray, grad_finite: bool = True) -> None:
        """Record one evaluation of ``image01`` (1, H, W, 3); raise _StopOptimisation when done."""
        vals = {k: float(v) for k, v in losses.items()}
        self.step += 1
        rec = {"step": self.step, "seconds": time.perf_counter() - self.start, **vals,
               "stage": self.stage, "scale": self.scale,
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
        if self.step >= self.stage_budget_end:
            raise _StopOptimisation("budget")


#: L-BFGS-B starts with an identity Hessian guess, so its first step moves by the raw
#: gradient (huge here: the image leaps to the box corners and the line search backs off
#: over several evaluations). The objective seen by scipy is therefore divided by a
#: constant chosen so that the first step moves no variable by more than this (pixels in
#: [0, 1], or Fourier coefficients in the same units).
LBFGS_FIRST_STEP = 0.05
#: L-BFGS memory (number of correction pairs).
LBFGS_MEMORY = 20


def _split_budget(total: int, n_scales: int) -> list[int]:
    """``total`` evaluations over ``n_scales`` stages: equal shares, the rest to the last."""
    if total < n_scales:
        raise ValueError(f"max_evaluations ({total}) must be at least one per scale ({n_scales})")
    share = total // n_scales
    return [share] * (n_scales - 1) + [total - share * (n_scales - 1)]


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
    tracker.stage_budget_end += 1
    try:
        tracker.record(losses, final)
    except _StopOptimisation as stop:
        return stop.reason
    return "budget"


def _upsample01(image01: np.ndarray, height: int, width: int) -> np.ndarray:
    import tensorflow as tf

    out = tf.image.resize(image01, (height, width), method="bicubic", antialias=False)
    return np.clip(out.numpy(), 0.0, 1.0).astype(np.float32)


def stylize(content: np.ndarray, style: np.ndarray, *, extractor: FeatureExtractor,
            settings: TransferParams = TransferParams(), weights: LossWeights = LossWeights(),
            style_scale: float = 1.0, seed: int = 0, on_divergence: str = "recover",
            callback: Callable[[dict], Any] | None = None,
            progress: bool = False, preview: Callable[[np.ndarray], Any] | None = None,
            preview_every: int = 1) -> StylizeResult:
    """Gatys neural style transfer of ``content`` in the style of ``style``.

    Parameters
    ----------
    content, style : numpy.ndarray, (H, W, 3) uint8 RGB
    extractor : FeatureExtractor
        ``FeatureExtractor.vgg19(weights)`` or ``FeatureExtractor.from_model(own_cnn)``.
    settings : artstyle.config.TransferParams
        How to optimise (defaults in the schema): ``optimizer`` (``"lbfgs"``: scipy
        L-BFGS-B; ``"adam"``: the tutorial's recipe at ``learning_rate``),
        ``max_evaluations`` (loss-and-gradient evaluations over all scales),
        ``max_side`` (longest output side, px; the photo is reduced, never enlarged),
        ``scales`` (coarse-to-fine scales ending in 1.0, each stage starting from the
        previous result upsampled, bicubic; ``[]`` = one scale), ``init``
        (``"colour_matched"``: the photo re-coloured to the painting's colour mean and
        covariance, :func:`artstyle.nst.inputs.match_colour`; ``"content"``: the photo,
        the tutorial's start; ``"noise"``: uniform noise from ``seed``) and
        ``fourier_exponent`` (L-BFGS: optimise the change to the start image as Fourier
        coefficients with gains ``(f / f_max) ** -p``,
        :func:`artstyle.nst.fourier.fourier_scale`; 0 = the pixels, box-bounded).
    weights : artstyle.config.LossWeights
        ``content_weight``, ``style_weight``, ``tv_weight`` (:mod:`artstyle.nst.losses`).
    style_scale : float
        Style image area = content area * ``style_scale**2``.
    seed : int
        Seed for ``init="noise"``.
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
    StyleTransferDiverged
        Non-finite loss with ``on_divergence="raise"`` or before any good image, or a
        constant (e.g. black) result.
    """
    start = time.perf_counter()
    content = as_rgb_uint8(content, what="content image")
    style = as_rgb_uint8(style, what="style image")
    if on_divergence not in ("recover", "raise"):
        raise ValueError(f"on_divergence must be 'recover' or 'raise'; got {on_divergence!r}")
    optimizer, init, max_side = settings.optimizer, settings.init, settings.max_side
    scales = [float(s) for s in settings.scales] or [1.0]
    budgets = _split_budget(settings.max_evaluations, len(scales))

    tracker = _Tracker(start, sum(budgets) + (len(scales) if optimizer == "adam" else 0), callback,
                       progress, preview, preview_every)
    image01: np.ndarray | None = None
    diverged = False
    style_w = style
    reason = "budget"
    try:
        for stage, (scale, budget) in enumerate(zip(scales, budgets, strict=True)):
            content_w, style_w = prepare_images(content, style, max_side=max_side,
                                                min_side=extractor.min_side, style_scale=style_scale,
                                                scale=scale)
            h, w = content_w.shape[:2]
            if image01 is None:
                if init == "content":
                    image01 = content_w[None].astype(np.float32) / 255.0
                elif init == "colour_matched":
                    image01 = match_colour(content_w, style_w)[None]
                else:
                    image01 = np.random.default_rng(seed).uniform(0, 1, (1, h, w, 3)).astype(np.float32)
            else:
                image01 = _upsample01(image01, h, w)
            logger.info("stage %d: scale %.3g, content %dx%d, style %dx%d, %s for %d evaluations",
                        stage, scale, h, w, *style_w.shape[:2], optimizer, budget)
            loss_fn = StyleTransferLoss(extractor, content_w, style_w, weights)
            tracker.new_stage(stage, scale, budget)
            if optimizer == "lbfgs":
                reason = _run_lbfgs(loss_fn, image01, tracker, settings.fourier_exponent)
            else:
                reason = _run_adam(loss_fn, image01, tracker, settings.learning_rate)
            if tracker.best_img is None:
                raise StyleTransferDiverged(
                    f"the loss was non-finite from the first evaluation of stage {stage} "
                    f"(scale {scale}); no usable image")
            image01 = tracker.best_img
            if reason == "diverged":
                if on_divergence == "raise":
                    raise StyleTransferDiverged(
                        f"loss became non-finite at step {tracker.step} (stage {stage}, scale {scale})")
                diverged = True
                logger.warning("style transfer diverged; returning the last good image (loss %.6g)",
                               tracker.best_loss)
                break
            if reason == "callback":
                break
    finally:
        tracker.pbar.close()

    if scale != scales[-1]:  # stopped early in a coarse stage: bring it to the output size
        final_shape = prepare_images(content, style, max_side=max_side, min_side=extractor.min_side,
                                     style_scale=style_scale)[0].shape[:2]
        image01 = _upsample01(image01, *final_shape)
    result_img = np.clip(np.rint(image01[0] * 255.0), 0, 255).astype(np.uint8)
    if int(result_img.max()) == int(result_img.min()):
        raise StyleTransferDiverged(f"the result is a constant image (value {int(result_img.min())})")
    seconds = time.perf_counter() - start
    logger.info("stylize: %d evaluations in %.1f s, final loss %.6g", tracker.step, seconds,
                tracker.best_loss)
    return StylizeResult(image=result_img, history=tracker.history, seconds=seconds,
                         evaluations=tracker.step, diverged=diverged,
                         style_shape=tuple(style_w.shape[:2]), optimizer=optimizer,
                         extra={"stop_reason": reason, "init": init, "seed": int(seed),
                                **({"fourier_exponent": float(settings.fourier_exponent)}
                                   if optimizer == "lbfgs" else {})})
