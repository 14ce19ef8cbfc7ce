"""Benchmark: our default style-transfer optimiser against the TensorFlow tutorial's Adam recipe.

Both run in ONE process on the same content/style pair (scikit-learn's ``china.jpg``
and Van Gogh's *The Starry Night* from ``../shared/images/styles``), the same VGG19
ImageNet weights, layers (content ``block5_conv2``; style ``block1_conv1`` ..
``block5_conv1``) and the same loss (:class:`artstyle.style_transfer.StyleTransferLoss`:
Grams divided by H*W, style weight 1e-2, content weight 1e4, TV weight 30 on the
[0, 1] image) at the same working size (longest side 256 px):

(a) recipe: TensorFlow core tutorial "Neural style transfer", run through the library's
    ``optimizer="adam"`` (the same tracker, so both runs carry the same bookkeeping)
    (https://www.tensorflow.org/tutorials/generative/style_transfer): image in [0, 1]
    initialised from the content, ``Adam(learning_rate=0.02, beta_1=0.99, epsilon=0.1)``,
    500 steps, clipping to [0, 1] after each step;
(b) ours: :func:`artstyle.style_transfer.stylize` with its default optimiser and
    schedule (L-BFGS-B with box bounds, one full-resolution stage) on the same loss
    weights; it stops as soon as it reaches the target (cap ``--ours-max-iterations``).

Target: the loss the recipe has after its 500 steps. Reported: loss against seconds for
both, the seconds each needs to reach the target (ours measured at the full 256 px
stage only when a coarse-to-fine schedule is used; its seconds include the coarse
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
from pathlib import Path

import numpy as np

logger = logging.getLogger("benchmarks.style_transfer")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = REPO / "models" / "pretrained" / "vgg19_notop.weights.h5"
DEFAULT_STYLE = REPO.parent / "shared" / "images" / "styles" / "van-gogh_the-starry-night_1889.jpg"
DEFAULT_OUT = REPO / "reports" / "benchmarks" / "style_transfer"

# The tutorial's loss weights: the loss definition both runs share (library default style weight differs).
CONTENT_WEIGHT = 1e4
STYLE_WEIGHT = 1e-2
TV_WEIGHT = 30.0


def run_recipe(st, extractor, content: np.ndarray, style: np.ndarray, max_side: int, steps: int) -> dict:
    """The TensorFlow tutorial's Adam recipe on our loss: the library's ``optimizer="adam"``
    (Adam(0.02, beta_1=0.99, epsilon=0.1), clipped to [0, 1] after each step) from the
    content image for ``steps`` steps at full size. History of (step, seconds, losses); its
    last record is the loss of the image after all ``steps`` updates."""

    def log(record: dict) -> None:
        if record["step"] % 50 == 0:
            logger.info("recipe step %d: loss %.6g (%.0f s)", record["step"], record["total"],
                        record["seconds"])

    result = st.stylize(content, style, extractor=extractor, max_side=max_side,
                        content_weight=CONTENT_WEIGHT, style_weight=STYLE_WEIGHT,
                        tv_weight=TV_WEIGHT, optimizer="adam",
                        learning_rate=st.DEFAULT_ADAM_LEARNING_RATE, iterations=steps,
                        schedule=None, init="content", callback=log)
    return {"history": result.history, "image": result.image, "seconds": result.seconds,
            "final_loss": result.history[-1]["total"]}


def seconds_to_reach(history: list[dict], target: float, stage: int | None = None) -> float:
    """Seconds of the first record (of ``stage`` if given) whose total loss is <= target; inf if none."""
    for r in history:
        if (stage is None or r.get("stage") == stage) and math.isfinite(r["total"]) and r["total"] <= target:
            return r["seconds"]
    return math.inf


def loss_at(history: list[dict], seconds: float, stage: int | None = None) -> float:
    """Best total loss reached by ``seconds`` (restricted to ``stage`` if given); nan if none."""
    vals = [r["total"] for r in history
            if r["seconds"] <= seconds and (stage is None or r.get("stage") == stage)
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
    parser.add_argument("--ours-max-iterations", type=int, default=400,
                        help="cap on our loss evaluations; ours stops as soon as it reaches the target")
    parser.add_argument("--speedup-goal", type=float, default=5.0)
    parser.add_argument("--quality", action="store_true",
                        help="instead: one run with ALL library defaults (weights, iterations) "
                             "at --max-side; writes quality_panel.png and prints the seconds")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from sklearn.datasets import load_sample_image

    from artstyle import style_transfer as st

    if not args.random_weights and not args.weights.is_file():
        print(f"VGG19 weights not found: {args.weights} (run the 'pretrained' stage, or pass "
              f"--weights PATH; --random-weights for a smoke test)", file=sys.stderr)
        return 2
    weights = None if args.random_weights else args.weights
    content = load_sample_image("china.jpg")
    style = st.load_image(args.style)
    extractor = st.FeatureExtractor.vgg19(weights)
    content_w, style_w = st.prepare_images(content, style, max_side=args.max_side,
                                           min_side=extractor.min_side)
    print(f"content {content.shape[:2]} -> {content_w.shape[:2]}, style {style.shape[:2]} -> "
          f"{style_w.shape[:2]}, weights {'random' if weights is None else weights}", flush=True)

    if args.quality:
        result = st.stylize(content, style, extractor=extractor, max_side=args.max_side, progress=True)
        label = f"defaults: {result.iterations} it, {result.seconds:.0f} s"
        panel = st.save_panel(content_w, style_w, result.image, args.out_dir / "quality_panel.png",
                              titles=("content", "style", label))
        print(f"quality check (library defaults): {result.summary()}, SSIM to content "
              f"{st.ssim_to_content(result.image, content_w):.3f}; wrote {panel}")
        return 0

    # Warm-up (one-time TensorFlow/oneDNN initialisation) so neither run pays it.
    st.StyleTransferLoss(extractor, content_w, style_w)(content_w[None].astype(np.float32) / 255.0)

    load0 = os.getloadavg()[0]
    logger.info("(a) recipe: Adam, %d steps", args.recipe_steps)
    recipe = run_recipe(st, extractor, content, style, args.max_side, args.recipe_steps)
    target = recipe["final_loss"]

    logger.info("(b) ours: %s, schedule %s", st.DEFAULT_OPTIMIZER, st.DEFAULT_SCHEDULE)
    scales = st.DEFAULT_SCHEDULE or (1.0,)
    # Our default optimiser and schedule; the budget is raised so that it can reach the
    # target, and it stops as soon as it does at the final (full-resolution) stage.
    budget = [max(1, args.ours_max_iterations // len(scales))] * len(scales)

    def reached(record: dict) -> bool:
        return record["scale"] == scales[-1] and record["total"] <= target

    ours = st.stylize(content, style, extractor=extractor, max_side=args.max_side,
                      content_weight=CONTENT_WEIGHT, style_weight=STYLE_WEIGHT, tv_weight=TV_WEIGHT,
                      iterations=budget if len(budget) > 1 else budget[0], callback=reached)
    load1 = os.getloadavg()[0]
    last_stage = max(r["stage"] for r in ours.history)
    full_res = [r for r in ours.history if r["stage"] == last_stage]

    t_recipe = seconds_to_reach(recipe["history"], target)
    t_ours = seconds_to_reach(ours.history, target, stage=last_stage)
    speedup = t_recipe / t_ours if math.isfinite(t_ours) and t_ours > 0 else 0.0

    # ---- report
    print("\nloss against seconds (ours: best loss so far at the full-resolution stage)")
    print(f"{'seconds':>9} | {'recipe (Adam)':>14} | {'ours (' + ours.optimizer + ')':>14}")
    horizon = max(recipe["seconds"], ours.seconds)
    for sec in sorted({*np.geomspace(5, horizon, 12).round(1), round(t_ours, 1), round(t_recipe, 1)}):
        if not math.isfinite(sec):
            continue
        print(f"{sec:9.1f} | {loss_at(recipe['history'], sec):14.6g} | "
              f"{loss_at(ours.history, sec, stage=last_stage):14.6g}")
    rows = [
        ("evaluations", f"{args.recipe_steps + 1}", f"{ours.iterations}"),
        ("seconds (whole run)", f"{recipe['seconds']:.1f}", f"{ours.seconds:.1f}"),
        ("s per evaluation", f"{recipe['seconds'] / (args.recipe_steps + 1):.2f}",
         f"{ours.seconds / ours.iterations:.2f}"),
        ("final loss", f"{recipe['final_loss']:.6g}", f"{ours.final_loss:.6g}"),
        ("seconds to reach target", f"{t_recipe:.1f}", f"{t_ours:.1f}"),
        ("SSIM to content", f"{st.ssim_to_content(recipe['image'], content_w):.3f}",
         f"{st.ssim_to_content(ours.image, content_w):.3f}"),
    ]
    print(f"\ntarget = recipe loss after {args.recipe_steps} steps = {target:.6g}")
    print(f"{'':26} | {'recipe (Adam)':>14} | {'ours':>14}")
    for name, a, b in rows:
        print(f"{name:26} | {a:>14} | {b:>14}")
    verdict = "MET" if speedup >= args.speedup_goal else "NOT MET"
    print(f"\nspeed-up to the recipe's {args.recipe_steps}-step loss: {speedup:.1f}x (goal >= {args.speedup_goal:g}x: "
          f"{verdict}); load average {load0:.1f} -> {load1:.1f} on {os.cpu_count()} CPUs")

    out = args.out_dir
    plot = st.plot_losses({f"recipe Adam ({args.recipe_steps} steps)": recipe["history"],
                           f"ours {ours.optimizer}": full_res}, out / "loss_vs_seconds.png",
                          hline=target, title=f"Style transfer at {args.max_side} px: loss vs seconds")
    st.save_panel(content_w, style_w, recipe["image"], out / "panel_recipe.png",
                  titles=("content", "style", f"recipe Adam {args.recipe_steps} steps"))
    st.save_panel(content_w, style_w, ours.image, out / "panel_ours.png",
                  titles=("content", "style", f"ours {ours.optimizer} {ours.iterations} it"))
    summary = {
        "max_side": args.max_side, "recipe_steps": args.recipe_steps, "target_loss": target,
        "recipe": {"seconds": recipe["seconds"], "final_loss": recipe["final_loss"],
                   "seconds_to_target": t_recipe},
        "ours": {**ours.summary(), "seconds_to_target": t_ours, "schedule": st.DEFAULT_SCHEDULE},
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
