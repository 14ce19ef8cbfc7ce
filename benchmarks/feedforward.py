"""Benchmark: the feed-forward engine against Gatys, and Gatys started from it.

Two parts (``--part engines``, ``--part init``, or both):

engines
    Both engines at 256, 512 and 1024 px (longest side): load time (creating the
    onnxruntime sessions; building VGG19 and its loss for Gatys), seconds after loading,
    the judge's style hit (the judge's movement of the output equals its movement of the
    painting; the ``stylize.judge`` model, as the ``stylize`` stage judges) and SSIM to the
    photo. Feed-forward: every content x style pair of ``--contents`` x ``--styles``, each
    run ``--repeats`` times after one warm-up (median); each photo resized to the row's
    side (enlarged if smaller). Gatys (the schema's command defaults,
    :class:`artstyle.config.TransferParams`, at one full-size scale, in
    ``--compute-dtype``): one pair, ``--gatys-evaluations`` evaluations, and the seconds of
    the default 150 evaluations extrapolated from the seconds per evaluation (marked ``~``).
init
    ``init: fast`` against today's default start (``colour_matched``) at ``--max-side``
    (512 px): L-BFGS on the TensorFlow tutorial's loss (``benchmarks/style_transfer.py``:
    weights 1e4 / 1e-2 / 30, ``china.jpg`` x *The Starry Night*) until it reaches the
    recipe's 500-step Adam loss, ``--target`` (the value measured in
    ``docs/benchmarks.md``; ``--recipe-steps N`` runs the recipe instead). Reports
    evaluations and seconds to the target (the feed-forward pass counted in ``fast``'s
    seconds).
network
    The two networks alone (the transformer at each side, the style vector given; the
    style predictor on one painting), wall-clock and process CPU seconds.
dtype
    Gatys seconds per evaluation in float32 against bfloat16 on this CPU (what
    ``compute_dtype: auto`` decides from, :func:`artstyle.nst.fast_gradient.bfloat16_is_fast`).

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/feedforward.py --part engines
    PYTHONPATH=src .venv/bin/python benchmarks/feedforward.py --part init --target 5.888e6
    PYTHONPATH=src .venv/bin/python benchmarks/feedforward.py --part dtype --max-side 384
    PYTHONPATH=src .venv/bin/python benchmarks/feedforward.py --part network --repeats 5

Needs ``models/pretrained`` (VGG19), ``models/pretrained_feedforward`` and the judge
(``models/vgg19_transfer``). Prints tables (and the CPU model and load average);
``--json PATH`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import time
from pathlib import Path

from machine import cpu_model

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
SHARED = REPO.parent / "shared" / "images"
DEFAULT_STYLES = sorted(str(p) for p in (SHARED / "styles").glob("*") if p.is_file())
DEFAULT_CONTENTS = ["sklearn:china.jpg"] + sorted(
    str(p) for p in (SHARED / "contents").glob("*") if p.is_file())
logger = logging.getLogger("benchmarks.feedforward")


class Judge:
    """The judge: the movement a trained member (any kind, or ``best``) sees in an image."""

    def __init__(self, name: str):
        import os

        from artstyle.classifier import load_classifier

        os.chdir(REPO)                       # the pipeline's relative paths (models/)
        self.classifier = load_classifier(name)

    def movement(self, image: np.ndarray) -> str:
        p = self.classifier.proba([image])[0]
        return self.classifier.classes[int(p.argmax())]


def at_side(image: np.ndarray, side: int) -> np.ndarray:
    """The photo resized (Lanczos) so that its longest side is ``side`` px, enlarged if
    need be: every engine works at exactly the size of the row."""
    from artstyle.images import resize_image

    h, w = image.shape[:2]
    f = side / max(h, w)
    return resize_image(image, max(1, round(h * f)), max(1, round(w * f)))


def part_engines(args, judge: Judge) -> list[dict]:
    from artstyle.images import load_image_source
    from artstyle.nst.feedforward import load_engine, stylize_fast
    from artstyle.nst.outputs import ssim_to_content

    contents = {c: load_image_source(c) for c in args.contents}
    styles = {s: load_image_source(s) for s in args.styles}
    style_movement = {s: judge.movement(img) for s, img in styles.items()}
    t0 = time.perf_counter()
    engine = load_engine(REPO / "models" / "pretrained_feedforward")
    load_fast = time.perf_counter() - t0
    rows = []
    for side in args.sides:
        secs, hits, ssims = [], [], []
        for content in contents.values():
            content = at_side(content, side)
            for s, style in styles.items():
                stylize_fast(content, style, engine=engine)   # warm-up
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    out = stylize_fast(content, style, engine=engine)
                    times.append(time.perf_counter() - t)
                secs.append(statistics.median(times))
                hits.append(judge.movement(out) == style_movement[s])
                ssims.append(ssim_to_content(out, content))
        shape = at_side(contents[args.contents[0]], side).shape
        rows.append({"engine": "fast", "side": side, "size": f"{shape[1]}x{shape[0]}",
                     "load_s": load_fast, "seconds": statistics.median(secs),
                     "seconds_max": max(secs), "style_hit": float(np.mean(hits)),
                     "ssim": float(np.mean(ssims)), "pairs": len(secs)})
        logger.info("fast %d px: %s", side, rows[-1])
    if args.skip_gatys:
        return rows
    from artstyle.config import StylizeParams, TransferParams
    from artstyle.nst.extractor import FeatureExtractor
    from artstyle.nst.optimise import stylize

    s0 = args.styles[min(1, len(args.styles) - 1)]
    layers = StylizeParams().vgg19
    defaults = TransferParams()
    for side in args.sides:
        t0 = time.perf_counter()
        extractor = FeatureExtractor.vgg19(REPO / "models" / "pretrained" / "vgg19_notop.weights.h5",
                                           content_layers=layers.content_layers,
                                           style_layers=layers.style_layers)
        content = at_side(contents[args.contents[0]], side)
        settings = TransferParams(max_side=side, max_evaluations=args.gatys_evaluations,
                                  compute_dtype=args.compute_dtype, scales=[])
        load_gatys = time.perf_counter() - t0
        r = stylize(content, styles[s0], extractor=extractor, settings=settings, weights=layers)
        per_eval = r.seconds / max(r.evaluations, 1)
        rows.append({"engine": f"gatys ({r.extra['compute_dtype']})", "side": side,
                     "size": f"{r.image.shape[1]}x{r.image.shape[0]}", "load_s": load_gatys,
                     "seconds": per_eval * defaults.max_evaluations,
                     "estimated": r.evaluations < defaults.max_evaluations,
                     "evaluations_run": r.evaluations, "seconds_run": r.seconds,
                     "style_hit": float(judge.movement(r.image) == style_movement[s0]),
                     "ssim": ssim_to_content(r.image, content), "pairs": 1})
        logger.info("gatys %d px: %s", side, rows[-1])
    return rows


def part_init(args) -> dict:
    import style_transfer as ST

    from artstyle.config import TransferParams
    from artstyle.images import load_image_source
    from artstyle.nst.extractor import FeatureExtractor
    from artstyle.nst.feedforward import load_engine
    from artstyle.nst.inputs import prepare_images
    from artstyle.nst.optimise import stylize
    from artstyle.nst.outputs import ssim_to_content

    content = load_image_source("sklearn:china.jpg")
    style = load_image_source(str(args.style))
    extractor = FeatureExtractor.vgg19(REPO / "models" / "pretrained" / "vgg19_notop.weights.h5")
    content_w, _ = prepare_images(content, style, max_side=args.max_side,
                                  min_side=extractor.min_side)
    load_engine(REPO / "models" / "pretrained_feedforward")   # loaded once, as the page does
    if args.target is not None:
        target = args.target
    else:
        recipe = ST.run_recipe(FeatureExtractor.vgg19(
            REPO / "models" / "pretrained" / "vgg19_notop.weights.h5", fast_gradient=False),
            content, style, args.max_side, args.recipe_steps)
        target = recipe["final_loss"]
    out = {"target": target, "max_side": args.max_side, "compute_dtype": args.compute_dtype}
    cwd = os.getcwd()
    os.chdir(REPO)   # the engine's default folder is relative to the repository
    try:
        for init in args.inits:
            settings = TransferParams(max_side=args.max_side, max_evaluations=args.max_evaluations,
                                      init=init, compute_dtype=args.compute_dtype)
            first: dict = {}

            def reached(record: dict, first: dict = first) -> bool:
                first.setdefault("start", record["total"])
                return record["total"] <= target

            r = stylize(content, style, extractor=extractor, settings=settings,
                        weights=ST.TUTORIAL_WEIGHTS, callback=reached)
            t = ST.seconds_to_reach(r.history, target)
            n = next((h["step"] for h in r.history if h["total"] <= target), math.inf)
            out[init] = {"evaluations_to_target": n, "seconds_to_target": t,
                         "start_loss": first.get("start"), "final_loss": r.final_loss,
                         "seconds_per_evaluation": r.seconds / max(r.evaluations, 1),
                         "ssim": ssim_to_content(r.image, content_w)}
            logger.info("init %s: %s", init, out[init])
    finally:
        os.chdir(cwd)
    return out


def part_network(args) -> list[dict]:
    """The two networks alone: the transformer at each side (the style vector given) and
    the style predictor, medians of ``--repeats`` calls after a warm-up, wall-clock and
    process CPU seconds (CPU time is what a loaded machine cannot inflate)."""
    from artstyle.images import load_image_source
    from artstyle.nst.feedforward import load_engine

    engine = load_engine(REPO / "models" / "pretrained_feedforward")
    photo = load_image_source(args.contents[0])
    painting = load_image_source(args.styles[0])

    def timed(fn):
        fn()
        wall, cpu = [], []
        for _ in range(args.repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        return statistics.median(wall), statistics.median(cpu)

    rows = []
    vector = engine.style_vector(painting)
    wall, cpu = timed(lambda: engine.style_vector(painting))
    rows.append({"network": "style prediction (painting -> vector)",
                 "size": f"{painting.shape[1]}x{painting.shape[0]} -> 256x256",
                 "wall_s": wall, "cpu_s": cpu})
    for side in args.sides:
        content = at_side(photo, side)
        wall, cpu = timed(lambda content=content: engine.render(content, vector))
        rows.append({"network": "style transform", "size": f"{content.shape[1]}x{content.shape[0]}",
                     "wall_s": wall, "cpu_s": cpu})
    return rows


def part_dtype(args) -> dict:
    """Gatys seconds per evaluation in float32 and bfloat16 (VGG19, L-BFGS, one scale at
    ``--max-side``), ``--dtype-evaluations`` each, alternated ``--repeats`` times (medians)."""
    from artstyle.config import TransferParams
    from artstyle.images import load_image_source
    from artstyle.nst.extractor import FeatureExtractor
    from artstyle.nst.optimise import stylize

    content = load_image_source("sklearn:china.jpg")
    style = load_image_source(str(args.style))
    extractor = FeatureExtractor.vgg19(REPO / "models" / "pretrained" / "vgg19_notop.weights.h5")
    per_eval: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    losses: dict[str, float] = {}
    for dtype in per_eval:   # warm-up: tracing and oneDNN kernels of both
        stylize(content, style, extractor=extractor, settings=TransferParams(
            max_side=args.max_side, max_evaluations=2, compute_dtype=dtype))
    for _ in range(args.repeats):
        for dtype, seconds in per_eval.items():
            r = stylize(content, style, extractor=extractor, settings=TransferParams(
                max_side=args.max_side, max_evaluations=args.dtype_evaluations,
                compute_dtype=dtype))
            seconds.append(r.seconds / r.evaluations)
            losses[dtype] = r.final_loss
            logger.info("%s: %.3f s per evaluation", dtype, seconds[-1])
    out = {d: statistics.median(v) for d, v in per_eval.items()}
    return {"seconds_per_evaluation": out, "speedup": out["float32"] / out["bfloat16"],
            "final_loss": losses, "all": per_eval, "max_side": args.max_side}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=["engines", "init", "both", "dtype", "network"],
                   default="engines")
    p.add_argument("--dtype-evaluations", type=int, default=8)
    p.add_argument("--sides", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--contents", nargs="+", default=DEFAULT_CONTENTS)
    p.add_argument("--styles", nargs="+", default=DEFAULT_STYLES)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--judge", default="best")
    p.add_argument("--skip-gatys", action="store_true")
    p.add_argument("--gatys-evaluations", type=int, default=10)
    p.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16", "auto"])
    p.add_argument("--max-side", type=int, default=512, help="init part")
    p.add_argument("--target", type=float, default=None,
                   help="init part: the recipe's 500-step loss (skips running the recipe)")
    p.add_argument("--recipe-steps", type=int, default=500)
    p.add_argument("--max-evaluations", type=int, default=300, help="init part: cap")
    p.add_argument("--inits", nargs="+", default=["fast", "colour_matched"])
    p.add_argument("--style", type=Path, default=SHARED / "styles" / "van-gogh_the-starry-night_1889.jpg",
                   help="init part: the painting (default: The Starry Night in ../shared)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")   # as the command line
    load0 = os.getloadavg()[0]
    result: dict = {"cpu": cpu_model(), "cpus": os.cpu_count(),
                    "date": time.strftime("%Y-%m-%d", time.gmtime())}
    if args.part in ("engines", "both"):
        rows = part_engines(args, Judge(args.judge))
        result["engines"] = rows
        print(f"\n{'engine':18} | {'side':>5} | {'size':>9} | {'load s':>7} | {'s after load':>12} "
              f"| {'style hit':>9} | {'SSIM':>5} | pairs")
        for r in rows:
            sec = ("~" if r.get("estimated") else "") + f"{r['seconds']:.2f}"
            print(f"{r['engine']:18} | {r['side']:>5} | {r['size']:>9} | {r['load_s']:7.2f} | "
                  f"{sec:>12} | {r['style_hit']:9.2f} | {r['ssim']:.3f} | {r['pairs']}")
    if args.part in ("init", "both"):
        res = part_init(args)
        result["init"] = res
        print(f"\nGatys to the recipe's loss {res['target']:.6g} at {args.max_side} px "
              f"({args.compute_dtype}):")
        print(f"{'init':16} | {'start loss':>11} | {'evaluations':>11} | {'seconds':>8} | "
              f"{'s/eval':>6} | SSIM")
        for init in args.inits:
            r = res[init]
            print(f"{init:16} | {r['start_loss']:11.4g} | {r['evaluations_to_target']:>11} | "
                  f"{r['seconds_to_target']:8.1f} | {r['seconds_per_evaluation']:6.2f} | "
                  f"{r['ssim']:.3f}")
    if args.part == "network":
        rows = part_network(args)
        result["network"] = rows
        print(f"\n{'network':40} | {'size':>20} | {'wall s':>7} | {'CPU s':>6}")
        for r in rows:
            print(f"{r['network']:40} | {r['size']:>20} | {r['wall_s']:7.3f} | {r['cpu_s']:6.3f}")
    if args.part == "dtype":
        res = part_dtype(args)
        result["dtype"] = res
        print(f"\nGatys at {args.max_side} px, seconds per evaluation (median of {args.repeats}):")
        for d, v in res["seconds_per_evaluation"].items():
            print(f"{d:9} | {v:.3f} s | final loss after {args.dtype_evaluations}: "
                  f"{res['final_loss'][d]:.6g}")
        print(f"bfloat16 speed-up: {res['speedup']:.2f}x")
    load1 = os.getloadavg()[0]
    result["load_average"] = [load0, load1]
    print(f"\nCPU: {result['cpu']} ({result['cpus']} cores, shared with other jobs; load "
          f"average {load0:.1f} -> {load1:.1f})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
