"""Benchmark: does a blend of two paintings look like both movements to a real judge?

Takes a pipeline already run on real paintings (``benchmarks/model_zoo.py --only style
--keep DIR`` leaves one in ``DIR/repo``), its member ``--judge`` (default ``style_lite0``;
any kind, :func:`artstyle.classifier.load_classifier`) as the judge, and for two movements the test painting the judge is most
sure of (the ``stylize`` stage's ``per_class`` choice). The photo is painted three times
with the default settings: in the style of painting A alone, of B alone, and of both
blended 50/50 (``blend_weights``). The judge's probabilities of A's and B's movement are
printed for the two paintings and the three outputs: a blend should split them more than
either single-style output does.

    .venv/bin/python benchmarks/blend_judge.py --pipeline DIR/repo [--movements A B]
        [--content ../shared/images/contents/building.jpg] [--max-side 256] [--out DIR]

Not a test: figures depend on the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
# The style-transfer extractor probes tiny inputs to find its smallest usable side; the
# failed probes are expected and TensorFlow would log each of them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipeline", type=Path, required=True)
    ap.add_argument("--judge", default="style_lite0")
    ap.add_argument("--movements", nargs=2, help="two art movements (default: the two the "
                    "judge is surest of, through their most confident test paintings)")
    ap.add_argument("--content", default=str(ROOT.parent / "shared/images/contents/building.jpg"))
    ap.add_argument("--max-side", type=int, default=256)
    ap.add_argument("--out", type=Path, help="folder for the three outputs (PNG)")
    args = ap.parse_args()
    if not args.pipeline.is_dir():
        print(f"skipped: {args.pipeline} not found")
        return 0
    content_path = str(Path(args.content).resolve())   # before chdir: as the user typed them
    out_dir = args.out.resolve() if args.out else None
    os.chdir(args.pipeline)          # the pipeline's relative paths (weights, models)
    from artstyle import paths
    from artstyle.config import TransferParams
    from artstyle.images import save_image
    from artstyle.nst import FeatureExtractor, stylize
    from artstyle.stylize import load_role_image

    from artstyle.classifier import load_classifier
    from artstyle.data.dataset import load_split

    judge = load_classifier(args.judge)            # any member kind, prepared as in training
    test, classes = load_split(paths.PREPARED, "test")
    p_test = judge.proba_squares(test.images)
    best = {}                         # movement -> (confidence, index of its surest painting)
    for i, (label, p) in enumerate(zip(test.labels, p_test)):
        if p[label] > best.get(label, (-1.0, -1))[0]:
            best[label] = (float(p[label]), i)
    if args.movements:
        unknown = [m for m in args.movements if m not in classes]
        if unknown:
            print(f"unknown movement(s) {unknown}; known: {', '.join(classes)}", file=sys.stderr)
            return 2
        wanted = [classes.index(m) for m in args.movements]
    else:
        wanted = sorted(best, key=lambda c: -best[c][0])[:2]
    a, b = wanted
    paintings = [test.images[best[a][1]], test.images[best[b][1]]]
    content = load_role_image("content", content_path)
    extractor = FeatureExtractor.vgg19(paths.VGG19_WEIGHTS)
    settings = TransferParams(max_side=args.max_side)
    outputs, seconds = {}, {}
    for label, styles, blend in [(f"A alone ({classes[a]})", [paintings[0]], None),
                                 (f"B alone ({classes[b]})", [paintings[1]], None),
                                 ("A + B blended 0.5 / 0.5", paintings, [0.5, 0.5])]:
        t0 = time.perf_counter()
        result = stylize(content, styles[0] if len(styles) == 1 else styles,
                         extractor=extractor, settings=settings, blend_weights=blend, seed=42)
        seconds[label] = time.perf_counter() - t0
        outputs[label] = result.image
        if out_dir:
            out_dir.mkdir(parents=True, exist_ok=True)
            save_image(result.image, out_dir / f"{len(outputs)}.png")
    rows = [(f"painting A ({classes[a]})", paintings[0]), (f"painting B ({classes[b]})", paintings[1]),
            *outputs.items()]
    proba = judge.proba([im for _, im in rows])
    print(f"judge {args.judge}; content {content_path}; {args.max_side} px, "
          f"{settings.max_evaluations} evaluations, scales {settings.scales}")
    print(f"| image | p({classes[a]}) | p({classes[b]}) | smaller / larger | top movement | seconds |")
    print("|---|---:|---:|---:|---|---:|")
    for (name, _), p in zip(rows, proba):
        lo, hi = sorted([p[a], p[b]])
        print(f"| {name} | {p[a]:.3f} | {p[b]:.3f} | {lo / max(hi, 1e-9):.2f} | "
              f"{classes[int(p.argmax())]} ({p.max():.2f}) | {seconds.get(name, 0):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
