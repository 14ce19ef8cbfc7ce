"""Benchmark: the whole model zoo on real paintings with a fixed training budget.

Runs the pipeline (``dvc repro``) in a throw-away copy of the repository on
``../shared/datasets/painting91-mini`` (520 paintings, 13 art movements, research use
only) and prints the comparison table (``reports/models.md``), plus the style-transfer
summary when ``--stylize`` is given. Every model gets the same budget: at most
``--epochs`` epochs with early stopping (VGG19: the same for each of its two phases).

    .venv/bin/python benchmarks/model_zoo.py [--data PATH] [--epochs 40] [--keep DIR]
    .venv/bin/python benchmarks/model_zoo.py --only style    # the style models and ensembles
    .venv/bin/python benchmarks/model_zoo.py --only style --splits stratified artist
    .venv/bin/python benchmarks/model_zoo.py --artists-apart-only  # descriptors once, both splits

``--only style`` runs only the style-descriptor models (``style_models``) and those
ensembles (``ensembles``) whose members are all style models, then ``compare``; the
other rows of the table stay empty.

``--splits stratified artist`` runs the pipeline once per split, each in its own copy
(``--keep DIR``: ``DIR/repo`` and ``DIR/artist/repo``):
``stratified`` is ``prepare.group_by_artist: false`` (the default), ``artist`` is
``prepare.group_by_artist: true`` (no test painting's artist has a painting in train or
validation; painting91-mini's Neo-classicism and Symbolism have 2 artists, so their
validation paintings share the training artist: ``reports/data/summary.md`` names them).
Both tables are printed, each under its split.

``--artists-apart`` adds the cheaper comparison: every style model's descriptors computed
once on the same paintings, its head fitted and chosen on each of the pipeline's two
splits (the same ``prepare`` split function), accuracy and macro-F1
(``benchmarks/style_heads.py``; ``--artists-apart-only`` skips the pipeline).

Not a test: figures depend on the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's sandbox helpers (not shipped)

import yaml
from sandbox import copy_repo, run_dvc

from artstyle.models.vgg19 import VGG19_CONV_LAYERS


def painting_params(raw: dict, data: Path, epochs: int, weights: Path | None, *,
                    group_by_artist: bool = False) -> dict:
    """Params for real paintings: 224 px stored images, the stratified split or, with
    ``group_by_artist``, artists kept apart (``prepare.group_by_artist: true``)."""
    raw["data"].update(source="folder", path=str(data))
    raw["base"]["image_size"] = 224     # painting91-mini's sources are <= 256 px
    raw["prepare"].update(group_by_artist=group_by_artist, val_fraction=0.15,
                          test_fraction=0.2)
    for spec in raw["models"].values():
        spec["epochs"] = epochs
        if spec["family"] == "vgg19_transfer":
            spec.update(input_size=224, fine_tune_epochs=epochs // 2)
        else:
            spec["input_size"] = 96
    if weights is not None:
        raw["pretrained"]["local_path"] = str(weights)
    for features in raw.get("style_features", {}).values():
        # chosen on painting91-mini's validation split (docs/models.md); the sample uses 5
        if features.get("backbone", "vgg19") == "vgg19":
            features["stat_layers"] = list(VGG19_CONV_LAYERS)
    return raw


def style_targets(raw: dict) -> tuple[list[str], list[str]]:
    """Style models' ``dvc repro`` targets, and the ensembles made only of style models.

    An ensemble stage (``ensemble_<name>``) depends on its members' probabilities only;
    the benchmark runs those ensembles alone (``--single-item``) once their members are
    evaluated.
    """
    style = set(raw.get("style_models", {}))
    return ([f"evaluate_style@{m}" for m in style],
            [f"ensemble_{e}" for e, spec in raw.get("ensembles", {}).items()
             if set(spec["members"]) <= style])


def add_painting_arguments(ap: argparse.ArgumentParser) -> None:
    """``--data`` (the painting folder), ``--epochs`` and ``--keep``, shared by the
    benchmarks that run the pipeline on real paintings."""
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/painting91-mini")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--keep", type=Path, help="run in this folder and keep it")


def style_configs(raw: dict) -> list[str]:
    """The descriptor configurations (``style_heads.parse_config`` names) of the style
    models of ``raw``: backbone, 224 px, patches."""
    from style_heads import config_name

    sets = raw.get("style_features", {})
    names = [config_name(sets[spec["features"]].get("backbone", "vgg19"), 224,
                         sets[spec["features"]].get("patches", 1))
             for spec in raw.get("style_models", {}).values()]
    return list(dict.fromkeys(names))


def artists_apart(raw: dict, data: Path, work: Path) -> None:
    """Run ``benchmarks/style_heads.py`` on the style models' configurations (logistic
    heads): stratified and artist-disjoint rows, and the best by validation of each."""
    import subprocess

    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "style_heads.py"), "--data",
                           str(data), "--cache", str(work / "style_heads"), "--heads", "logistic",
                           "--configs", *style_configs(raw)], check=False)
    if done.returncode:
        print(f"artist-disjoint comparison failed (exit {done.returncode}; see above)")


#: ``--splits`` names: the value of ``prepare.group_by_artist`` each runs with.
SPLITS = {"stratified": False, "artist": True}


def run_zoo(args, work: Path, split: str, weights: Path | None) -> tuple[Path, float]:
    """Run the pipeline on the paintings in a copy with that split: ``work/repo`` for
    ``stratified`` (as before ``--splits``), ``work/<split>/repo`` for the others.

    Returns the copy and the minutes ``dvc repro`` took.
    """
    log = work if split == "stratified" else work / split
    chosen: dict = {}
    repo = copy_repo(log / "repo", params=lambda r: chosen.setdefault(
        "raw", painting_params(r, args.data.resolve(), args.epochs, weights,
                               group_by_artist=SPLITS[split])))
    t0 = time.perf_counter()
    if args.only == "style":
        members, ensembles = style_targets(chosen["raw"])
        # The copy holds the sample's Git-tracked reports: drop every model's, so that the
        # rows of members this run does not train stay empty instead of showing the sample.
        for folder in ("eval", "train", "grid"):
            shutil.rmtree(repo / "reports" / folder, ignore_errors=True)
        run_dvc(repo, "repro", *members, log=log / "repro.log")
        for ensemble in ensembles:
            run_dvc(repo, "repro", "--single-item", ensemble, log=log / f"{ensemble}.log")
        run_dvc(repo, "repro", "--single-item", "compare", log=log / "compare.log")
    else:
        run_dvc(repo, "repro", *([] if args.stylize else ["compare"]), log=log / "repro.log")
    return repo, (time.perf_counter() - t0) / 60


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_painting_arguments(ap)
    ap.add_argument("--weights", type=Path, default=ROOT / "models/pretrained/vgg19_notop.weights.h5",
                    help="reuse converted VGG19 weights (skips the download)")
    ap.add_argument("--stylize", action="store_true", help="also run the stylize stage")
    ap.add_argument("--only", choices=["style"], help="run only the style models and ensembles")
    ap.add_argument("--splits", nargs="+", choices=list(SPLITS), default=["stratified"],
                    help="run the pipeline with each split: stratified (group_by_artist: "
                    "false) and/or artist (group_by_artist: true); a table each")
    ap.add_argument("--artists-apart", action="store_true",
                    help="also score the style models' descriptors on both splits")
    ap.add_argument("--artists-apart-only", action="store_true",
                    help="only the descriptor comparison of both splits (no pipeline run)")
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"skipped: {args.data} not found (it exists only beside the project's checkout)")
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="artstyle-bench-"))
    raw = painting_params(yaml.safe_load((ROOT / "params.yaml").read_text()),
                          args.data.resolve(), args.epochs, None)
    if args.artists_apart_only:
        artists_apart(raw, args.data.resolve(), work)
        return 0
    weights = args.weights if args.weights.exists() else None
    for split in dict.fromkeys(args.splits):
        repo, minutes = run_zoo(args, work, split, weights)
        print(f"## Split: {split} (prepare.group_by_artist: {str(SPLITS[split]).lower()})\n")
        print((repo / "reports" / "data" / "summary.md").read_text())
        print((repo / "reports" / "models.md").read_text())
        if args.stylize:
            print((repo / "reports" / "stylize" / "summary.md").read_text())
        print(f"dvc repro: {minutes:.1f} min on this machine; outputs in {repo}\n")
    if args.artists_apart:
        artists_apart(raw, args.data.resolve(), work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
