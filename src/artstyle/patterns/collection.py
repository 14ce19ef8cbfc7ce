"""The collection seen through a model's embeddings, and the model's confusions.

Embeddings are the penultimate-layer vectors of :mod:`artstyle.embeddings` (the input of
the final classification ``Dense``). The map is a 2-D t-SNE (van der Maaten & Hinton,
2008; scikit-learn's, exact up to 1,000 points, Barnes-Hut beyond), after PCA to at most 50 dimensions, with the
perplexity capped for small collections (:func:`adapted_perplexity`). Prototypes and
outliers are the paintings closest to and farthest from their movement's mean embedding
(Euclidean); neighbours are the nearest training paintings of a query.
"""

from __future__ import annotations

import numpy as np


def adapted_perplexity(n: int, perplexity: float) -> float:
    """The perplexity used for ``n`` points: at most ``(n - 1) / 3``, at least 1.

    t-SNE's perplexity is an effective number of neighbours; it must stay well below
    ``n`` (scikit-learn refuses ``perplexity >= n``) and about a third of it keeps small
    maps from collapsing into one ball.
    """
    return float(max(1.0, min(perplexity, (n - 1) / 3.0)))


#: Up to this many points t-SNE computes exact gradients (O(n^2), faster for small n).
EXACT_TSNE_MAX_POINTS = 1000


def embedding_map(X: np.ndarray, *, perplexity: float = 30.0, seed: int = 0,
                  max_iter: int = 500) -> np.ndarray:
    """2-D t-SNE coordinates of embeddings, one row per input row, in the same order.

    Parameters
    ----------
    X : ndarray of shape (n, d), float
        One embedding per painting (n >= 2).
    perplexity : float
        Requested perplexity, capped by :func:`adapted_perplexity`.
    seed : int
        Random state of PCA and t-SNE.
    max_iter : int
        t-SNE iterations (at least 250: the first 250 exaggerate the clusters).

    Returns
    -------
    ndarray of shape (n, 2), float32
        Row ``i`` is painting ``i``. Two points are returned as they are (PCA only) when
        ``n < 4``, where t-SNE has nothing to balance.

    Raises
    ------
    ValueError
        Fewer than 2 rows, or ``X`` is not 2-D.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    X = np.asarray(X, np.float64)
    if X.ndim != 2 or len(X) < 2:
        raise ValueError(f"embedding_map needs an (n >= 2, d) array, got shape {X.shape}")
    X = (X - X.mean(axis=0)) / (X.std(axis=0).mean() + 1e-12)
    dims = min(50, X.shape[1], len(X))
    if dims < X.shape[1]:
        X = PCA(dims, random_state=seed).fit_transform(X)
    if len(X) < 4:
        out = np.zeros((len(X), 2))
        out[:, :min(2, X.shape[1])] = X[:, :2]
        return out.astype(np.float32)
    tsne = TSNE(2, perplexity=adapted_perplexity(len(X), perplexity), init="pca",
                learning_rate="auto", max_iter=max(250, max_iter), random_state=seed,
                method="exact" if len(X) <= EXACT_TSNE_MAX_POINTS else "barnes_hut")
    if len(X) > EXACT_TSNE_MAX_POINTS:
        return tsne.fit_transform(X).astype(np.float32)
    # Exact t-SNE of a small collection: one BLAS thread is faster than several that
    # wait for each other on busy cores.
    with threadpool_limits(1):
        return tsne.fit_transform(X).astype(np.float32)


def prototypes_and_outliers(X: np.ndarray, labels: np.ndarray, n_classes: int,
                            n: int) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per class, the rows closest to and farthest from the class's mean embedding.

    Parameters
    ----------
    X : ndarray of shape (m, d)
        Embeddings (the training split).
    labels : ndarray of shape (m,), int
    n_classes : int
    n : int
        Rows of each kind (fewer when the class is smaller).

    Returns
    -------
    dict of int to (closest, farthest, distances)
        ``closest`` and ``farthest``: row indices into ``X`` (int arrays, nearest first
        and farthest first); ``distances``: ndarray of shape (m,), every row's distance
        to its class's mean. Classes without rows are left out.
    """
    out = {}
    distances = np.zeros(len(X))
    for c in range(n_classes):
        rows = np.flatnonzero(labels == c)
        if rows.size == 0:
            continue
        d = np.linalg.norm(X[rows] - X[rows].mean(axis=0), axis=1)
        distances[rows] = d
        order = rows[np.argsort(d, kind="stable")]
        out[c] = (order[:n], order[::-1][:n], distances)
    return out


def nearest_neighbours(queries: np.ndarray, X: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` rows of ``X`` nearest each query (Euclidean).

    Parameters
    ----------
    queries : ndarray of shape (q, d)
    X : ndarray of shape (m, d)
    n : int

    Returns
    -------
    (ndarray of shape (q, min(n, m)) int, ndarray of the same shape float)
        Indices into ``X``, nearest first, and their distances.
    """
    d = np.linalg.norm(np.asarray(queries)[:, None, :] - np.asarray(X)[None, :, :], axis=2)
    idx = np.argsort(d, axis=1, kind="stable")[:, :min(n, len(X))]
    return idx, np.take_along_axis(d, idx, axis=1)


def confused_pairs(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int,
                   n: int) -> list[tuple[int, int, int]]:
    """The most confused pairs of classes (mistakes both ways counted together).

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (m,), int
    n_classes : int
    n : int
        Pairs wanted.

    Returns
    -------
    list of (a, b, count)
        ``a < b``, ``count`` = paintings of ``a`` taken for ``b`` plus the reverse; only
        pairs with mistakes, most first (ties by class order).
    """
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))
    pairs = [(a, b, int(cm[a, b] + cm[b, a])) for a in range(n_classes)
             for b in range(a + 1, n_classes) if cm[a, b] + cm[b, a] > 0]
    return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))[:n]


def stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """About ``n`` row indices, spread evenly over the classes (sorted, seeded).

    Returns
    -------
    ndarray of int
        At most ``n`` distinct indices into ``labels``, in increasing order.
    """
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    if len(labels) <= n or classes.size == 0:
        return np.arange(len(labels))
    per = max(1, n // classes.size)
    picked = [rng.choice(rows, min(per, rows.size), replace=False)
              for rows in (np.flatnonzero(labels == c) for c in classes)]
    return np.sort(np.concatenate(picked))[:n]
