"""Benchmark: our default style-transfer optimiser against the TensorFlow tutorial's Adam recipe.

Both run in ONE process on the same content/style pair (scikit-learn's ``china.jpg``
and Van Gogh's *The Starry Night* from ``../shared/images/styles``), the same VGG19
ImageNet weights, layers (content ``block5_conv2``; style ``block1_conv1`` ..
``block5_conv1``) and the same loss (:class:`artstyle.nst.losses.StyleTransferLoss`:
Grams divided by H*W, style weight 1e-2, content weight 1e4, TV weight 30 on the
[0, 1] image) at the same working size (longest side 256 px):

(a) recipe: TensorFlow core tutorial "Neural style transfer", run through the library's
    ``optimizer="adam"`` (the same tracker, so both runs carry the same bookkeeping)
    (https://www.tensorflow.org/tutorials/generative/style_transfer): image in [0, 1]
    initialised from the content, ``Adam(learning_rate=0.02, beta_1=0.99, epsilon=0.1)``,
    500 steps, clipping to [0, 1] after each step;
(b) ours: :func:`artstyle.nst.stylize` with the defaults of
    :class:`artstyle.config.TransferParams` for optimiser, scales and start image
    (L-BFGS over the Fourier coefficients of the change to the start image with gains
    ``(f / f_max) ** -0.25``, one full-resolution scale, ``init="colour_matched"``: the
    content photo re-coloured to the painting's colour mean and covariance) on the same
    loss weights; it stops as soon as it reaches the target (cap
    ``--ours-max-evaluations``, loss evaluations over all scales);
(c) ours from the recipe's start image (``init="content"``), to separate what the
    optimiser gains from what the start image gains (``--skip-content-init`` skips it);
(d) ours over the pixels with box bounds instead of Fourier coefficients
    (``fourier_exponent=0``), to show what the parametrisation gains
    (``--skip-pixel-space`` skips it);
(e) ours with TensorFlow's automatic gradients throughout, as the recipe has them
    (``fast_gradient=False``), to show what the library's hand-written gradients gain
    (``--skip-automatic-gradients`` skips it).
(f) ours in float32 where the default computes VGG19's convolutions in bfloat16
    (``compute_dtype: auto`` on a CPU with Intel AMX), to show what bfloat16 gains
    (``--skip-float32`` skips it).

A run in bfloat16 is judged by the float32 loss: after each of its evaluations the
best image so far, rounded to uint8 as it is saved, is scored with the float32 loss
(one forward pass, whose seconds are subtracted from the run's clock), and it stops
when that score reaches the target.

The recipe runs on the Keras VGG19 model with TensorFlow's automatic gradients, as the
tutorial does; ours (b)-(d) use the library default, hand-written gradients (VGG19 as a
:class:`~artstyle.nst.fast_gradient.PlainConvChain`, whose image gradient is a forward
convolution, and :func:`~artstyle.nst.fast_gradient.fast_gram_matrix`'s one-product
gradient): the same loss values, the same image gradient within float32 rounding.

Target: the loss the recipe has after its 500 steps. Reported: loss against seconds for
both, the seconds each needs to reach the target (ours measured at the full 256 px
stage only when coarse-to-fine scales are used; its seconds include the coarse
stages), and the speed-up (goal: >= 5x). Writes a loss-vs-seconds PNG, the two result
panels and a JSON summary into ``--out-dir``.

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/style_transfer.py \\
        [--weights models/pretrained/vgg19_notop.weights.h5] [--max-side 256] \\
        [--recipe-steps 500] [--out-dir reports/benchmarks/style_transfer] [--quality]

Minutes on a 2-core CPU (the recipe's 500 VGG19 forward+backward passes dominate).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from artstyle.config import LossWeights, TransferParams

logger = logging.getLogger("benchmarks.style_transfer")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = REPO / "models" / "pretrained" / "vgg19_notop.weights.h5"
DEFAULT_STYLE = REPO.parent / "shared" / "images" / "styles" / "van-gogh_the-starry-night_1889.jpg"
DEFAULT_OUT = REPO / "reports" / "benchmarks" / "style_transfer"

#: The library's defaults (optimiser, scales, start image, Fourier exponent, Adam step).
DEFAULTS = TransferParams()
#: The tutorial's loss weights: the loss definition both runs share (the library's default
#: style weight, ``LossWeights().style_weight``, is 100x larger).
TUTORIAL_WEIGHTS = LossWeights(content_weight=1e4, style_weight=1e-2, tv_weight=30.0)


def run_recipe(extractor, content: np.ndarray, style: np.ndarray, max_side: int, steps: int) -> dict:
    """The TensorFlow tutorial's Adam recipe on our loss: the library's ``optimizer="adam"``
    (Adam(0.02, beta_1=0.99, epsilon=0.1), clipped to [0, 1] after each step) from the
    content image for ``steps`` steps at full size. History of (step, seconds, losses); its
    last record is the loss of the image after all ``steps`` updates."""
    from artstyle.nst import stylize

    def log(record: dict) -> None:
        if record["step"] % 50 == 0:
            logger.info("recipe step %d: loss %.6g (%.0f s)", record["step"], record["total"],
                        record["seconds"])

    settings = TransferParams(optimizer="adam", learning_rate=DEFAULTS.learning_rate,
                              max_evaluations=steps, max_side=max_side, scales=[], init="content")
    result = stylize(content, style, extractor=extractor, settings=settings,
                     weights=TUTORIAL_WEIGHTS, callback=log)
    return {"history": result.history, "image": result.image, "seconds": result.seconds,
            "final_loss": result.history[-1]["total"]}


def float32_scorer(extractor, content_w: np.ndarray, style_w: np.ndarray):
    """The benchmark's loss in float32 at the working size: a function of a uint8 image
    (H, W, 3) returning its total loss (one forward pass)."""
    import tensorflow as tf

    from artstyle.nst import StyleTransferLoss

    loss = StyleTransferLoss(extractor, content_w, style_w, TUTORIAL_WEIGHTS, compute_dtype="float32")
    total = tf.function(lambda x: loss(x)["total"])
    return lambda image: float(total(tf.constant(image[None].astype(np.float32) / 255.0)))


def float32_history(history: list[dict], scores: list[dict]) -> list[dict]:
    """A bfloat16 run's history as the float32 loss sees it, on a clock without the scoring.

    ``scores``: one ``{"step", "total", "spent"}`` per scored evaluation of the final
    stage (the float32 loss of the best image so far, uint8 as saved, and the seconds
    the scoring took). Every record's ``seconds`` loses the scoring time spent before
    it; a scored record's ``total`` becomes the float32 score (the bfloat16 value is
    kept as ``total_bfloat16``); records without a score keep theirs.
    """
    by_step = {sc["step"]: sc for sc in scores if "step" in sc}
    out, spent = [], 0.0
    for r in history:
        rec = {**r, "seconds": r["seconds"] - spent}
        if r["step"] in by_step:
            rec["total_bfloat16"], rec["total"] = r["total"], by_step[r["step"]]["total"]
            spent += by_step[r["step"]]["spent"]
        out.append(rec)
    return out


def seconds_to_reach(history: list[dict], target: float, stage: int | None = None) -> float:
    """Seconds of the first record (of ``stage`` if given) whose total loss is <= target; inf if none."""
    for r in history:
        if (stage is None or r.get("level") == stage) and math.isfinite(r["total"]) and r["total"] <= target:
            return r["seconds"]
    return math.inf


def loss_at(history: list[dict], seconds: float, stage: int | None = None) -> float:
    """Best total loss reached by ``seconds`` (restricted to ``stage`` if given); nan if none."""
    vals = [r["total"] for r in history
            if r["seconds"] <= seconds and (stage is None or r.get("level") == stage)
            and math.isfinite(r["total"])]
    return min(vals) if vals else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS,
                        help="VGG19 no-top .weights.h5 (stage 'pretrained')")
    parser.add_argument("--random-weights", action="store_true",
                        help="smoke test with random VGG19 weights (numbers meaningless)")
    parser.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    parser.add_argument("--max-side", type=int, default=256)
    parser.add_argument("--recipe-steps", type=int, default=500)
    parser.add_argument("--scales", type=float, nargs="+", default=None,
                        help="ours: coarse-to-fine scales ending in 1.0, e.g. 0.25 0.5 1 for 512 px "
                             "and more (default: the schema's, auto: halved down to 256 px); the budget is split "
                             "in proportion to 1/scale")
    parser.add_argument("--ours-max-evaluations", "--ours-max-iterations", type=int, default=400,
                        help="cap on our loss evaluations (over all scales); ours stops as soon as "
                             "it reaches the target")
    parser.add_argument("--skip-content-init", action="store_true",
                        help="skip run (c): our optimiser from the content photo (the recipe's start)")
    parser.add_argument("--skip-pixel-space", action="store_true",
                        help="skip run (d): our optimiser over the pixels (fourier_exponent=0)")
    parser.add_argument("--skip-automatic-gradients", action="store_true",
                        help="skip run (e): our optimiser with TensorFlow's automatic gradients")
    parser.add_argument("--skip-float32", action="store_true",
                        help="skip run (f): ours in float32 where the default is bfloat16")
    parser.add_argument("--one-scale", action="store_true",
                        help="also run ours at one full-resolution scale, to show what the "
                             "coarse-to-fine scales gain (where they are more than one)")
    parser.add_argument("--speedup-goal", type=float, default=5.0)
    parser.add_argument("--quality", action="store_true",
                        help="instead: one run with ALL library defaults (weights, evaluations) "
                             "at --max-side; writes quality_panel.png and prints the seconds")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from artstyle.nst import repeatable_threads

    repeatable_threads()  # as the command line: one inter-op thread (byte-identical runs)

    from artstyle.images import load_image_source
    from artstyle.nst import (
        FeatureExtractor,
        StyleTransferLoss,
        plot_losses,
        save_panel,
        ssim_to_content,
        stylize,
    )
    from artstyle.nst.inputs import prepare_images
    from artstyle.nst.optimise import auto_scales

    if not args.random_weights and not args.weights.is_file():
        print(f"VGG19 weights not found: {args.weights} (run the 'pretrained' stage, or pass "
              f"--weights PATH; --random-weights for a smoke test)", file=sys.stderr)
        return 2
    weights = None if args.random_weights else args.weights
    content = load_image_source("sklearn:china.jpg")
    style = load_image_source(str(args.style))
    extractor = FeatureExtractor.vgg19(weights)
    # The tutorial's computation: Keras VGG19 and TensorFlow's automatic gradients.
    reference_extractor = FeatureExtractor.vgg19(weights, fast_gradient=False)
    content_w, style_w = prepare_images(content, style, max_side=args.max_side,
                                        min_side=extractor.min_side)
    print(f"content {content.shape[:2]} -> {content_w.shape[:2]}, style {style.shape[:2]} -> "
          f"{style_w.shape[:2]}, weights {'random' if weights is None else weights}", flush=True)

    if args.quality:
        result = stylize(content, style, extractor=extractor,
                         settings=TransferParams(max_side=args.max_side), progress=True)
        label = f"defaults: {result.evaluations} evaluations, {result.seconds:.0f} s"
        panel = save_panel(content_w, style_w, result.image, args.out_dir / "quality_panel.png",
                           titles=("content", "style", label))
        print(f"quality check (library defaults): {result.summary()}, SSIM to content "
              f"{ssim_to_content(result.image, content_w):.3f}; wrote {panel}")
        return 0

    # Warm-up (one-time TensorFlow/oneDNN initialisation) so neither run pays it.
    for ex in (extractor, reference_extractor):
        StyleTransferLoss(ex, content_w, style_w, TUTORIAL_WEIGHTS)(
            content_w[None].astype(np.float32) / 255.0)

    load0 = os.getloadavg()[0]
    logger.info("(a) recipe: Adam, %d steps", args.recipe_steps)
    recipe = run_recipe(reference_extractor, content, style, args.max_side, args.recipe_steps)
    target = recipe["final_loss"]

    if args.scales:
        scales = args.scales
    elif DEFAULTS.scales == "auto":  # as stylize() works them out for this output size
        scales = auto_scales(max(content_w.shape[:2]))
    else:
        scales = DEFAULTS.scales or [1.0]
    # Our default optimiser, scales and start image; the budget (a total over the scales)
    # is raised so that it can reach the target, and it stops as soon as it does at the
    # final (full-resolution) scale.
    budget = max(args.ours_max_evaluations, len(scales))

    float32_loss = float32_scorer(extractor, content_w, style_w)

    def run_ours(init: str, fourier_exponent: float = DEFAULTS.fourier_exponent, ex=extractor,
                 scales: list[float] = scales, compute_dtype: str = DEFAULTS.compute_dtype):
        dtype = ex.effective_compute_dtype(compute_dtype)
        logger.info("ours: %s, scales %s, init %s, Fourier exponent %g, %s gradient, %s",
                    DEFAULTS.optimizer, scales, init, fourier_exponent,
                    "hand-written" if ex.fast_gradient else "automatic", dtype)
        settings = TransferParams(max_side=args.max_side, max_evaluations=max(budget, len(scales)),
                                  init=init, fourier_exponent=fourier_exponent,
                                  scales=scales if len(scales) > 1 else [], compute_dtype=dtype)
        scores: list[dict] = []  # float32 scores of the best image (bfloat16 runs)

        def rescore(image: np.ndarray) -> None:
            if image.shape[:2] == content_w.shape[:2]:
                t0 = time.perf_counter()
                scores.append({"total": float32_loss(image), "spent": time.perf_counter() - t0})

        def reached(record: dict) -> bool:
            if record["scale"] != 1.0:
                return False
            if dtype == "float32":
                return record["total"] <= target
            if scores:
                scores[-1]["step"] = record["step"]
            return bool(scores) and scores[-1]["total"] <= target

        result = stylize(content, style, extractor=ex, settings=settings, weights=TUTORIAL_WEIGHTS,
                         callback=reached, preview=None if dtype == "float32" else rescore)
        result.extra["image_gradient"] = "hand-written" if ex.fast_gradient else "automatic"
        if dtype != "float32":  # judge it by the float32 loss, on a clock without the scoring
            result.history = float32_history(result.history, scores)
            result.seconds -= sum(sc["spent"] for sc in scores)
        return result

    # (b) with every default; (c) the same optimiser from the recipe's start image (the
    # content photo), which separates what the optimiser gains from what the start gains;
    # (d) the default start, optimised over the pixels (what the Fourier space gains).
    runs = {"ours": run_ours(DEFAULTS.init)}
    if not args.skip_content_init and DEFAULTS.init != "content":
        runs["ours, content init"] = run_ours("content")
    if not args.skip_pixel_space and DEFAULTS.fourier_exponent != 0:
        runs["ours, pixels"] = run_ours(DEFAULTS.init, fourier_exponent=0.0)
    if not args.skip_automatic_gradients and extractor.fast_gradient:
        runs["ours, automatic gradients"] = run_ours(DEFAULTS.init, ex=reference_extractor)
    if not args.skip_float32 and runs["ours"].extra.get("compute_dtype") == "bfloat16":
        runs["ours, float32"] = run_ours(DEFAULTS.init, compute_dtype="float32")
    if args.one_scale and len(scales) > 1:  # (g) what coarse-to-fine gains
        runs["ours, one scale"] = run_ours(DEFAULTS.init, scales=[1.0])
    load1 = os.getloadavg()[0]
    ours = runs["ours"]

    t_recipe = seconds_to_reach(recipe["history"], target)
    last_stage = {k: max(r["level"] for r in r_.history) for k, r_ in runs.items()}
    t_runs = {k: seconds_to_reach(r_.history, target, stage=last_stage[k]) for k, r_ in runs.items()}
    speedups = {k: t_recipe / t if math.isfinite(t) and t > 0 else 0.0 for k, t in t_runs.items()}
    speedup = speedups["ours"]
    t_ours = t_runs["ours"]

    # ---- report
    names = list(runs)
    width = max(16, *(len(n) for n in names))
    print("\nloss against seconds (ours: best loss so far at the full-resolution stage)")
    print(f"{'seconds':>9} | {'recipe (Adam)':>14} | " + " | ".join(f"{n:>{width}}" for n in names))
    horizon = max(recipe["seconds"], *(r_.seconds for r_ in runs.values()))
    marks = {round(t, 1) for t in (*t_runs.values(), t_recipe) if math.isfinite(t)}
    for sec in sorted({*np.geomspace(5, horizon, 12).round(1), *marks}):
        print(f"{sec:9.1f} | {loss_at(recipe['history'], sec):14.6g} | " + " | ".join(
            f"{loss_at(runs[n].history, sec, stage=last_stage[n]):>{width}.6g}" for n in names))
    rows = [
        ("start image", "content", *(r_.extra.get("init", "?") for r_ in runs.values())),
        ("optimised variables", "pixels", *("pixels" if not r_.extra.get("fourier_exponent") else
                                            f"Fourier p={r_.extra['fourier_exponent']:g}"
                                            for r_ in runs.values())),
        ("image gradient", "automatic", *(r_.extra["image_gradient"] for r_ in runs.values())),
        ("convolutions in", "float32", *(r_.extra.get("compute_dtype", "float32") for r_ in runs.values())),
        ("evaluations", f"{args.recipe_steps + 1}", *(f"{r_.evaluations}" for r_ in runs.values())),
        ("seconds (whole run)", f"{recipe['seconds']:.1f}", *(f"{r_.seconds:.1f}" for r_ in runs.values())),
        ("s per evaluation", f"{recipe['seconds'] / (args.recipe_steps + 1):.2f}",
         *(f"{r_.seconds / r_.evaluations:.2f}" for r_ in runs.values())),
        ("final loss", f"{recipe['final_loss']:.6g}", *(f"{r_.final_loss:.6g}" for r_ in runs.values())),
        ("seconds to reach target", f"{t_recipe:.1f}", *(f"{t_runs[n]:.1f}" for n in names)),
        ("speed-up", "1.0x", *(f"{speedups[n]:.1f}x" for n in names)),
        ("SSIM to content", f"{ssim_to_content(recipe['image'], content_w):.3f}",
         *(f"{ssim_to_content(r_.image, content_w):.3f}" for r_ in runs.values())),
    ]
    print(f"\ntarget = recipe loss after {args.recipe_steps} steps = {target:.6g}")
    print(f"{'':26} | {'recipe (Adam)':>14} | " + " | ".join(f"{n:>{width}}" for n in names))
    for name, a, *b in rows:
        print(f"{name:26} | {a:>14} | " + " | ".join(f"{v:>{width}}" for v in b))
    n_ours, s_ours = ours.evaluations, ours.seconds / ours.evaluations
    s_recipe = recipe["seconds"] / (args.recipe_steps + 1)
    print(f"\nwhere ours gains: evaluations {args.recipe_steps + 1} -> {n_ours} "
          f"({(args.recipe_steps + 1) / n_ours:.2f}x fewer), seconds per evaluation {s_recipe:.2f} -> "
          f"{s_ours:.2f} ({s_recipe / s_ours:.2f}x less)")
    verdict = "MET" if speedup >= args.speedup_goal else "NOT MET"
    print(f"\nspeed-up to the recipe's {args.recipe_steps}-step loss: {speedup:.1f}x (goal >= {args.speedup_goal:g}x: "
          f"{verdict}); load average {load0:.1f} -> {load1:.1f} on {os.cpu_count()} CPUs")

    out = args.out_dir
    curves = {f"recipe Adam ({args.recipe_steps} steps)": recipe["history"]}
    for n, r_ in runs.items():
        curves[f"{n} ({r_.optimizer}, {r_.extra.get('init', '?')})"] = [
            r for r in r_.history if r["level"] == last_stage[n]]
    plot = plot_losses(curves, out / "loss_vs_seconds.png",
                       hline=target, title=f"Style transfer at {args.max_side} px: loss vs seconds")
    save_panel(content_w, style_w, recipe["image"], out / "panel_recipe.png",
               titles=("content", "style", f"recipe Adam {args.recipe_steps} steps"))
    save_panel(content_w, style_w, ours.image, out / "panel_ours.png",
               titles=("content", "style", f"ours {ours.optimizer} {ours.evaluations} evaluations"))
    summary = {
        "max_side": args.max_side, "recipe_steps": args.recipe_steps, "target_loss": target,
        "recipe": {"seconds": recipe["seconds"], "final_loss": recipe["final_loss"],
                   "seconds_to_target": t_recipe},
        "ours": {**ours.summary(), "seconds_to_target": t_ours, "scales": scales,
                 "init": DEFAULTS.init, "fourier_exponent": DEFAULTS.fourier_exponent},
        **{key: {**runs[name].summary(), "seconds_to_target": t_runs[name], "speedup": speedups[name],
                 "history": runs[name].history}
           for name, key in (("ours, pixels", "ours_pixels"), ("ours, content init", "ours_content_init"),
                             ("ours, automatic gradients", "ours_automatic_gradients"),
                             ("ours, one scale", "ours_one_scale"), ("ours, float32", "ours_float32"))
           if name in runs},
        "speedup": speedup, "goal": args.speedup_goal, "met": speedup >= args.speedup_goal,
        "load_average": [load0, load1], "cpus": os.cpu_count(), "random_weights": weights is None,
        "recipe_history": recipe["history"], "ours_history": ours.history,
    }
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=1, default=float))
    os.replace(tmp, out / "summary.json")
    print(f"wrote {plot}, {out / 'panel_recipe.png'}, {out / 'panel_ours.png'}, {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
