"""Shared start-up of every stage script: import path, logging, params, a one-line summary.

Stage scripts run from the repository root (``dvc repro``); they import the library from
this checkout's ``src/`` (also inside ``dvc exp`` temporary copies), validate
``params.yaml`` once before any heavy work, and end with one summary line.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not sys.stderr.isatty():  # keep logs of non-interactive runs short
    os.environ.setdefault("TQDM_MININTERVAL", "5")

from artstyle.config import Params, load_params
from artstyle.errors import ArtstyleError


def _terminate(signum, frame):
    """SIGTERM (``kill``, a CI time-out) unwinds like Ctrl-C: temporary outputs are removed."""
    raise SystemExit(128 + signum)


def run(stage: str, main: Callable[[Params, list[str]], str]) -> None:
    """Run ``main(params, argv)``; it returns a short "read X, wrote Y" description.

    An expected failure (:class:`artstyle.errors.ArtstyleError`: bad params, an
    unusable dataset, a failed download, a missing model) exits with status 2 and its
    message, without a traceback; any other failure propagates (a bug: non-zero exit
    with the traceback). Either way DVC keeps the previous outputs, and SIGTERM unwinds
    like Ctrl-C so that no temporary output is left behind.
    """
    logging.basicConfig(level=os.environ.get("ARTSTYLE_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _terminate)
    t0 = time.perf_counter()
    try:
        what = main(load_params(), sys.argv[1:])
    except ArtstyleError as err:
        print(f"{stage}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"[{stage}] {what} ({time.perf_counter() - t0:.1f} s)", flush=True)
