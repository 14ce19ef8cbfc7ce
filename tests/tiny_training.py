"""Train a tiny zoo CNN in this process and print the SHA-256 of its final weights (one JSON line).

Run in a fresh process per setting (oneDNN reads its environment once, at start)::

    ONEDNN_MAX_CPU_ISA=AVX2 python tests/tiny_training.py --repeatable 1 --threads 2

``ONEDNN_MAX_CPU_ISA`` in the environment plays the CPU (what oneDNN may use), and
``--repeatable``/``--threads`` are the params (``train.repeatable``, ``train.threads``),
applied by :func:`artstyle.determinism.configure` before TensorFlow is imported, as the
train stage does. Used by ``tests/test_determinism.py`` and ``benchmarks/repeatability.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeatable", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()

    from artstyle.determinism import configure

    record = configure(bool(args.repeatable), args.threads)   # before TensorFlow starts
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
    for c in range(k):   # a learnable colour cue per class
        images[labels == c, :, :, c] = np.clip(images[labels == c, :, :, c].astype(int) + 60,
                                                0, 255)
    ids = np.array([str(i) for i in range(n)])
    train = Split(images[:36], labels[:36], ids[:36])
    validation = Split(images[36:], labels[36:], ids[36:])
    # Every layer kind of the zoo's CNNs: augmentation, conv, batch norm, dropout, dense.
    spec = ModelSpec(family="cnn", input_size=32, conv_filters=[8, 16, 32],
                     dense_units=16, dropout=0.2, pooled_dropout=0.1, batch_size=8,
                     epochs=args.epochs, patience=10, start_from_epoch=0, augmentation=True)
    with tempfile.TemporaryDirectory() as tmp:
        r = train_model(spec, train, validation, ["a", "b", "c"], f"{tmp}/m", f"{tmp}/r",
                        seed=1, name="tiny", verbose=0)
        model = keras.models.load_model(f"{tmp}/m/model.keras")
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    print(json.dumps({"weights_sha256": digest.hexdigest(), "best_val_loss": r.best_val_loss,
                      "setting": record}))


if __name__ == "__main__":
    main()
