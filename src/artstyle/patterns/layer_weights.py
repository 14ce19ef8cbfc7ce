"""Which layers' statistics carry each movement: a style head's weights grouped by layer.

A style member (:mod:`artstyle.models.style_features`, :mod:`artstyle.heads`) scores a
painting from the per-channel means and standard deviations of a frozen network's layers,
shallow to deep: fine texture and colour (early layers, small receptive fields) to
motifs and composition (deep layers). Its class score ``y_c`` is, for the linear heads,
a sum of one partial score per group of descriptor columns ``g`` (a layer's means, or its
standard deviations, or its Gram matrix)::

    y_c = sum_g  z_g . w_cg  + b_c      (z: the standardised descriptor)

The **share** of group ``g`` in class ``c`` is the spread (standard deviation over
paintings) of its partial score ``z_g . w_cg``, divided by the sum over the groups: the
part of the movement's score that moves with that layer's statistics. Without
paintings the spread is taken as ``||w_cg||_2`` (the standard deviation the partial
score would have if the standardised columns were independent), so that a layer of
many channels does not win by its width alone.

PCA heads are mapped back to the descriptor's columns (``w = W_pca @ components``);
the MLP head's weights are its input gradients averaged over the paintings given (its
local linear form). Selvaraju et al. explain where a network looks; this explains which
of the network's depths a head reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Group:
    """Columns ``start:stop`` of a descriptor: ``stat`` (``mean``, ``std`` or ``gram``)
    of ``layer``."""

    layer: str
    stat: str
    start: int
    stop: int

    @property
    def label(self) -> str:
        return f"{self.layer} {self.stat}"


def descriptor_groups(stat_layers: list[str], gram_layers: list[str],
                      channels: dict[str, int]) -> list[Group]:
    """The column groups of a descriptor, in its column order
    (:meth:`artstyle.models.style_features.StyleDescriptor.__call__`).

    Parameters
    ----------
    stat_layers, gram_layers : list of str
    channels : dict of layer -> int
        Channels of each layer (``StyleDescriptor.channels``).

    Returns
    -------
    list of Group
        Per stat layer its C means then its C standard deviations; per Gram layer its
        C (C + 1) / 2 upper-triangle entries.
    """
    out, at = [], 0
    for layer in stat_layers:
        c = channels[layer]
        out += [Group(layer, "mean", at, at + c), Group(layer, "std", at + c, at + 2 * c)]
        at += 2 * c
    for layer in gram_layers:
        c = channels[layer]
        out.append(Group(layer, "gram", at, at + c * (c + 1) // 2))
        at += c * (c + 1) // 2
    return out


def effective_weights(head: Any, X: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The head's weights on the standardised descriptor columns, one row per class.

    Parameters
    ----------
    head : sklearn.pipeline.Pipeline
        ``StandardScaler`` -> ``PCA`` (optional) -> ``LogisticRegression``,
        ``CalibratedClassifierCV(LinearSVC)`` (the folds' mean) or ``MLPClassifier``.
    X : ndarray of shape (n, d), optional
        Descriptors; needed for the MLP (its mean input gradient over them).

    Returns
    -------
    (W, classes) : ndarray of shape (k, d) float64, ndarray of shape (k,) int
        A two-class linear head gives the rows ``[-w/2, w/2]``.

    Raises
    ------
    ValueError
        An MLP head without ``X``.
    TypeError
        A pipeline step other than the above.
    """
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    steps = [s for _, s in head.steps]
    scaler = steps[0] if isinstance(steps[0], StandardScaler) else None
    middle = steps[1:-1] if scaler is not None else steps[:-1]
    project = None
    for step in middle:
        if isinstance(step, PCA) and not step.whiten:
            project = step.components_.astype(np.float64)          # (p, d)
        else:
            raise TypeError(f"layer weights: unknown head step {type(step).__name__}")
    clf = steps[-1]
    if isinstance(clf, LogisticRegression):
        W = clf.coef_.astype(np.float64)
    elif isinstance(clf, CalibratedClassifierCV):
        W = np.mean([c.estimator.coef_ for c in clf.calibrated_classifiers_], axis=0)
    elif isinstance(clf, MLPClassifier):
        if X is None:
            raise ValueError("the MLP head's weights are its mean input gradient: pass X")
        Z = scaler.transform(X) if scaler is not None else np.asarray(X, np.float64)
        if project is not None:
            Z = (Z - head.steps[len(head.steps) - 2][1].mean_) @ project.T
        a, masks = Z, []
        for w, b in zip(clf.coefs_[:-1], clf.intercepts_[:-1]):
            pre = a @ w + b
            masks.append((pre > 0).astype(np.float64))
            a = np.maximum(pre, 0)
        # d y / d z = W1 diag(mask) W2 ..., averaged over the paintings
        G = np.zeros((Z.shape[1], clf.coefs_[-1].shape[1]))
        for i in range(len(Z)):
            m = np.eye(Z.shape[1])
            for w, mask in zip(clf.coefs_[:-1], masks):
                m = (m @ w) * mask[i]
            G += m @ clf.coefs_[-1]
        W = (G / len(Z)).T
    else:
        raise TypeError(f"layer weights: unknown classifier {type(clf).__name__}")
    if project is not None:
        W = W @ project
    if W.shape[0] == 1:
        W = np.concatenate([-W / 2, W / 2])
    return W, np.asarray(clf.classes_, int)


