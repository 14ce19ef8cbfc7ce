"""Command line outside DVC: ``artstyle stylize``, ``classify``, ``explain`` and ``serve``.

Examples
--------
::

    artstyle stylize photo.jpg starry-night.jpg -o out.png --max-side 256
    artstyle stylize photo.jpg starry-night.jpg -o out.png --method fast --max-side 1024
    artstyle stylize photo.jpg style.png -o out.png --backbone own:best_cnn
    artstyle stylize photo.jpg style.png -o out.png --preserve-colors --seed 7
    artstyle stylize photo.jpg style.png -o out.png --mask sky.png
    artstyle stylize photo.jpg a.jpg b.jpg --blend-weights 0.7 0.3 -o out.png
    artstyle stylize photo.jpg style.png -o big.png --max-side 1024   # scales auto: 0.25 0.5 1
    artstyle classify painting.jpg other.png paintings/ --model vgg19_transfer --top 5
    artstyle classify paintings/ --csv > movements.csv
    artstyle explain painting.jpg --model best_cnn -o out/painting_explained.png
    artstyle serve            # the web page on http://127.0.0.1:7860

Both read the pipeline's outputs in the current directory (``models/``), so run them
from the repository root after ``dvc repro`` (or ``dvc pull``), or pass paths.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from artstyle.config import INITS, RENAMED_KEYS, ServeParams
from artstyle.errors import ArtstyleError, InvalidInput

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: Images per network call of ``artstyle classify``.
CLASSIFY_BATCH = 32


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _scale(text: str) -> float | str:
    """One ``--scales`` value: a number, else the text (checked by :func:`_scales`)."""
    try:
        return float(text)
    except ValueError:
        return text


def _scales(values: list[float | str] | None) -> list[float] | str | None:
    """``--scales``: numbers (checked as params are), or ``auto`` alone."""
    if values is None or all(isinstance(v, float) for v in values):
        return values
    if values == ["auto"]:
        return "auto"
    raise ArtstyleError(f"--scales: numbers increasing to 1.0, or auto alone; got "
                        f"{' '.join(str(v) for v in values)}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="artstyle", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("stylize", help="re-paint CONTENT in the style of STYLE (Gatys et al., "
                                       "or the feed-forward network of Ghiasi et al.)")
    s.add_argument("content", help="content image (photo); 'sklearn:china.jpg' for the bundled one")
    s.add_argument("style", nargs="+",
                   help="style image(s) (paintings); several are blended (--blend-weights)")
    s.add_argument("-o", "--output", required=True, help="output image (PNG/JPEG)")
    s.add_argument("--method", choices=["gatys", "fast"], default="gatys",
                   help="gatys (default): optimise the pixels (minutes); "
                        "fast: one pass of the feed-forward network (about a second, "
                        "needs `dvc repro pretrained_feedforward`)")
    s.add_argument("--strength", type=float, default=None,
                   help="fast: style strength in [0, 1] (0 = the photo's own style vector, "
                        "1 = the painting's; default 1)")
    s.add_argument("--backbone", default="vgg19", help="'vgg19' or 'own:<model>' (default vgg19)")
    s.add_argument("--max-side", type=int, default=None, help="longest output side in px")
    s.add_argument("--max-evaluations", type=int, default=None,
                   help="loss-and-gradient evaluations (default from params)")
    s.add_argument("--scales", type=_scale, nargs="+", default=None,
                   help="coarse-to-fine image scales ending in 1.0, e.g. 0.5 1.0; 'auto' "
                        "(default from params): one scale up to 512 px, then halve down to 256 px "
                        "(0.25 0.5 1 at 1024 px)")
    s.add_argument("--optimizer", choices=["lbfgs", "adam"], default=None)
    s.add_argument("--learning-rate", type=float, default=None, help="Adam's step (0-1 units)")
    s.add_argument("--init", choices=INITS, default=None,
                   help="start image (default from params: colour_matched = the photo in the "
                        "painting's colours; content = the photo as it is)")
    s.add_argument("--fourier-exponent", type=float, default=None,
                   help="L-BFGS: gain exponent p of the Fourier-space parametrisation "
                        "(default from params, 0.25; 0 = optimise the pixels)")
    s.add_argument("--blend-weights", type=float, nargs="+", default=None, metavar="W",
                   help="one weight per style image (normalised to sum 1; default equal): "
                        "how much each painting counts in the style loss. Not --style-weight, "
                        "which weighs the whole style term against the content term")
    s.add_argument("--preserve-colors", action="store_true", default=None,
                   help="keep the photo's colours: the result's luminance with the photo's "
                        "chroma (YIQ)")
    s.add_argument("--mask", metavar="IMAGE",
                   help="black-and-white image: the style goes where it is white, the photo "
                        "stays where it is black (the photo's aspect ratio within 2 %%, "
                        "resized to it)")
    s.add_argument("--seed", type=int, default=None,
                   help="seed of the noise start (default: base.seed of the params file, or 42)")
    s.add_argument("--compute-dtype", choices=["auto", "float32", "bfloat16"], default=None,
                   help="VGG19's convolutions in float32 or bfloat16 (default auto = bfloat16 "
                        "on CPUs with native bfloat16 arithmetic, Intel AMX or AVX-512 BF16; "
                        "results then depend on the CPU)")
    s.add_argument("--memory-limit-mb", type=int, default=None,
                   help="refuse sizes estimated to need more (default: the memory available)")
    s.add_argument("--style-weight", type=float, default=None,
                   help="weight of the style term against the content term")
    s.add_argument("--content-weight", type=float, default=None)
    s.add_argument("--tv-weight", type=float, default=None)
    s.add_argument("--panel", help="also write a content | style | result panel PNG here")
    s.add_argument("--weights", help="VGG19 no-top weights (default models/pretrained/...)")
    s.add_argument("--params", default=None, metavar="PARAMS_YAML",
                   help="take the defaults from this params file's `stylize` group (e.g. "
                        "params.yaml, the pipeline's stage settings); default: the schema's "
                        "command defaults (artstyle.config.TransferParams: 512 px, 150 "
                        "evaluations, compute dtype auto), whatever folder it runs in")

    c = sub.add_parser("classify", help="print the most likely art movements of each image")
    c.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files and folders (searched recursively)")
    c.add_argument("--model", default="best",
                   help="a trained member under models/ (any kind: neural, style head, "
                        "XGBoost, ensemble), a .keras path, or best (default): the member "
                        "with the best validation accuracy in reports/eval")
    c.add_argument("--top", type=_positive_int, default=3, help="movements per image")
    c.add_argument("--csv", action="store_true",
                   help="print a CSV table (image, movement1, probability1, ...)")

    e = sub.add_parser("explain", help="top movements of IMAGE, where the model looks "
                                       "(Grad-CAM) and its nearest training paintings")
    e.add_argument("image", metavar="IMAGE", help="an image file")
    e.add_argument("--model", default="best",
                   help="a trained member under models/ (any kind) or a .keras path; best "
                        "(default) = the neural or style member with the best validation "
                        "accuracy in reports/eval (the kinds Grad-CAM can look into)")
    e.add_argument("-o", "--output", default=None,
                   help="the PNG to write (default <IMAGE stem>_explained.png here)")
    e.add_argument("--top", type=_positive_int, default=3, help="movements to print")

    defaults = ServeParams()
    v = sub.add_parser("serve", help="the web page: classify a painting, re-paint a photo "
                                     f"(http://{defaults.host}:{defaults.port})")
    v.add_argument("--host", default=defaults.host,
                   help=f"address to listen on (default {defaults.host}: this computer only; "
                        "0.0.0.0 lets anyone who reaches this machine use it)")
    v.add_argument("--port", type=int, default=defaults.port,
                   help=f"port (default {defaults.port})")
    v.add_argument("--model", default=defaults.model,
                   help="classifier and judge: model name under models/ or best (default: the "
                        "neural model with the best validation accuracy)")
    return p


def image_files(inputs: list[str]) -> list[Path]:
    """The files to classify: named files as given, folders searched recursively.

    In folders, entries with an image suffix (:data:`artstyle.images.IMAGE_SUFFIXES`)
    that are not folders are taken in sorted order, regular or not: a named pipe, a
    device or a broken link named like an image is listed so that the loader refuses it
    in one line (:func:`artstyle.images.check_regular_file`) and it is counted, never
    skipped silently. Hidden and system files (``.DS_Store``, ``__MACOSX``...) are
    skipped.

    Raises
    ------
    ArtstyleError
        An input does not exist (a broken link given by name is listed, as above).
    """
    from artstyle.images import IMAGE_SUFFIXES, is_hidden_or_system

    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += sorted(f for f in path.rglob("*") if not f.is_dir()
                            and f.suffix.lower() in IMAGE_SUFFIXES
                            and not any(is_hidden_or_system(part)
                                        for part in f.relative_to(path).parts))
        elif os.path.lexists(path):
            found.append(path)
        else:
            raise ArtstyleError(f"{item} not found")
    return found


def _classify(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm.auto import tqdm

    from artstyle import paths
    from artstyle.classifier import load_classifier
    from artstyle.data.dataset import dataset_notice
    from artstyle.images import ImageRejected, load_rgb_array
    from artstyle.io import CsvWriter

    files = image_files(args.images)
    if not files:
        raise ArtstyleError(f"no image files in {' '.join(args.images)}")
    classifier = load_classifier(args.model)
    top = min(args.top, len(classifier.classes))     # a model knows so many movements
    writer = None
    if args.csv:
        writer = CsvWriter(sys.stdout)   # cells a spreadsheet would run get a leading '
        writer.writerow(["image"] + [f"{k}{i}" for i in range(1, top + 1)
                                     for k in ("movement", "probability")])
    else:
        print(f"art movement by {classifier.name} ({classifier.kind}), top {top}:")
    failed = 0
    batch: list[tuple[Path, object]] = []    # (file, its prepared square)

    def flush() -> None:
        if not batch:
            return
        proba = classifier.proba_squares(np.stack([square for _, square in batch]))
        for (path, _), p in zip(batch, proba):
            order = p.argsort()[::-1][:top]
            if writer:
                writer.writerow([str(path)] + [v for i in order
                                               for v in (classifier.classes[i], f"{p[i]:.4f}")])
            else:
                print(f"{path}: " + ", ".join(f"{classifier.classes[i]} {p[i]:.1%}"
                                              for i in order))
        sys.stdout.flush()
        batch.clear()

    # One network call per batch of images; progress on stderr (shown when it is a terminal).
    with tqdm(total=len(files), desc="classify", unit="image", file=sys.stderr,
              disable=len(files) < 2 or None) as bar:
        for path in files:
            try:
                batch.append((path, classifier.prepare(load_rgb_array(str(path)))))
            except ImageRejected as err:
                failed += 1
                bar.write(f"artstyle: {path}: skipped, {err.reason}: {err.message}",
                          file=sys.stderr)
            if len(batch) == CLASSIFY_BATCH:
                n = len(batch)
                flush()
                bar.update(n)
        n = len(batch)
        flush()
        bar.update(n)
    notice = dataset_notice(paths.PREPARED)
    if notice and not args.csv:
        print(f"note: the model was trained on the prepared dataset, which says: {notice}")
    if failed:
        print(f"artstyle: {failed} of {len(files)} images could not be classified",
              file=sys.stderr)
        return 2
    return 0


def check_writable_image_path(path: str) -> None:
    """Refuse an output path before any work: unknown image suffix or unusable folder.

    Raises
    ------
    InvalidInput
        The suffix is not an image format Pillow writes, or the parent is not a folder.
    """
    from PIL import Image

    target = Path(path)
    suffix = target.suffix.lower()
    writable = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}
    if suffix not in writable:
        raise InvalidInput(f"{path}: give an image file name ending in .png or .jpg "
                         f"(got {suffix or 'no suffix'})")
    parent = next((p for p in [target.parent, *target.parent.parents] if p.exists()), Path("."))
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise InvalidInput(f"{path}: {parent} is not a writable folder")


def _stylize(args: argparse.Namespace) -> int:
    # No TensorFlow before every option and input is checked (stylize_files starts it).
    from artstyle.stylize import stylize_files

    for path in (args.output, args.panel):
        if path:
            check_writable_image_path(path)
    out = stylize_files(args.content, args.style, args.output, backbone=args.backbone,
                        params_file=args.params, weights=args.weights, panel=args.panel,
                        blend_weights=args.blend_weights, seed=args.seed, mask=args.mask,
                        method=args.method, strength=args.strength,
                        overrides={"max_side": args.max_side,
                                   "max_evaluations": args.max_evaluations,
                                   "scales": _scales(args.scales),
                                   "learning_rate": args.learning_rate,
                                   "optimizer": args.optimizer, "init": args.init,
                                   "fourier_exponent": args.fourier_exponent,
                                   "preserve_colors": args.preserve_colors,
                                   "memory_limit_mb": args.memory_limit_mb,
                                   "compute_dtype": args.compute_dtype,
                                   "style_weight": args.style_weight,
                                   "content_weight": args.content_weight,
                                   "tv_weight": args.tv_weight})
    if out["method"] == "fast":
        print(f"wrote {args.output} ({out['width']}x{out['height']} px, feed-forward, "
              f"{out['seconds']:.2f} s after {out['load_seconds']:.2f} s loading)"
              + (f" and the panel {args.panel}" if args.panel else ""))
        return 0
    print(f"wrote {args.output} ({out['width']}x{out['height']} px, {out['evaluations']} "
          f"evaluations, {out['seconds']:.1f} s, seed {out['seed']}, peak memory "
          f"{out['peak_memory_mb']:.0f} MB)" + (f" and the panel {args.panel}" if args.panel else ""))
    return 0


def _explain(args: argparse.Namespace) -> int:
    from artstyle.images import load_rgb_array

    output = args.output or f"{Path(args.image).stem}_explained.png"
    check_writable_image_path(output)
    if not Path(args.image).exists():
        raise ArtstyleError(f"{args.image} not found")
    load_rgb_array(args.image)  # a file that is no image fails here, before TensorFlow loads

    from artstyle import paths
    from artstyle.classifier import load_classifier
    from artstyle.config import PatternsParams
    from artstyle.data.dataset import dataset_notice
    from artstyle.patterns.explain import explain_image

    # best: the best validated member that can show where it looks (neural or style)
    classifier = load_classifier(args.model, kinds=("neural", "style"))
    notice = dataset_notice(paths.PREPARED)
    name = Path(classifier.name).stem if classifier.name.endswith(".keras") else classifier.name
    result = explain_image(args.image, classifier, output, top=args.top,
                           n_neighbours=PatternsParams().n_neighbours, name=name, notice=notice)
    print(f"art movement by {name} ({classifier.kind}), top {args.top}:")
    print(f"{args.image}: " + ", ".join(f"{m} {p:.1%}" for m, p in result["top"]))
    near = ", ".join(f"{m} ({d:.2f})" for m, d in result["neighbours"])
    near = near or ("none (no data/prepared)" if not (paths.PREPARED / paths.MANIFEST_NAME).exists()
                    else "none (found in a neural member's embedding only)")
    where = (f"Grad-CAM on {result['layer']}" if result["layer"]
             else f"no Grad-CAM ({result['no_heat_map']})")
    print(f"{where}; nearest training paintings: {near}; wrote {output}")
    if notice:
        print(f"note: the model was trained on the prepared dataset, which says: {notice}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from artstyle import paths
    from artstyle.classifier import folder_kind, load_classifier
    from artstyle.nst.optimise import repeatable_threads
    from artstyle.serve import run_server

    repeatable_threads()

    try:
        params = ServeParams(host=args.host, port=args.port, model=args.model)
    except ValidationError as err:  # worded as the other options
        raise ArtstyleError("; ".join(f"--{e['loc'][0]}: {e['msg']}" for e in err.errors())
                            or str(err)) from None
    # A model the user names must be there; with `best` the page says what is missing.
    if args.model != "best" and (args.model.endswith(".keras")
                                 or folder_kind(paths.model_dir(args.model)) is None):
        load_classifier(args.model)     # raises MissingModel, naming the stage to run
    run_server(params)
    return 0


def renamed_option(argv: list[str]) -> str | None:
    """The one-line message for an option spelled as before a rename, else None.

    Options follow the params keys they set, so :data:`artstyle.config.RENAMED_KEYS`
    names both (``--iterations`` -> ``--max-evaluations``)."""
    for token in argv:
        name = token.split("=", 1)[0]
        old = name[2:].replace("-", "_") if name.startswith("--") else ""
        if old in RENAMED_KEYS:
            new = "--" + RENAMED_KEYS[old].replace("_", "-")
            return f"artstyle: {name} was renamed: write {new}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``artstyle`` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    message = renamed_option(argv)
    if message:
        print(message, file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("ARTSTYLE_LOG", "WARNING"),
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "classify":
            return _classify(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "serve":
            return _serve(args)
        return _stylize(args)
    except ArtstyleError as err:      # expected failures: one line; bugs keep their traceback
        print(f"artstyle: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("artstyle: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:           # `artstyle classify ... | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
