"""Data-parallel training beyond one device: ``tf.distribute`` strategy selection.

Synchronous data parallelism (every replica holds a full copy of the model, each
computes gradients on its own slice of the global batch, gradients are summed by
all-reduce before the update) is what :class:`tf.distribute.MirroredStrategy`
(several GPUs of one machine) and :class:`tf.distribute.MultiWorkerMirroredStrategy`
(several machines, collective all-reduce over gRPC) implement.

Multi-worker training is configured through the ``TF_CONFIG`` environment variable,
one JSON document per process, identical ``cluster`` everywhere and a distinct
``task``::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}'

Worker 0 is the *chief* (unless the cluster has an explicit ``"chief"`` job): it is
the only process that writes the real model, checkpoints and metrics.  Every worker
must still run the same saving code (saving may involve collective operations), so
non-chief workers write into a throw-away temporary directory, see
:func:`worker_output_path` and :func:`chief_output`.

.. important::
   :class:`~tf.distribute.MultiWorkerMirroredStrategy` must be created at program
   start, before any other TensorFlow operation (creating a tensor, listing logical
   devices, building a Keras model, loading data with ``tf.data``).  Collective ops
   are configured when the TensorFlow runtime (the eager context) is initialised;
   once it is, TensorFlow raises ``RuntimeError: Collective ops must be configured
   at program startup``.  Call :func:`make_strategy` first thing in ``main()``.

References
----------
TensorFlow guide "Multi-worker training with Keras",
https://www.tensorflow.org/tutorials/distribute/multi_worker_with_keras
Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
arXiv:1706.02677, 2017 (linear learning-rate scaling rule).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from artstyle.errors import ArtstyleError
from artstyle.io import temporary_sibling

if TYPE_CHECKING:  # importing TensorFlow is slow; do it only when a strategy is built
    import tensorflow as tf

logger = logging.getLogger(__name__)

StrategyKind = Literal["auto", "none", "mirrored", "multi_worker"]
STRATEGY_KINDS: tuple[str, ...] = ("auto", "none", "mirrored", "multi_worker")

#: Cluster jobs whose tasks take part in synchronous training (``evaluator`` does not).
_TRAINING_JOBS = ("chief", "worker")


class TFConfigError(ArtstyleError, ValueError):
    """``TF_CONFIG`` is missing, not JSON, or does not describe a valid cluster/task."""


def parse_tf_config(raw: str | None = None) -> dict[str, Any] | None:
    """Parse and validate a ``TF_CONFIG`` document.

    Parameters
    ----------
    raw : str or None
        The JSON text; ``None`` reads the ``TF_CONFIG`` environment variable.

    Returns
    -------
    dict or None
        ``{"cluster": {job: [host:port, ...]}, "task": {"type": job, "index": int}}``,
        or ``None`` when ``TF_CONFIG`` is unset or blank (single-process training).

    Raises
    ------
    TFConfigError
        When the text is not a JSON object, has no ``cluster`` with a non-empty
        address list per job, or its ``task`` names a job or index that is not in
        ``cluster``.
    """
    if raw is None:
        raw = os.environ.get("TF_CONFIG")
    if raw is None or not raw.strip():
        return None
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise TFConfigError(f"TF_CONFIG is not valid JSON ({exc}): {raw[:200]!r}") from exc
    if not isinstance(cfg, dict):
        raise TFConfigError(f"TF_CONFIG must be a JSON object, got {type(cfg).__name__}")
    cluster = cfg.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise TFConfigError('TF_CONFIG has no "cluster" mapping, e.g. '
                            '{"cluster": {"worker": ["host1:port", "host2:port"]}, ...}')
    for job, addresses in cluster.items():
        if (not isinstance(addresses, list) or not addresses
                or not all(isinstance(a, str) and ":" in a for a in addresses)):
            raise TFConfigError(f'TF_CONFIG cluster job "{job}" must be a non-empty list of '
                                f'"host:port" strings, got {addresses!r}')
    task = cfg.get("task")
    if not isinstance(task, dict) or "type" not in task:
        raise TFConfigError('TF_CONFIG has no "task" with a "type", e.g. '
                            '"task": {"type": "worker", "index": 0}')
    task_type = task["type"]
    try:
        index = int(task.get("index", 0))
    except (TypeError, ValueError) as exc:
        raise TFConfigError(f"TF_CONFIG task index must be an integer, got "
                            f"{task.get('index')!r}") from exc
    if task_type not in cluster:
        raise TFConfigError(f'TF_CONFIG task type "{task_type}" is not a job of the cluster '
                            f"{sorted(cluster)}")
    if not 0 <= index < len(cluster[task_type]):
        raise TFConfigError(f'TF_CONFIG task index {index} is out of range for job "{task_type}" '
                            f"with {len(cluster[task_type])} task(s)")
    return {"cluster": cluster, "task": {**task, "type": task_type, "index": index}}


def num_workers(tf_config: Mapping[str, Any] | None = None) -> int:
    """Number of training processes (``chief`` + ``worker`` tasks) in ``TF_CONFIG``.

    Parameters
    ----------
    tf_config : mapping or None
        A parsed ``TF_CONFIG`` (:func:`parse_tf_config`); ``None`` reads the environment.

    Returns
    -------
    int
        1 when ``TF_CONFIG`` is unset, else the task count of the training jobs.
    """
    cfg = parse_tf_config() if tf_config is None else tf_config
    if cfg is None:
        return 1
    return sum(len(cfg["cluster"].get(job, [])) for job in _TRAINING_JOBS)


def is_chief(tf_config: Mapping[str, Any] | None = None) -> bool:
    """Whether this process is the chief, the only one that writes real outputs.

    The chief is the task of type ``"chief"``; when the cluster has no ``chief`` job,
    it is ``worker`` index 0 (the convention of ``MultiWorkerMirroredStrategy``).
    Without ``TF_CONFIG`` (single-process training) the process is the chief.

    Parameters
    ----------
    tf_config : mapping or None
        A parsed ``TF_CONFIG``; ``None`` reads (and validates) the environment variable.

    Returns
    -------
    bool

    Raises
    ------
    TFConfigError
        When ``TF_CONFIG`` is set but invalid.
    """
    cfg = parse_tf_config() if tf_config is None else tf_config
    if cfg is None:
        return True
    task_type, index = cfg["task"]["type"], int(cfg["task"].get("index", 0))
    if task_type == "chief":
        return True
    return task_type == "worker" and index == 0 and "chief" not in cfg["cluster"]


def worker_output_path(path: str | os.PathLike[str],
                       tf_config: Mapping[str, Any] | None = None) -> Path:
    """Where this worker should write an output whose real location is ``path``.

    The chief gets ``path`` itself.  A non-chief worker gets ``path``'s file name inside
    a fresh temporary directory (``artstyle-worker-<type>-<index>-*`` under the system
    temp dir), which the caller deletes after writing (:func:`chief_output` does both).

    Parameters
    ----------
    path : path-like
        The real output location (file or directory).
    tf_config : mapping or None
        A parsed ``TF_CONFIG``; ``None`` reads the environment variable.

    Returns
    -------
    pathlib.Path
    """
    cfg = parse_tf_config() if tf_config is None else tf_config
    path = Path(path)
    if is_chief(cfg):
        return path
    assert cfg is not None  # non-chief implies a TF_CONFIG
    task = cfg["task"]
    tmp = Path(tempfile.mkdtemp(prefix=f"artstyle-worker-{task['type']}-{task['index']}-"))
    return tmp / path.name


@contextlib.contextmanager
def chief_output(path: str | os.PathLike[str],
                 tf_config: Mapping[str, Any] | None = None) -> Iterator[Path]:
    """Context manager yielding the path to write ``path`` to, chief-only and atomic.

    * Chief: yields a temporary sibling (:func:`artstyle.io.temporary_sibling`, which
      also removes what killed runs left in that folder); on normal exit it is
      renamed onto ``path`` (replacing an older file or directory), so no half-written
      model is ever visible.  On error the temporary is removed.
    * Non-chief worker: yields a path in a throw-away temporary directory that is
      deleted on exit, whatever happens.  ``path`` is never touched.

    Every worker must run the same saving code (saving may run collective ops), e.g.::

        with chief_output("models/cnn.keras") as out:
            model.save(out)

    Parameters
    ----------
    path : path-like
        Real output file or directory. Its parent is created on the chief.
    tf_config : mapping or None
        A parsed ``TF_CONFIG``; ``None`` reads the environment variable.

    Yields
    ------
    pathlib.Path
    """
    cfg = parse_tf_config() if tf_config is None else tf_config
    path = Path(path)
    if not is_chief(cfg):
        target = worker_output_path(path, cfg)
        try:
            yield target
        finally:
            shutil.rmtree(target.parent, ignore_errors=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    # Keep the suffix: Keras picks the saving format from it (".keras", ".weights.h5").
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp} for {path}")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def scale_batch_and_lr(per_replica_batch: int, base_lr: float, replicas: int) -> tuple[int, float]:
    """Global batch size and learning rate for synchronous data-parallel training.

    Each of the ``replicas`` processes a batch of ``per_replica_batch`` examples per step,
    so one optimizer step sees ``per_replica_batch * replicas`` examples.  Following the
    *linear scaling rule* of Goyal et al. (2017) -- "when the minibatch size is
    multiplied by k, multiply the learning rate by k" -- the learning rate tuned for one
    replica's batch is multiplied by ``replicas``, which keeps the expected weight update
    per example unchanged.  The rule holds for SGD-type optimizers up to a few thousand
    examples per batch and should be combined with a learning-rate warm-up over the
    first epochs when the factor is large; adaptive optimizers (Adam) tolerate it less
    well, where a square-root rule is a common, gentler alternative.

    Parameters
    ----------
    per_replica_batch : int
        Examples per replica per step, > 0.
    base_lr : float
        Learning rate tuned for a single replica with ``per_replica_batch``, > 0.
    replicas : int
        ``strategy.num_replicas_in_sync``, > 0.

    Returns
    -------
    (global_batch, lr) : tuple[int, float]
        Batch size to pass to ``tf.data.Dataset.batch`` / ``model.fit`` (Keras splits it
        across replicas) and the scaled learning rate.

    Raises
    ------
    ValueError
        If a batch size or replica count is not a positive integer or the learning rate
        is not a positive finite number.

    References
    ----------
    Goyal, P. et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
    arXiv:1706.02677, 2017, section 2.1.
    """
    for name, value in (("per_replica_batch", per_replica_batch), ("replicas", replicas)):
        if isinstance(value, bool) or int(value) != value or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    base_lr = float(base_lr)
    if not (base_lr > 0 and base_lr != float("inf")):
        raise ValueError(f"base_lr must be a positive finite number, got {base_lr!r}")
    return int(per_replica_batch) * int(replicas), base_lr * int(replicas)


def _make_reduce_nest_aware(strategy: tf.distribute.Strategy) -> None:
    """Let ``strategy.reduce`` accept a nest (tuple/dict) of per-replica values.

    Keras 3 (TensorFlow backend, ``Trainer._maybe_symbolic_build``) calls
    ``strategy.reduce("MEAN", (x, y), axis=None)`` on the first batch, a *nest* of
    ``PerReplica`` values.  ``CollectiveAllReduceStrategy`` (the class behind
    ``MultiWorkerMirroredStrategy``) only reduces single values and fails with
    ``ValueError: Attempt to convert a value (PerReplica: ...) with an unsupported
    type``, so ``model.fit`` breaks in multi-worker mode (keras-team/keras#20585,
    tensorflow/tensorflow#72388).  Mapping the original ``reduce`` over the leaves (in
    the same deterministic order on every worker) keeps single-value calls unchanged.

    Keras 3 also reduces the per-replica training logs (scalar losses and metric
    results) with ``strategy.reduce("MEAN", v, axis=0)`` in multi-worker mode, which
    fails for rank-0 values ("Invalid reduction dimension 0 for input with 0
    dimensions"); for those the wrapper reduces across replicas only (``axis=None``),
    i.e. the mean over replicas that Keras computes for single-worker strategies.
    """
    import tensorflow as tf

    single_reduce = strategy.reduce

    def reduce_one(reduce_op, value, axis):
        if value is None:
            return None
        if axis is not None:
            local = (strategy.experimental_local_results(value)
                     if isinstance(value, tf.distribute.DistributedValues) else (value,))
            if all(getattr(t, "shape", None) is not None and t.shape.rank == 0 for t in local):
                axis = None  # a scalar has no batch axis: reduce across replicas only
        return single_reduce(reduce_op, value, axis=axis)

    def reduce(reduce_op, value, axis=None):
        if tf.nest.is_nested(value):
            return tf.nest.map_structure(lambda v: reduce_one(reduce_op, v, axis), value)
        return reduce_one(reduce_op, value, axis)

    reduce.__doc__ = single_reduce.__doc__
    strategy.reduce = reduce


def make_strategy(kind: StrategyKind = "auto") -> tf.distribute.Strategy:
    """Create the ``tf.distribute`` strategy for training.

    Parameters
    ----------
    kind : {"auto", "none", "mirrored", "multi_worker"}
        * ``"auto"``: ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names more than
          one training task, else ``MirroredStrategy`` when more than one GPU is visible,
          else the default (no-op, single-device) strategy.
        * ``"none"``: the default strategy (``tf.distribute.get_strategy()``).
        * ``"mirrored"``: ``MirroredStrategy`` over all visible GPUs (on a machine
          without GPU it mirrors over the single CPU device, i.e. one replica).
        * ``"multi_worker"``: ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``.

    Returns
    -------
    tf.distribute.Strategy
        Build and compile the model inside ``strategy.scope()``; batch the dataset with
        the *global* batch size (:func:`scale_batch_and_lr` with
        ``strategy.num_replicas_in_sync``).

    Raises
    ------
    ValueError
        For an unknown ``kind``.
    TFConfigError
        ``"multi_worker"`` without a valid ``TF_CONFIG`` (also ``"auto"`` with an
        invalid one).
    RuntimeError
        ``MultiWorkerMirroredStrategy`` requested after TensorFlow's runtime was
        already initialised: create the strategy at program start.

    Notes
    -----
    Create a ``MultiWorkerMirroredStrategy`` first thing in the program (see the module
    docstring).  Creating it does not wait for the other workers; the first collective
    operation (variable initialisation in ``strategy.scope()`` / the first training
    step) blocks until all workers of ``TF_CONFIG`` are up.
    """
    if kind not in STRATEGY_KINDS:
        raise ValueError(f"unknown strategy kind {kind!r}; expected one of {STRATEGY_KINDS}")
    # Validate TF_CONFIG before importing TensorFlow (slow) so that mistakes fail fast.
    cfg = parse_tf_config() if kind in ("auto", "multi_worker") else None
    if kind == "multi_worker" and cfg is None:
        raise TFConfigError(
            "strategy 'multi_worker' needs the TF_CONFIG environment variable, e.g. "
            'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}\' (one per process, distinct task)')

    import tensorflow as tf

    chosen: str = kind
    if kind == "auto":
        if cfg is not None and num_workers(cfg) > 1:
            chosen = "multi_worker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            chosen = "mirrored"
        else:
            chosen = "none"

    if chosen == "multi_worker":
        assert cfg is not None
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
        except RuntimeError as exc:
            raise RuntimeError(
                "MultiWorkerMirroredStrategy must be created at program start, before any "
                f"other TensorFlow operation initialised the runtime ({exc})") from exc
        _make_reduce_nest_aware(strategy)
        task = cfg["task"]
        detail = (f"task {task['type']}:{task['index']} of {num_workers(cfg)} workers, "
                  f"chief={is_chief(cfg)}")
    elif chosen == "mirrored":
        strategy = tf.distribute.MirroredStrategy()
        detail = f"devices {list(strategy.extended.worker_devices)}"
    else:
        strategy = tf.distribute.get_strategy()
        detail = "single device"
    logger.info("distribution strategy %s (requested %r): %d replica(s) in sync, %s",
                type(strategy).__name__, kind, strategy.num_replicas_in_sync, detail)
    return strategy
