"""Inference with a trained zoo model: batched class probabilities for uint8 images."""

from __future__ import annotations

import numpy as np


def predict_proba(model, images: np.ndarray, input_size: int, batch_size: int = 64) -> np.ndarray:
    """Class probabilities of a Keras zoo model.

    Parameters
    ----------
    model : keras.Model
        A model of :mod:`artstyle.models.zoo` (float RGB [0, 255] in, softmax out).
    images : ndarray of shape (n, H, W, 3), uint8
    input_size : int
        The model's training side; images are resized to it (bilinear, antialiased)
        exactly as the training pipeline did.

    Returns
    -------
    ndarray of shape (n, n_classes), float32
    """
    from artstyle.data.dataset import resize_batch

    if len(images) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    out = [model.predict(resize_batch(images[i:i + batch_size], input_size), verbose=0)
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32)
