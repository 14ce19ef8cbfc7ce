"""Benchmark: what repeatable training (``train.repeatable: true``) costs in training speed.

Trains one zoo model of ``params.yaml`` on ``data/prepared`` (run ``dvc repro prepare``
first) for a fixed number of epochs (early stopping off) in a fresh process per setting,
and prints wall seconds, CPU seconds of the training process (user + system, including
importing TensorFlow; less sensitive than wall time to other jobs on a shared machine),
images per second and the SHA-256 of the final weights:

* ``machine, all cores``: ``repeatable: false, threads: 0`` (TensorFlow's defaults);
* ``machine, N threads``: ``repeatable: false, threads: N``;
* ``repeatable, N threads``: ``repeatable: true, threads: N`` (oneDNN limited to AVX2).

    .venv/bin/python benchmarks/repeatability.py [--model baseline_cnn] [--epochs 6] [--threads 2]

Not a test: timings depend on the machine and its load; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = (("machine, all cores", False, 0), ("machine, {n} threads", False, None),
            ("repeatable, {n} threads", True, None))


def worker(model: str, epochs: int, repeatable: bool, threads: int) -> None:
    """Train ``model`` once in this process; print one JSON line."""
    sys.path.insert(0, str(ROOT / "src"))
    from artstyle.determinism import configure

    setting = configure(repeatable, threads)   # before TensorFlow starts
    import hashlib
    import logging
    import tempfile

    logging.disable(logging.WARNING)
    import keras
    import numpy as np

    from artstyle import paths
    from artstyle.config import load_params
    from artstyle.data.dataset import load_split
    from artstyle.training import train_model

    os.chdir(ROOT)
    params = load_params()
    spec = params.model(model).model_copy(update={"epochs": epochs, "start_from_epoch": epochs})
    train, classes = load_split(paths.PREPARED, "train")
    validation, _ = load_split(paths.PREPARED, "validation")
    with tempfile.TemporaryDirectory() as tmp:
        r = train_model(spec, train, validation, classes, f"{tmp}/m", f"{tmp}/r",
                        seed=params.base.seed, name=model, verbose=0)
        weights = keras.models.load_model(f"{tmp}/m/model.keras").get_weights()
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights))
    print(json.dumps({"seconds": r.train_seconds, "images_per_second": r.images_per_second,
                      "best_val_loss": r.best_val_loss, "sha256": digest.hexdigest()[:12],
                      "setting": setting}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="baseline_cnn")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", nargs=2, metavar=("REPEATABLE", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.model, args.epochs, bool(int(args.worker[0])), int(args.worker[1]))
        return 0
    if not (ROOT / "data" / "prepared" / "manifest.csv").is_file():
        print("skipped: data/prepared is missing (dvc repro prepare)")
        return 0
    from machine import machine_line

    print(f"{args.model}, {args.epochs} epochs, {machine_line()}\n")
    print("| setting | training s | images/s | relative | process CPU s | relative CPU | weights sha256 |")
    print("|---|---|---|---|---|---|---|")
    base = base_cpu = None
    env = {k: v for k, v in os.environ.items() if k not in (
        "ONEDNN_MAX_CPU_ISA", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
        "TF_DETERMINISTIC_OPS")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for label, repeatable, threads in SETTINGS:
        threads = args.threads if threads is None else threads
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([sys.executable, __file__, "--model", args.model, "--epochs",
                              str(args.epochs), "--worker", str(int(repeatable)), str(threads)],
                             env=env, capture_output=True, text=True, check=True).stdout
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        r = json.loads(out.strip().splitlines()[-1])
        base, base_cpu = base or r["seconds"], base_cpu or cpu
        print(f"| {label.format(n=threads)} | {r['seconds']:.1f} | {r['images_per_second']:.0f} "
              f"| {r['seconds'] / base:.2f} | {cpu:.0f} | {cpu / base_cpu:.2f} "
              f"| `{r['sha256']}` |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
