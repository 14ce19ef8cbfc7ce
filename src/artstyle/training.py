"""Fitting a zoo model: seeded, early stopping on validation loss, best epoch kept, dvclive curves.

The saved model always holds the weights of the best epoch (lowest validation loss
over all phases): a callback saves them whenever validation loss improves and they are
loaded back at the end, whether early stopping or the epoch cap ended the run.
``vgg19_transfer`` trains in two phases (Yosinski et al. 2014; Chollet, *Deep Learning
with Python*, 5.3): the new head on a frozen base, then the last ``fine_tune_blocks``
convolution blocks unfrozen at ``fine_tune_learning_rate``, each phase with early stopping.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from artstyle.config import ModelSpec
from artstyle.data.dataset import Split, make_dataset, undersample
from artstyle.determinism import setting as cpu_setting
from artstyle.distribute import scale_batch_and_lr
from artstyle.io import atomic_dir, write_json

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Summary of one training run (also written to ``metrics.json``)."""

    best_epoch: int
    epochs_run: int
    best_val_loss: float
    best_val_accuracy: float
    train_seconds: float
    images_per_second: float
    parameters: int
    train_images: int


def _optimizer(name: str, lr: float):
    import keras

    return {"adam": keras.optimizers.Adam, "sgd": lambda learning_rate: keras.optimizers.SGD(
        learning_rate=learning_rate, momentum=0.9), "rmsprop": keras.optimizers.RMSprop}[name](
        learning_rate=lr)


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Inverse-frequency class weights (scikit-learn's ``"balanced"`` heuristic).

    Returns
    -------
    dict of int to float
        ``n_samples / (n_present_classes * count_c)`` for each class present; absent
        classes get weight 1.
    """
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    w = compute_class_weight("balanced", classes=present, y=labels)
    out = {c: 1.0 for c in range(n_classes)}
    out.update({int(c): float(v) for c, v in zip(present, w)})
    return out


def _tail_on_cached_front(model, train: Split, validation: Split, spec: ModelSpec,
                          trainable_blocks: int, batch: int, seed: int, strategy):
    """Train only what can change: ``vgg19_transfer`` on cached features of its frozen front.

    Without augmentation the frozen part of the network (preprocessing and VGG19 blocks
    1..5-``trainable_blocks``) maps each image to the same features every epoch, so
    they are computed once. The returned *tail* model is built from the very layer
    objects after the cut (the trainable VGG19 blocks, then the head), so fitting it
    trains ``model``; only the frozen front is skipped.

    Returns
    -------
    (keras.Model, tf.data.Dataset, tf.data.Dataset)
        The compiled tail and ``(features, label)`` datasets for training and validation.
    """
    import keras
    import tensorflow as tf

    base = model.get_layer("vgg19")
    cut = f"block{5 - trainable_blocks}_pool"
    preprocess = keras.Model(model.inputs, model.get_layer("vgg19_preprocess").output)
    front = keras.Model(base.inputs, base.get_layer(cut).output)
    feats = {}
    for key, split in (("train", train), ("validation", validation)):
        ds = make_dataset(split, input_size=spec.input_size, batch_size=batch, shuffle=False,
                          seed=seed).map(lambda x, y: x)
        feats[key] = front.predict(ds.map(preprocess), verbose=0)
    names = [layer.name for layer in base.layers]
    after_cut = base.layers[names.index(cut) + 1:]
    with strategy.scope():
        inp = keras.Input(feats["train"].shape[1:], name=f"{cut}_features")
        x = inp
        for layer in after_cut:
            x = layer(x)
        head = ("gap", "feature_norm", "pooled_dropout", "embedding", "dropout", "predictions")
        for name in head:
            if any(layer.name == name for layer in model.layers):
                x = model.get_layer(name)(x)
        tail = keras.Model(inp, x, name=f"{model.name}_tail")
        tail.compile(optimizer=model.optimizer.__class__.from_config(model.optimizer.get_config()),
                     loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    train_ds = (tf.data.Dataset.from_tensor_slices((feats["train"], train.labels))
                .shuffle(len(train), seed=seed, reshuffle_each_iteration=True).batch(batch))
    val_ds = tf.data.Dataset.from_tensor_slices((feats["validation"], validation.labels)).batch(batch)
    return tail, train_ds, val_ds


def train_model(spec: ModelSpec, train: Split, validation: Split, classes: list[str],
                out_dir: str | Path, report_dir: str | Path, *, seed: int,
                vgg19_weights: str | Path | None = None, strategy=None,
                name: str = "model", verbose: int = 2) -> TrainResult:
    """Train one model of the zoo and save its best epoch.

    Parameters
    ----------
    spec : ModelSpec
        Architecture and optimisation settings.
    train, validation : Split
        Prepared images (uint8) and integer labels.
    classes : list of str
        The fixed class order; ``len(classes)`` is the softmax width.
    out_dir : path
        Written atomically: ``model.keras`` (best epoch), ``spec.json``, ``classes.json``.
    report_dir : path
        dvclive directory: per-epoch ``loss``, ``accuracy``, ``val_loss``,
        ``val_accuracy`` under ``plots/metrics/`` and ``metrics.json`` (summary).
    seed : int
        Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``).
    vgg19_weights : path, optional
        Needed by the ``vgg19_transfer`` family.
    strategy : tf.distribute.Strategy, optional
        Model and optimizer are created in its scope (see :mod:`artstyle.distribute`).

    Returns
    -------
    TrainResult
    """
    import keras
    import tensorflow as tf
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback

    from artstyle.models.zoo import build_model, unfreeze_top_blocks

    keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync
    batch, learning_rate = scale_batch_and_lr(spec.batch_size, spec.learning_rate, replicas)
    _, fine_tune_learning_rate = scale_batch_and_lr(spec.batch_size, spec.fine_tune_learning_rate,
                                                    replicas)
    if spec.balance == "undersample":
        before = len(train)
        train = undersample(train, seed)
        logger.info("undersampled training set from %d to %d images", before, len(train))
    weights = class_weights(train.labels, len(classes)) if spec.class_weighting else None
    train_ds = make_dataset(train, input_size=spec.input_size, batch_size=batch, shuffle=True,
                            seed=seed)
    val_ds = make_dataset(validation, input_size=spec.input_size, batch_size=batch,
                          shuffle=False, seed=seed)

    with strategy.scope():
        model = build_model(spec, len(classes), seed=seed, name=name, vgg19_weights=vgg19_weights)
        model.compile(optimizer=_optimizer(spec.optimizer, learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    report_dir = Path(report_dir)
    phases = [(spec.epochs, None)]
    if spec.family == "vgg19_transfer" and spec.fine_tune_blocks and spec.fine_tune_epochs:
        phases.append((spec.fine_tune_epochs, spec.fine_tune_blocks))

    history: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    # The model folder and dvclive's logs are built under temporary names beside their
    # targets and replace them only on success; the best-epoch checkpoint lives in the
    # model's temporary folder, so an interrupted run leaves nothing behind.
    with atomic_dir(out_dir) as tmp_out, atomic_dir(report_dir) as tmp_report, \
            Live(dir=str(tmp_report), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        best_path = tmp_out / "best.weights.h5"
        best = {"val_loss": np.inf}

        class _TrackBest(keras.callbacks.Callback):
            """Save the weights whenever validation loss improves, across phases."""

            def __init__(self, epochs_before: int):
                super().__init__()
                self.epochs_before = epochs_before   # epochs of earlier phases

            def on_epoch_end(self, epoch, logs=None):
                loss = float((logs or {}).get("val_loss", np.inf))
                if loss < best["val_loss"]:
                    best.update(val_loss=loss, val_accuracy=float(logs.get("val_accuracy", 0)),
                                epoch=self.epochs_before + epoch + 1)
                    model.save_weights(best_path)   # the whole model, also when fitting the head

        for epochs, blocks in phases:
            if blocks is not None:
                if best_path.exists():
                    model.load_weights(best_path)
                opened = unfreeze_top_blocks(model, blocks)
                logger.info("fine-tuning %d layers: %s", len(opened), ", ".join(opened))
                with strategy.scope():
                    model.compile(optimizer=_optimizer(spec.optimizer, fine_tune_learning_rate),
                                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            fit_model, fit_train, fit_val = model, train_ds, val_ds
            if spec.family == "vgg19_transfer" and not spec.augmentation:
                fit_model, fit_train, fit_val = _tail_on_cached_front(
                    model, train, validation, spec, blocks or 0, batch, seed, strategy)
            # Warm-up: on small data, batch-norm statistics make the first epochs' validation
            # loss noisy; stopping is only considered from `start_from_epoch` on (phase 1).
            stopper = keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=spec.patience, restore_best_weights=False,
                start_from_epoch=spec.start_from_epoch if blocks is None else 0)
            # shuffle=False: train_ds shuffles itself each epoch (Keras ignores it for datasets)
            h = fit_model.fit(fit_train, validation_data=fit_val, epochs=epochs, verbose=verbose,
                          shuffle=False,
                          class_weight=weights,
                          callbacks=[_TrackBest(len(history.get("loss", []))), stopper,
                                     DVCLiveCallback(live=live)])
            for k, v in h.history.items():
                history.setdefault(k, []).extend(float(x) for x in v)
        seconds = time.perf_counter() - t0
        model.load_weights(best_path)
        epochs_run = len(history.get("loss", []))
        result = TrainResult(
            best_epoch=int(best.get("epoch", epochs_run)),
            epochs_run=epochs_run,
            best_val_loss=float(best["val_loss"]),
            best_val_accuracy=float(best.get("val_accuracy", 0.0)),
            train_seconds=round(seconds, 2),
            images_per_second=round(epochs_run * len(train) / seconds, 1) if seconds else 0.0,
            parameters=int(model.count_params()),
            train_images=len(train),
        )
        for key, value in vars(result).items():
            live.summary[key] = value
        # The TensorFlow CPU setting the weights were made under (a choice, not the machine).
        live.summary["cpu"] = cpu_setting()
        best_path.unlink()
        model.save(tmp_out / "model.keras")
        write_json(tmp_out / "spec.json", spec.model_dump())
        write_json(tmp_out / "classes.json", classes)
        write_json(tmp_out / "history.json", history)
    logger.info("%s: best epoch %d of %d, val_loss %.4f, val_accuracy %.3f, %.1f s",
                name, result.best_epoch, result.epochs_run, result.best_val_loss,
                result.best_val_accuracy, result.train_seconds)
    return result


__all__ = ["TrainResult", "class_weights", "train_model"]
