"""Benchmark: the study's optimiser (RMSprop) against Adam for the study's CNNs.

The study trained its CNNs with RMSprop and found Adam worse; the zoo's study members
used Adam. This runs ``baseline_cnn`` and ``best_cnn`` twice each, with Adam and with
RMSprop (Keras defaults but the learning rate, 0.001 for both, as in ``params.yaml``), on
real paintings with ``benchmarks/model_zoo.py``'s settings (96 px, at most ``--epochs``
epochs with early stopping, stratified split), and prints validation and test figures.
Decide on the validation column; the test column is reported, not used.

    .venv/bin/python benchmarks/optimizers.py [--data PATH] [--epochs 40] [--keep DIR]

Not a test: figures depend on the machine; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's sandbox helpers (not shipped)

from model_zoo import add_painting_arguments, painting_params
from sandbox import copy_repo, run_dvc

STUDY_CNNS = ("baseline_cnn", "best_cnn")
OPTIMISERS = ("adam", "rmsprop")


def member(name: str, optimiser: str) -> str:
    """The zoo member of ``name`` trained with ``optimiser``."""
    return f"{name}_{optimiser}"


def with_optimisers(raw: dict) -> dict:
    """Add one copy of each study CNN per optimiser: ``<model>_<optimiser>``."""
    for name in STUDY_CNNS:
        for opt in OPTIMISERS:
            raw["models"][member(name, opt)] = {**raw["models"][name], "optimizer": opt}
    return raw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_painting_arguments(ap)
    args = ap.parse_args()
    if not args.data.is_dir():
        print(f"skipped: {args.data} not found (it exists only beside the project's checkout)")
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="artstyle-opt-"))
    repo = copy_repo(work / "repo", params=lambda r: with_optimisers(
        painting_params(r, args.data.resolve(), args.epochs, None)))
    rows = []
    for name in STUDY_CNNS:
        for opt in OPTIMISERS:
            model = member(name, opt)
            t0 = time.perf_counter()
            run_dvc(repo, "repro", f"evaluate@{model}", log=work / f"{model}.log")
            ev = json.loads((repo / "reports/eval" / model / "metrics.json").read_text())
            tr = json.loads((repo / "reports/train" / model / "metrics.json").read_text())
            rows.append((name, opt, ev["validation"]["accuracy"], ev["validation"]["macro_f1"],
                         ev["test"]["accuracy"], ev["test"]["macro_f1"],
                         f"{tr['best_epoch']} / {tr['epochs_run']}", tr["train_seconds"],
                         time.perf_counter() - t0))   # training, and the stage's whole run
    print("| model | optimiser | validation accuracy | validation macro-F1 | test accuracy "
          "| test macro-F1 | best epoch / run | training s | dvc repro s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, opt, va, vf, ta, tf, ep, secs, wall in rows:
        print(f"| {name} | {opt} | {va:.3f} | {vf:.3f} | {ta:.3f} | {tf:.3f} | {ep} | {secs:.0f} "
              f"| {wall:.0f} |")
    print(f"outputs in {repo}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
