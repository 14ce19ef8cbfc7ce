"""Experiment: which TensorFlow settings make CPU training differ between instruction sets.

Trains a tiny zoo CNN (two conv blocks, augmentation, 4 epochs, seeded, 48 synthetic
32 px images) in a fresh process per setting and prints the start of the SHA-256 of its
final weights, for oneDNN ops on/off (``TF_ENABLE_ONEDNN_OPTS``), op determinism
(``tf.config.experimental.enable_op_determinism()``), 1 or 2 intra-/inter-op threads and
oneDNN limited to each instruction set (``ONEDNN_MAX_CPU_ISA``, which plays an older
CPU). The table in ``docs/development.md`` ("What is repeatable") is its output.

    PYTHONPATH=src .venv/bin/python benchmarks/isa_matrix.py [--isa AVX512_CORE AVX2 ...]

About 30 s per cell on 2 cores (40 cells). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ISAS = ("machine", "AVX512_CORE_BF16", "AVX512_CORE", "AVX2", "SSE41")


def worker(threads: int, determinism: bool) -> None:
    """Train the tiny CNN in this process (TensorFlow not yet imported); print one JSON line."""
    sys.path.insert(0, str(ROOT / "src"))
    import logging

    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    if determinism:
        tf.config.experimental.enable_op_determinism()
    logging.disable(logging.WARNING)
    import keras
    import numpy as np

    from artstyle.config import ModelSpec
    from artstyle.data.dataset import Split
    from artstyle.training import train_model

    rng = np.random.default_rng(0)
    n, k = 48, 3
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(n) % k
    for c in range(k):
        images[labels == c, :, :, c] = np.clip(images[labels == c, :, :, c].astype(int) + 60,
                                                0, 255)
    ids = np.array([str(i) for i in range(n)])
    train, val = Split(images[:36], labels[:36], ids[:36]), Split(images[36:], labels[36:], ids[36:])
    spec = ModelSpec(family="cnn", input_size=32, conv_filters=[8, 16], dense_units=16,
                     dropout=0.2, pooled_dropout=0.1, batch_size=8, epochs=4, patience=10,
                     start_from_epoch=0, augmentation=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_model(spec, train, val, ["a", "b", "c"], f"{tmp}/m", f"{tmp}/r", seed=1,
                    name="tiny", verbose=0)
        model = keras.models.load_model(f"{tmp}/m/model.keras")
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes()
                                     for w in model.get_weights()))
    print(json.dumps({"sha256": digest.hexdigest()[:8]}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--isa", nargs="+", default=list(ISAS))
    ap.add_argument("--worker", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker[0], bool(args.worker[1]))
        return 0
    clean = {k: v for k, v in os.environ.items() if k not in (
        "ONEDNN_MAX_CPU_ISA", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
        "TF_DETERMINISTIC_OPS", "TF_ENABLE_ONEDNN_OPTS")}
    clean["TF_CPP_MIN_LOG_LEVEL"] = "3"
    print("| oneDNN ops | op determinism | threads | " + " | ".join(args.isa) + " |")
    print("|---" * (3 + len(args.isa)) + "|")
    for onednn in ("1", "0"):
        for determinism in (0, 1):
            for threads in (1, 2):
                cells = []
                for isa in args.isa:
                    env = dict(clean, TF_ENABLE_ONEDNN_OPTS=onednn)
                    if isa != "machine":
                        env["ONEDNN_MAX_CPU_ISA"] = isa
                    out = subprocess.run([sys.executable, __file__, "--worker", str(threads),
                                          str(determinism)], env=env, capture_output=True,
                                         text=True, check=True).stdout
                    cells.append(f"`{json.loads(out.strip().splitlines()[-1])['sha256']}`")
                print(f"| {'on' if onednn == '1' else 'off'} | {'yes' if determinism else 'no'} "
                      f"| {threads} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
