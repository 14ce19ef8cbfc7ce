"""Benchmark: ``artstyle classify`` on a folder of images, images per second.

Runs the command line as a person would (``artstyle classify FOLDER --csv --model M``,
output redirected) on ``--n`` images made from scikit-learn's bundled photographs
(random crops of 64 to 320 px, JPEG), for each ``--models`` entry (default: ``best`` and
every kind present), in the pipeline folder ``--pipeline`` (default: this checkout,
after ``make repro``). Prints one row per model with the wall time including start-up,
the images per second over the whole run, and the CPU model.

    .venv/bin/python benchmarks/classify.py [--n 300] [--models best vgg19_transfer]

Not a test: figures depend on the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def make_images(folder: Path, n: int, seed: int = 0) -> None:
    """``n`` JPEG crops of 64-320 px of scikit-learn's sample photographs."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    for i in range(n):
        photo = photos[i % len(photos)]
        h, w = rng.integers(64, 321, 2)
        y, x = rng.integers(0, photo.shape[0] - h), rng.integers(0, photo.shape[1] - w)
        Image.fromarray(photo[y:y + h, x:x + w]).save(folder / f"{i:04d}.jpg", quality=90)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipeline", type=Path, default=ROOT)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--models", nargs="+", default=None)
    args = ap.parse_args()
    os.chdir(args.pipeline)
    from artstyle import paths
    from artstyle.classifier import best_member, folder_kind, trained_members

    if not trained_members():
        print(f"skipped: no trained members in {args.pipeline / 'models'} (run make repro)")
        return 0
    models = args.models or ["best"] + sorted(
        {folder_kind(paths.model_dir(m)): m for m in trained_members()}.values())
    artstyle = Path(sys.executable).with_name("artstyle")
    cpu = cpu_model()
    print(f"{args.n} images (64-320 px JPEG), {os.cpu_count()} cores, {cpu}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("| model | kind | wall seconds (start-up included) | images per second | CPU |")
    print("|---|---|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        make_images(Path(tmp), args.n)
        for model in models:
            name = best_member() if model == "best" else model
            t0 = time.perf_counter()
            run = subprocess.run([str(artstyle), "classify", tmp, "--csv", "--model", model],
                                 capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            rows = run.stdout.count("\n") - 1
            if run.returncode != 0 or rows != args.n:
                print(f"| {model} | failed ({run.returncode}): {run.stderr.strip()[-200:]} |")
                continue
            kind = folder_kind(paths.model_dir(name))
            label = f"{model} ({name})" if model == "best" else model
            print(f"| {label} | {kind} | {seconds:.1f} | {args.n / seconds:.1f} | {cpu} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
