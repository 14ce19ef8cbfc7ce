"""Command line outside DVC: ``artstyle stylize`` and ``artstyle classify``.

Examples
--------
::

    artstyle stylize photo.jpg starry-night.jpg -o out.png --max-side 256
    artstyle stylize photo.jpg style.png -o out.png --backbone own:best_cnn
    artstyle classify painting.jpg --model vgg19_transfer --top 5

Both read the pipeline's outputs in the current directory (``models/``), so run them
from the repository root after ``dvc repro`` (or ``dvc pull``), or pass paths.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from artstyle.config import INITS
from artstyle.errors import ArtstyleError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="artstyle", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("stylize", help="re-paint CONTENT in the style of STYLE (Gatys et al.)")
    s.add_argument("content", help="content image (photo); 'sklearn:china.jpg' for the bundled one")
    s.add_argument("style", help="style image (painting)")
    s.add_argument("-o", "--output", required=True, help="output image (PNG/JPEG)")
    s.add_argument("--backbone", default="vgg19", help="'vgg19' or 'own:<model>' (default vgg19)")
    s.add_argument("--max-side", type=int, default=None, help="longest output side in px")
    s.add_argument("--max-evaluations", type=int, default=None,
                   help="loss-and-gradient evaluations (default from params)")
    s.add_argument("--scales", type=float, nargs="+", default=None,
                   help="coarse-to-fine image scales ending in 1.0, e.g. 0.5 1.0")
    s.add_argument("--optimizer", choices=["lbfgs", "adam"], default=None)
    s.add_argument("--learning-rate", type=float, default=None, help="Adam's step (0-1 units)")
    s.add_argument("--init", choices=INITS, default=None,
                   help="start image (default from params: colour_matched = the photo in the "
                        "painting's colours; content = the photo as it is)")
    s.add_argument("--fourier-exponent", type=float, default=None,
                   help="L-BFGS: gain exponent p of the Fourier-space parametrisation "
                        "(default from params, 0.25; 0 = optimise the pixels)")
    s.add_argument("--style-weight", type=float, default=None)
    s.add_argument("--content-weight", type=float, default=None)
    s.add_argument("--tv-weight", type=float, default=None)
    s.add_argument("--panel", help="also write a content | style | result panel PNG here")
    s.add_argument("--weights", help="VGG19 no-top weights (default models/pretrained/...)")
    s.add_argument("--params", default="params.yaml",
                   help="defaults come from this params file's `stylize` group when it exists")

    c = sub.add_parser("classify", help="print the most likely art movements of IMAGE")
    c.add_argument("image")
    c.add_argument("--model", default="vgg19_transfer",
                   help="model name under models/ or a .keras path (default vgg19_transfer)")
    c.add_argument("--top", type=int, default=3)
    return p


def classify(image: str, model: str = "vgg19_transfer", top: int = 3) -> list[tuple[str, float]]:
    """Top-``top`` art movements of one image with their probabilities.

    Parameters
    ----------
    image : str
        Any image file the safe loader accepts.
    model : str
        A zoo model name (``models/<name>/model.keras``) or a path to a ``.keras`` file
        whose folder holds ``classes.json`` and ``spec.json``.

    Returns
    -------
    list of (str, float)
        Movements sorted by decreasing probability.
    """
    import numpy as np

    from artstyle import paths
    from artstyle.images import load_rgb_array, resize_to_square
    from artstyle.io import read_json
    from artstyle.models.zoo import load_model
    from artstyle.predict import predict_proba
    from PIL import Image

    path = Path(model) if model.endswith(".keras") else paths.keras_model_file(model)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `dvc repro` (or `dvc pull`) first")
    classes = read_json(path.parent / "classes.json")
    spec = read_json(path.parent / "spec.json")
    dataset = paths.PREPARED / paths.DATASET_NAME
    prepared = read_json(dataset) if dataset.exists() else {}
    side = int(prepared.get("image_size", spec["input_size"]))
    # The same preparation as the training images: letterboxed square, then the model size.
    square = resize_to_square(Image.fromarray(load_rgb_array(image)), side)
    proba = predict_proba(load_model(path), np.asarray(square)[None], spec["input_size"])[0]
    order = np.argsort(proba)[::-1][:top]
    return [(classes[i], float(proba[i])) for i in order]


def check_writable_image_path(path: str) -> None:
    """Refuse an output path before any work: unknown image suffix or unusable folder.

    Raises
    ------
    ValueError
        The suffix is not an image format Pillow writes, or the parent is not a folder.
    """
    from PIL import Image

    target = Path(path)
    suffix = target.suffix.lower()
    writable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}
    if suffix not in writable:
        raise ValueError(f"{path}: give an image file name ending in .png or .jpg "
                         f"(got {suffix or 'no suffix'})")
    parent = next((p for p in [target.parent, *target.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ValueError(f"{path}: {parent} is not a writable folder")


def _stylize(args: argparse.Namespace) -> int:
    from artstyle.stylize import stylize_files

    for path in (args.output, args.panel):
        if path:
            check_writable_image_path(path)
    out = stylize_files(args.content, args.style, args.output, backbone=args.backbone,
                        params_file=args.params, weights=args.weights, panel=args.panel,
                        overrides={"max_side": args.max_side,
                                   "max_evaluations": args.max_evaluations,
                                   "scales": args.scales, "learning_rate": args.learning_rate,
                                   "optimizer": args.optimizer, "init": args.init,
                                   "fourier_exponent": args.fourier_exponent,
                                   "style_weight": args.style_weight,
                                   "content_weight": args.content_weight,
                                   "tv_weight": args.tv_weight})
    print(f"wrote {args.output} ({out['width']}x{out['height']} px, {out['evaluations']} "
          f"evaluations, {out['seconds']:.1f} s)" + (f" and the panel {args.panel}" if args.panel else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``artstyle`` command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("ARTSTYLE_LOG", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "classify":
            from artstyle import paths
            from artstyle.data.dataset import dataset_notice

            print(f"{args.image}: art movement by {args.model}")
            for movement, p in classify(args.image, args.model, args.top):
                print(f"{p:7.1%}  {movement}")
            notice = dataset_notice(paths.PREPARED)
            if notice:
                print(f"note: the model was trained on the prepared dataset, which says: {notice}")
            return 0
        return _stylize(args)
    except (ArtstyleError, FileNotFoundError, ValueError, OSError) as err:
        print(f"artstyle: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
