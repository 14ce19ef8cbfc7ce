"""Repeatable TensorFlow on any x86-64 CPU: the settings TensorFlow must see before it starts.

Why CPU training differs between machines (measured in ``docs/development.md``, section
"What is repeatable"): TensorFlow's CPU kernels come from oneDNN, which picks its code
by the instruction set of the CPU it runs on (AVX2, AVX-512, AMX). Kernels for different
instruction sets add up a convolution's or a matrix product's terms in a different order,
so the float32 results differ in the last bits, and training turns those bits into
different weights after a few steps. This holds even with oneDNN's own operations off
(``TF_ENABLE_ONEDNN_OPTS=0``): TensorFlow's Eigen matrix products call oneDNN's ``sgemm``.
The size of TensorFlow's intra-op thread pool changes how sums are split into parts as
well, and its default is the number of cores.

:func:`configure` therefore sets, before TensorFlow is imported:

``ONEDNN_MAX_CPU_ISA=AVX2``
    Every x86-64 CPU this project meets (Intel since Haswell, AMD since Zen) has AVX2, so
    oneDNN runs the same AVX2 kernels on all of them.
``TF_NUM_INTRAOP_THREADS=<threads>``, ``TF_NUM_INTEROP_THREADS=1``
    A fixed thread count, whatever the number of cores (0 is not allowed here).
``TF_DETERMINISTIC_OPS=1``
    What :func:`tensorflow.config.experimental.enable_op_determinism` sets: ops with a
    non-deterministic implementation use a deterministic one or raise, and ``tf.data``
    keeps its order.

With ``repeatable=False`` nothing is set and TensorFlow uses the machine's best
instruction set and all cores (faster on large models, machine-dependent digits).

References
----------
oneDNN, "CPU Dispatcher Control", https://oneapi-src.github.io/oneDNN/dev_guide_cpu_dispatcher_control.html
TensorFlow, ``tf.config.experimental.enable_op_determinism``.
"""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger(__name__)

#: The instruction set oneDNN is limited to for repeatable results (the lowest common one).
REPEATABLE_ISA = "AVX2"


class DeterminismError(RuntimeError):
    """TensorFlow was imported before :func:`configure` could set its environment."""


def repeatable_environment(threads: int) -> dict[str, str]:
    """The environment variables of a repeatable run.

    Parameters
    ----------
    threads : int
        Intra-op threads, >= 1: a fixed number, the same on every machine.

    Returns
    -------
    dict of str to str
        Variable name -> value.

    Raises
    ------
    ValueError
        If ``threads < 1``.
    """
    if threads < 1:
        raise ValueError(f"repeatable runs need a fixed thread count >= 1, got {threads}")
    return {
        "ONEDNN_MAX_CPU_ISA": REPEATABLE_ISA,
        "TF_NUM_INTRAOP_THREADS": str(threads),
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_DETERMINISTIC_OPS": "1",
    }


def configure(repeatable: bool, threads: int) -> dict[str, object]:
    """Set TensorFlow's environment for this process; call it before importing TensorFlow.

    Parameters
    ----------
    repeatable : bool
        ``True``: the settings of :func:`repeatable_environment` (they replace any value
        of those variables in the environment). ``False``: TensorFlow's defaults, or
        ``threads`` intra-op threads when ``threads > 0``.
    threads : int
        Intra-op threads; 0 = TensorFlow's default (all cores), not allowed when
        ``repeatable``.

    Returns
    -------
    dict
        The setting, for a stage's metrics: ``repeatable`` (bool), ``max_cpu_isa``
        (``"AVX2"`` or ``"machine"``), ``intra_op_threads`` (int, 0 = all cores),
        ``inter_op_threads`` (int, 0 = TensorFlow's default), ``op_determinism`` (bool).
        It names the choice, never the machine, so equal settings give equal metrics files.

    Raises
    ------
    ValueError
        If ``repeatable`` and ``threads < 1``.
    DeterminismError
        If TensorFlow is already imported and its environment differs from the one asked
        for (oneDNN reads it once, when it starts).
    """
    if repeatable:
        env = repeatable_environment(threads)
    else:
        env = {"TF_NUM_INTRAOP_THREADS": str(threads)} if threads > 0 else {}
    if "tensorflow" in sys.modules:
        changed = sorted(k for k, v in env.items() if os.environ.get(k) != v)
        if changed:
            raise DeterminismError(
                "TensorFlow was imported before artstyle.determinism.configure() could set "
                + ", ".join(changed) + "; call it first thing in the process")
    os.environ.update(env)
    record = setting()
    logger.info("TensorFlow CPU setting: %s", record)
    return record


def setting() -> dict[str, object]:
    """The setting this process runs under, read from the environment (see :func:`configure`)."""
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    intra = int(os.environ.get("TF_NUM_INTRAOP_THREADS", "0") or 0)
    inter = int(os.environ.get("TF_NUM_INTEROP_THREADS", "0") or 0)
    determinism = os.environ.get("TF_DETERMINISTIC_OPS", "") in {"1", "true", "True"}
    return {
        "repeatable": isa == REPEATABLE_ISA and intra > 0 and inter == 1 and determinism,
        "max_cpu_isa": isa or "machine",
        "intra_op_threads": intra,
        "inter_op_threads": inter,
        "op_determinism": determinism,
    }


__all__ = ["REPEATABLE_ISA", "DeterminismError", "configure", "repeatable_environment",
           "setting"]
