"""Shared start-up of every stage script: import path, logging, params, a one-line summary.

Stage scripts run from the repository root (``dvc repro``); they import the library from
this checkout's ``src/`` (also inside ``dvc exp`` temporary copies), validate
``params.yaml`` once before any heavy work, and end with one summary line.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
if not sys.stderr.isatty():  # keep logs of non-interactive runs short
    os.environ.setdefault("TQDM_MININTERVAL", "5")

from artstyle.config import Params, ParamsError, load_params  # noqa: E402


def run(stage: str, main: Callable[[Params, list[str]], str]) -> None:
    """Run ``main(params, argv)``; it returns a short "read X, wrote Y" description.

    A params error exits with status 2 and the message naming the key; any other
    failure propagates (non-zero exit, DVC keeps the previous outputs).
    """
    logging.basicConfig(level=os.environ.get("ARTSTYLE_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    try:
        params = load_params()
    except ParamsError as err:
        print(f"{stage}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    what = main(params, sys.argv[1:])
    print(f"[{stage}] {what} ({time.perf_counter() - t0:.1f} s)", flush=True)
