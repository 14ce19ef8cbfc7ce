"""Gradient-boosted trees (XGBoost) on CNN embeddings, on the GPU when one is usable.

The ``boost`` stage fits an :class:`xgboost.XGBClassifier` on the penultimate-layer
embeddings written by :mod:`artstyle.embeddings` (one feature file per source CNN).
This module holds the pieces that must behave the same on a CPU-only machine and on
a CUDA machine:

* :func:`select_device` decides ``"cpu"`` or ``"cuda"`` from the installed XGBoost
  build and an injectable GPU probe;
* :func:`normalise_tree_method` maps the legacy ``tree_method="gpu_hist"`` (rejected
  by XGBoost >= 3.0) to the XGBoost 2.0+ spelling ``tree_method="hist"`` plus the
  ``device`` parameter;
* :func:`fit_booster` trains with early stopping on the validation split and
  records the device that actually ran (read back from the booster configuration,
  since XGBoost silently falls back to the CPU when ``device="cuda"`` finds no GPU);
* :func:`save_booster` / :func:`load_booster` use XGBoost's JSON model format.

References
----------
Chen, T. and Guestrin, C. (2016). "XGBoost: A Scalable Tree Boosting System". KDD.
XGBoost 3.2 documentation, "XGBoost GPU Support" and "XGBoost Parameters"
(``device``, ``tree_method``) — https://xgboost.readthedocs.io/.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

from artstyle.config import BoosterParams
from artstyle.io import atomic_path
from artstyle.labels import check_training_classes, encode_labels

logger = logging.getLogger(__name__)

#: Tree methods accepted by XGBoost >= 3.0 (besides the legacy ``gpu_hist`` we map).
TREE_METHODS = ("hist", "approx", "exact")
_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")


# --------------------------------------------------------------------------- device


def xgboost_sees_gpu() -> bool:
    """Report whether XGBoost itself can run on a CUDA GPU in this process.

    The default GPU probe of :func:`select_device`. It trains one depth-1 tree on a
    4 × 1 toy matrix with ``device="cuda"`` and reads back the device XGBoost
    actually used from the booster configuration (XGBoost falls back to the CPU,
    with a warning, when it finds no GPU). This asks exactly the question that
    matters (can *this* XGBoost use a GPU, honouring ``CUDA_VISIBLE_DEVICES`` and
    the driver/runtime pairing), unlike ``nvidia-smi -L`` (ignores
    ``CUDA_VISIBLE_DEVICES``, may be absent) or TensorFlow's device list (depends
    on TensorFlow's own CUDA build). Cost: a few milliseconds without a GPU; on a
    GPU machine it creates the CUDA context (about a second) that the real fit then
    reuses.

    Returns
    -------
    bool
        ``True`` when the probe tree was built on a CUDA device. ``False`` when
        XGBoost fell back to the CPU or raised (the error is logged at DEBUG).
    """
    X = np.array([[0.0], [1.0], [0.0], [1.0]], dtype=np.float32)
    y = np.array([0, 1, 0, 1], dtype=np.float32)
    try:
        with warnings.catch_warnings(), xgb.config_context(verbosity=0):
            warnings.simplefilter("ignore")
            booster = xgb.train(
                {"device": "cuda", "tree_method": "hist", "max_depth": 1,
                 "objective": "binary:logistic", "nthread": 1},
                xgb.DMatrix(X, label=y),
                num_boost_round=1,
            )
        return booster_device(booster).startswith("cuda")
    except xgb.core.XGBoostError as exc:  # e.g. CUDA driver too old for the runtime
        logger.debug("XGBoost GPU probe failed: %s", exc)
        return False


def select_device(
    requested: str = "auto",
    *,
    probe: Callable[[], bool] | None = None,
    build_info: Callable[[], Mapping[str, Any]] | None = None,
) -> str:
    """Choose the XGBoost ``device``: ``"cuda"`` when usable, else ``"cpu"``.

    Parameters
    ----------
    requested : str, default "auto"
        ``"auto"`` — ``"cuda"`` when the installed XGBoost was built with CUDA
        (``xgboost.build_info()["USE_CUDA"]``) *and* the probe sees a GPU,
        otherwise ``"cpu"``; ``"cpu"`` — always the CPU (nothing is probed);
        ``"cuda"`` or ``"cuda:<ordinal>"`` — the GPU, or an error when it is not
        usable. Case and surrounding blanks are ignored.
    probe : callable () -> bool, optional
        Says whether a CUDA GPU is usable; default :func:`xgboost_sees_gpu`.
        Injectable so tests can fake a GPU machine.
    build_info : callable () -> mapping, optional
        Returns XGBoost's build information; default :func:`xgboost.build_info`.
        Injectable for tests.

    Returns
    -------
    str
        ``"cpu"``, ``"cuda"`` or the requested ``"cuda:<ordinal>"``.

    Raises
    ------
    ValueError
        If `requested` is not one of the values above.
    RuntimeError
        If a CUDA device is forced but this XGBoost build lacks CUDA support (for
        example the ``xgboost-cpu`` wheel) or no GPU is usable.
    """
    req = str(requested).strip().lower()
    if req != "auto" and not _DEVICE_RE.match(req):
        raise ValueError(
            f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<ordinal>', got {requested!r}"
        )
    if req == "cpu":
        logger.info("XGBoost device: cpu (requested)")
        return "cpu"

    info = (build_info or xgb.build_info)()
    cuda_built = bool(info.get("USE_CUDA", False))
    if req == "auto" and not cuda_built:
        logger.info("XGBoost device: cpu (this xgboost %s build has no CUDA support)",
                    xgb.__version__)
        return "cpu"
    if not cuda_built:
        raise RuntimeError(
            f"device={requested!r} was requested, but the installed xgboost "
            f"{xgb.__version__} was built without CUDA (xgboost.build_info()['USE_CUDA'] "
            "is False; the 'xgboost-cpu' wheel is CPU-only). Install the 'xgboost' wheel "
            "on a Linux x86-64/aarch64 machine, or set the device to 'auto' or 'cpu'."
        )
    gpu = bool((probe or xgboost_sees_gpu)())
    if req == "auto":
        device = "cuda" if gpu else "cpu"
        logger.info("XGBoost device: %s (auto; CUDA build, GPU %s)", device,
                    "usable" if gpu else "not usable")
        return device
    if not gpu:
        raise RuntimeError(
            f"device={requested!r} was requested, but XGBoost finds no usable CUDA GPU "
            "(check nvidia-smi, the driver version and CUDA_VISIBLE_DEVICES), "
            "or set the device to 'auto' or 'cpu'."
        )
    logger.info("XGBoost device: %s (requested; GPU usable)", req)
    return req


def normalise_tree_method(tree_method: str, device: str) -> tuple[str, str]:
    """Map a configured ``tree_method`` onto what XGBoost >= 3.0 accepts.

    Policy (documented decision):

    * ``"hist"``, ``"approx"`` — returned unchanged with `device`.
    * ``"gpu_hist"`` — the XGBoost < 2.0 spelling of "hist on the GPU", rejected by
      XGBoost 3.x. It becomes ``"hist"`` on the *already resolved* `device` (from
      :func:`select_device`) with a logged warning and a :class:`DeprecationWarning`.
      So ``gpu_hist`` runs on the GPU when one is usable and falls back to the CPU
      (warned) when not, the same way XGBoost treats ``device="cuda"`` without a
      GPU; the ``device`` setting alone decides whether a missing GPU is an error.
      The same params file therefore runs on CPU-only CI and on a CUDA machine.
    * ``"exact"`` — CPU-only in XGBoost; with a CUDA device it is kept and the
      device becomes ``"cpu"``, with a logged warning.

    Parameters
    ----------
    tree_method : str
        One of ``"hist"``, ``"approx"``, ``"exact"`` or the legacy ``"gpu_hist"``
        (case-insensitive).
    device : str
        A resolved device: ``"cpu"``, ``"cuda"`` or ``"cuda:<ordinal>"``.

    Returns
    -------
    tuple of (str, str)
        ``(tree_method, device)`` to pass to XGBoost.

    Raises
    ------
    ValueError
        For any other tree method, or an unresolved device such as ``"auto"``.
    """
    dev = str(device).strip().lower()
    if not _DEVICE_RE.match(dev):
        raise ValueError(
            f"device must be resolved to 'cpu' or 'cuda[:<ordinal>]' (see select_device), "
            f"got {device!r}"
        )
    tm = str(tree_method).strip().lower()
    if tm == "gpu_hist":
        where = ("on the GPU" if dev.startswith("cuda")
                 else "on the CPU, because no usable CUDA GPU was selected")
        msg = (f"tree_method='gpu_hist' was removed in XGBoost 3.0; using tree_method='hist' "
               f"{where} (device={dev!r}). Set tree_method: hist and choose the device with "
               "the device setting instead.")
        logger.warning(msg)
        warnings.warn(msg, DeprecationWarning, stacklevel=2)
        return "hist", dev
    if tm not in TREE_METHODS:
        raise ValueError(
            f"tree_method must be one of {TREE_METHODS} (or the legacy 'gpu_hist'), "
            f"got {tree_method!r}"
        )
    if tm == "exact" and dev.startswith("cuda"):
        logger.warning("tree_method='exact' has no GPU implementation in XGBoost; "
                       "training on the CPU instead of %s", dev)
        return "exact", "cpu"
    return tm, dev


# --------------------------------------------------------------------------- fitting


def booster_device(booster: xgb.Booster) -> str:
    """Return the device a booster is configured for, as XGBoost reports it.

    Reads ``learner.generic_param.device`` from :meth:`xgboost.Booster.save_config`;
    after training this is the device that actually ran (``"cpu"`` after XGBoost's
    fallback from ``"cuda"``, ``"cuda:0"`` on a GPU).

    Parameters
    ----------
    booster : xgboost.Booster

    Returns
    -------
    str
    """
    config = json.loads(booster.save_config())
    return str(config["learner"]["generic_param"]["device"])


def _as_matrix(X: Any, name: str) -> np.ndarray:
    arr = np.asarray(X)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, d), got shape {arr.shape}")
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float32, copy=False)


def fit_booster(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray | None,
    y_val: np.ndarray | None,
    *,
    n_classes: int,
    params: BoosterParams = BoosterParams(),
    device: str = "cpu",
    seed: int = 0,
    n_jobs: int | None = None,
    classes: Sequence[str] | None = None,
    verbose: bool | int = False,
    **xgb_params: Any,
) -> tuple[xgb.XGBClassifier, dict[str, Any]]:
    """Fit a multi-class XGBoost classifier with early stopping on the validation split.

    ``XGBClassifier(objective="multi:softprob", num_class=n_classes,
    eval_metric="mlogloss", early_stopping_rounds=..., random_state=seed,
    tree_method=..., device=...)``; early stopping watches the validation
    multi-class log loss and :meth:`predict_proba` then uses the best iteration.

    Parameters
    ----------
    X_train : ndarray, shape (n_train, d)
        Training features (e.g. CNN embeddings); cast to float32.
    y_train : ndarray of int, shape (n_train,)
        Encoded labels in ``[0, n_classes)``; every class must occur.
    X_val, y_val : ndarray, shapes (n_val, d) and (n_val,), or None
        Validation split for early stopping and the log-loss history; may lack
        classes. Both None → no early stopping (`early_stopping_rounds` must be None).
    n_classes : int
        Number of classes k >= 2 of the fixed class list; the probability matrix
        always has k columns.
    params : artstyle.config.BoosterParams
        ``n_estimators``, ``max_depth``, ``learning_rate``, ``subsample``,
        ``colsample_bytree`` (see XGBoost), ``early_stopping_rounds`` (stop after this
        many rounds without validation-loss improvement; None: no early stopping) and
        ``tree_method`` (see :func:`normalise_tree_method`; ``gpu_hist`` is mapped).
        Defaults come from the params schema. ``params.device`` is not read here.
    device : str, default "cpu"
        Resolved device (``select_device(params.device)``).
    seed : int
        ``random_state`` for row/column subsampling; same seed, data and device →
        identical model.
    n_jobs : int or None
        CPU threads; None → XGBoost's default (all cores).
    classes : sequence of str, optional
        Class names, only for error messages.
    verbose : bool or int
        Passed to :meth:`XGBClassifier.fit` (XGBoost prints evaluation lines).
    **xgb_params
        Further XGBoost parameters (e.g. ``min_child_weight``, ``reg_lambda``).

    Returns
    -------
    model : xgboost.XGBClassifier
        The fitted classifier.
    info : dict
        JSON-serialisable record: ``device`` (device that actually ran, read from the
        booster configuration), ``device_requested``, ``tree_method``,
        ``best_iteration`` (0-based; last round when early stopping is off),
        ``best_score`` (validation mlogloss at it, or None), ``n_rounds`` (rounds
        built), ``fit_seconds`` (wall-clock, s), ``n_train``, ``n_val``,
        ``n_features``, ``n_classes``, ``seed``, ``xgboost_version`` and
        ``val_mlogloss`` (per-round list; empty without a validation split).

    Raises
    ------
    ValueError
        On shape mismatches, labels outside ``[0, n_classes)``, a class without
        training examples, ``n_classes < 2``, or early stopping without validation.
    """
    early_stopping_rounds = params.early_stopping_rounds
    if int(n_classes) < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    n_classes = int(n_classes)
    names = [str(c) for c in classes] if classes is not None else [str(i) for i in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names given for n_classes={n_classes}")

    X_train = _as_matrix(X_train, "X_train")
    y_train = encode_labels(np.asarray(y_train), names)
    if len(y_train) != len(X_train):
        raise ValueError(f"X_train has {len(X_train)} rows but y_train {len(y_train)} labels")
    check_training_classes(y_train, names)

    eval_set = None
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val, or neither")
    if X_val is not None:
        X_val = _as_matrix(X_val, "X_val")
        y_val = encode_labels(np.asarray(y_val), names)
        if len(y_val) != len(X_val):
            raise ValueError(f"X_val has {len(X_val)} rows but y_val {len(y_val)} labels")
        if X_val.shape[1] != X_train.shape[1]:
            raise ValueError(f"X_val has {X_val.shape[1]} features, X_train {X_train.shape[1]}")
        eval_set = [(X_val, y_val)]
    elif early_stopping_rounds is not None:
        raise ValueError("early_stopping_rounds needs a validation split (X_val, y_val)")

    tree_method, device = normalise_tree_method(params.tree_method, device)
    model = xgb.XGBClassifier(
        n_estimators=params.n_estimators,
        max_depth=params.max_depth,
        learning_rate=params.learning_rate,
        subsample=params.subsample,
        colsample_bytree=params.colsample_bytree,
        tree_method=tree_method,
        device=device,
        objective="multi:softprob",
        num_class=n_classes,
        eval_metric="mlogloss",
        early_stopping_rounds=early_stopping_rounds,
        random_state=int(seed),
        n_jobs=n_jobs,
        **xgb_params,
    )
    logger.info("Fitting XGBoost: %d train × %d features, %s validation rows, %d classes, "
                "tree_method=%s, device=%s", X_train.shape[0], X_train.shape[1],
                "no" if X_val is None else len(X_val), n_classes, tree_method, device)
    start = time.perf_counter()
    model.fit(X_train, y_train, eval_set=eval_set, verbose=verbose)
    fit_seconds = time.perf_counter() - start

    booster = model.get_booster()
    ran_on = booster_device(booster)
    if device.startswith("cuda") and not ran_on.startswith("cuda"):
        logger.warning("XGBoost was asked for %s but trained on %s", device, ran_on)
    n_rounds = int(booster.num_boosted_rounds())
    if early_stopping_rounds is not None:
        best_iteration = int(model.best_iteration)
        best_score = float(model.best_score)
    else:
        best_iteration, best_score = n_rounds - 1, None
    history = (model.evals_result().get("validation_0", {}).get("mlogloss", [])
               if eval_set is not None else [])
    info: dict[str, Any] = {
        "device": ran_on,
        "device_requested": device,
        "tree_method": tree_method,
        "best_iteration": best_iteration,
        "best_score": best_score,
        "n_rounds": n_rounds,
        "fit_seconds": round(fit_seconds, 4),
        "n_train": int(X_train.shape[0]),
        "n_val": 0 if X_val is None else int(X_val.shape[0]),
        "n_features": int(X_train.shape[1]),
        "n_classes": n_classes,
        "seed": int(seed),
        "xgboost_version": xgb.__version__,
        "val_mlogloss": [float(v) for v in history],
    }
    logger.info("XGBoost fitted on %s in %.2f s: %d rounds, best iteration %d (val mlogloss %s)",
                ran_on, fit_seconds, n_rounds, best_iteration,
                "n/a" if best_score is None else f"{best_score:.4f}")
    return model, info


# --------------------------------------------------------------------------- persistence


def save_booster(model: xgb.XGBClassifier, path: str | os.PathLike[str]) -> Path:
    """Save a fitted classifier in XGBoost's JSON model format, atomically.

    The model is written under a temporary ``.json`` name in the target folder
    (XGBoost picks the format from the extension) and then renamed, so no
    half-written model is ever left at `path`. The best iteration and score are
    kept (booster attributes); hyper-parameters such as ``device`` are not.

    Parameters
    ----------
    model : xgboost.XGBClassifier
        A fitted classifier.
    path : path-like
        Target file; must end in ``.json``. Parent folders are created.

    Returns
    -------
    pathlib.Path
        `path`.

    Raises
    ------
    ValueError
        If `path` does not end in ``.json``.
    """
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise ValueError(f"booster path must end in .json (XGBoost's JSON format), got {path}")
    with atomic_path(path) as tmp:   # XGBoost picks the format from the ".json" suffix
        model.save_model(tmp)
    logger.info("Saved XGBoost model to %s", path)
    return path


def load_booster(path: str | os.PathLike[str], *, device: str = "cpu") -> xgb.XGBClassifier:
    """Load a classifier saved by :func:`save_booster`.

    Parameters
    ----------
    path : path-like
        A ``.json`` XGBoost model.
    device : str, default "cpu"
        Device for prediction (the model file does not store one).

    Returns
    -------
    xgboost.XGBClassifier
        With ``n_classes_`` and the best iteration restored; :meth:`predict_proba`
        returns shape (n, n_classes_).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no XGBoost model at {path}")
    model = xgb.XGBClassifier(device=device)
    model.load_model(path)
    return model
