"""Why a coarse stage gives the 512 px optimisation no head start: the loss of upsampled images.

Coarse-to-fine style transfer (optimise at half size, upsample, refine) pays only if the
upsampled coarse result starts the full-size stage with a lower loss than the photo
does. This script scores, with the full-size loss of ``benchmarks/style_transfer.py``
(the TensorFlow tutorial's weights, VGG19, float32), per style layer:

* the colour-matched photo (our one-scale start);
* our coarse result: ``--coarse-evaluations`` L-BFGS evaluations at half size, upsampled
  (bicubic, as :func:`artstyle.nst.stylize` does between scales);
* the painting itself, reduced to half size and enlarged again (bicubic), scored against
  its own full-size Gram matrices: the best any upsampled image can hope for;
* the painting blurred (Gaussian, radius 1 px), against its own Gram matrices.

It prints one row per image (total, content, style, TV and each style layer's share)
and the target the benchmark's recipe reaches after 500 steps at 512 px
(``--target``, from ``docs/benchmarks.md``).

Usage::

    PYTHONPATH=src .venv/bin/python benchmarks/coarse_to_fine.py [--max-side 512]

About a minute on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from artstyle.config import TransferParams

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from style_transfer import DEFAULT_STYLE, DEFAULT_WEIGHTS, TUTORIAL_WEIGHTS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--style", type=Path, default=DEFAULT_STYLE)
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--coarse-evaluations", type=int, default=60)
    parser.add_argument("--target", type=float, default=5.888e6,
                        help="the recipe's 500-step loss at --max-side (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for path in (args.weights, args.style):
        if not path.is_file():
            print(f"not found: {path} (VGG19 weights: stage 'pretrained'; the style: ../shared)",
                  file=sys.stderr)
            return 2

    import tensorflow as tf
    from PIL import Image, ImageFilter

    from artstyle.images import load_image_source
    from artstyle.nst import FeatureExtractor, StyleTransferLoss, stylize
    from artstyle.nst.inputs import match_colour, prepare_images
    from artstyle.nst.losses import style_loss
    from artstyle.nst.optimise import _split_budget

    content = load_image_source("sklearn:china.jpg")
    style = load_image_source(str(args.style))
    extractor = FeatureExtractor.vgg19(args.weights)
    content_w, style_w = prepare_images(content, style, max_side=args.max_side,
                                        min_side=extractor.min_side)
    _, style_half = prepare_images(content, style, max_side=args.max_side,
                                   min_side=extractor.min_side, scale=0.5)
    photo_loss = StyleTransferLoss(extractor, content_w, style_w, TUTORIAL_WEIGHTS,
                                   compute_dtype="float32")
    n_layers = len(extractor.style_layers)

    def style_terms(image: np.ndarray, targets) -> list[float]:
        _, feats = extractor(tf.constant(image[None].astype(np.float32)), "float32")
        return [TUTORIAL_WEIGHTS.style_weight / n_layers * float(style_loss(photo_loss.gram(f), t))
                for f, t in zip(feats, targets, strict=True)]

    def enlarge(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return np.asarray(Image.fromarray(image).resize((shape[1], shape[0]), Image.Resampling.BICUBIC))

    # a budget whose coarse share is --coarse-evaluations; the run stops at the first
    # full-size evaluation, so its image is the coarse result upsampled
    total = next(t for t in range(2, 10 * args.coarse_evaluations + 4)
                 if _split_budget(t, [0.5, 1.0])[0] >= args.coarse_evaluations)
    coarse = stylize(content, style, extractor=extractor, weights=TUTORIAL_WEIGHTS,
                     settings=TransferParams(max_side=args.max_side, scales=[0.5, 1.0],
                                             max_evaluations=total, compute_dtype="float32"),
                     callback=lambda record: record["scale"] == 1.0)
    start = np.clip(np.rint(match_colour(content_w, style_w) * 255), 0, 255).astype(np.uint8)
    rows = {"colour-matched photo (one-scale start)": (start, photo_loss),
            f"coarse result ({args.coarse_evaluations} evaluations at half size), upsampled":
                (coarse.image, photo_loss)}
    painting_loss = StyleTransferLoss(extractor, style_w, style_w, TUTORIAL_WEIGHTS,
                                      compute_dtype="float32")
    rows["the painting, half size enlarged 2x (vs itself)"] = (enlarge(style_half, style_w.shape),
                                                               painting_loss)
    blurred = np.asarray(Image.fromarray(style_w).filter(ImageFilter.GaussianBlur(1)))
    rows["the painting, blurred 1 px (vs itself)"] = (blurred, painting_loss)

    names = [n.replace("block", "b").replace("_conv", "c") for n in extractor.style_layers]
    print(f"\nfull-size loss ({content_w.shape[1]} x {content_w.shape[0]} px), style terms per layer:")
    print(f"{'image':62} | {'total':>9} | {'style':>9} | " + " | ".join(f"{n:>8}" for n in names))
    for name, (image, loss) in rows.items():
        terms = loss(tf.constant(image[None].astype(np.float32) / 255.0))
        per = style_terms(image, loss.style_targets)
        print(f"{name:62} | {float(terms['total']):9.3g} | {float(terms['style']):9.3g} | "
              + " | ".join(f"{p:8.2g}" for p in per))
    print(f"{'target: the recipe after 500 Adam steps':62} | {args.target:9.3g} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