def layer_shares(head: Any, groups: list[Group], X: np.ndarray | None = None) -> np.ndarray:
    """Each column group's share of each class score (see the module docstring).

    Parameters
    ----------
    head : fitted pipeline (:func:`effective_weights`)
    groups : list of Group
        From :func:`descriptor_groups`; together they cover the descriptor's columns.
    X : ndarray of shape (n, d), optional
        Descriptors of paintings: the shares are then the spreads of the partial scores
        over them, otherwise the weight norms.

    Returns
    -------
    ndarray of shape (k, len(groups)), float64
        Rows (the head's classes, ``head.classes_`` order) sum to one.
    """
    W, _ = effective_weights(head, X)
    scaler = head.steps[0][1]
    Z = None
    if X is not None:
        Z = scaler.transform(X) if hasattr(scaler, "scale_") else np.asarray(X, np.float64)
    spread = np.zeros((W.shape[0], len(groups)))
    for j, g in enumerate(groups):
        w = W[:, g.start:g.stop]
        if Z is None:
            spread[:, j] = np.linalg.norm(w, axis=1)
        else:
            spread[:, j] = (Z[:, g.start:g.stop] @ w.T).std(axis=0)
    total = spread.sum(axis=1, keepdims=True)
    return np.divide(spread, total, out=np.zeros_like(spread), where=total > 0)


def plot_layer_weights(path: str | Path, shares: np.ndarray, classes: list[str],
                       groups: list[Group], title: str, notice: str = "") -> Path:
    """A heat map of :func:`layer_shares`: movements down, layers shallow to deep across.

    Parameters
    ----------
    path : path
        The PNG written (atomically).
    shares : ndarray of shape (k, g)
    classes : list of str
        The k movements (rows).
    groups : list of Group
        The g columns, labelled ``<layer> mean`` / ``<layer> std`` / ``<layer> gram``.
    title, notice : str

    Returns
    -------
    pathlib.Path
    """
    from artstyle.figures import new_figure, save_figure, set_title

    k, n = shares.shape
    fig, ax = new_figure(max(6.0, 1.6 + 0.42 * n), 1.6 + 0.34 * k)
    im = ax.imshow(shares, cmap="magma", aspect="auto", vmin=0,
                   vmax=max(float(shares.max()), 1e-9))
    for i in range(k):
        for j in range(n):
            v = shares[i, j]
            ax.text(j, i, f"{v:.0%}" if v >= 0.005 else "", ha="center", va="center",
                    fontsize=6, color="white" if v < 0.6 * shares.max() else "black")
    ax.set_xticks(range(n), [g.label for g in groups], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("layer statistics, shallow (fine texture, colour) to deep (motifs, "
                  "composition)", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01, label="share of the class score's spread")
    set_title(ax, title, notice)
    return save_figure(fig, path)
