"""Does this workspace's run give the committed numbers? ``make check-repro [REV=HEAD]``.

Compares every ``reports/eval/<model>/metrics.json`` of the workspace with the same file
at a Git revision (``git show REV:path``), metric by metric, against the tolerances of
:mod:`artstyle.tolerance`: zero (the same digits) by default, the pipeline's own setting;
``--loose`` for a run that is not repeatable (``train.repeatable: false``, XGBoost on a
GPU). Prints one line per model and exits 1 when any model is outside its tolerance.

    .venv/bin/python scripts/check_reproduced.py [--rev HEAD] [--loose] [--verbose]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from artstyle.tolerance import EXACT, TOLERANCE, compare_metrics  # noqa: E402


def committed_json(rev: str, path: str) -> dict | None:
    """The JSON file ``path`` at Git revision ``rev``, or None where it is not committed."""
    res = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True,
                         text=True)
    return json.loads(res.stdout) if res.returncode == 0 else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--loose", action="store_true",
                    help="the tolerances of a run that is not repeatable")
    ap.add_argument("--verbose", action="store_true", help="every metric, not only models")
    args = ap.parse_args()
    tolerance = TOLERANCE if args.loose else EXACT
    bad = 0
    files = sorted((ROOT / "reports" / "eval").glob("*/metrics.json"))
    if not files:
        print("no reports/eval/*/metrics.json in the workspace: run dvc repro first")
        return 1
    for path in files:
        model = path.parent.name
        committed = committed_json(args.rev, path.relative_to(ROOT).as_posix())
        if committed is None:
            print(f"{model}: not committed at {args.rev}")
            continue
        rows = compare_metrics(model, json.loads(path.read_text()), committed, tolerance)
        worst = max(rows, key=lambda r: float("inf") if r.run is None or r.committed is None
                    else abs(r.run - r.committed), default=None)
        ok = all(r.within for r in rows)
        bad += not ok
        if worst is None or worst.run is None or worst.committed is None:
            what = "metrics missing" if rows else "no metrics compared"
        else:
            what = (f"largest difference {abs(worst.run - worst.committed):.4f} "
                    f"({worst.split} {worst.metric}: {worst.committed:.4f} -> {worst.run:.4f})")
        print(f"{model}: {'same' if ok else 'DIFFERENT'}, {what}")
        if args.verbose:
            for r in rows:
                print(f"    {r.split} {r.metric}: {r.committed} -> {r.run} "
                      f"(tolerance {r.tolerance}) {'ok' if r.within else 'OUT'}")
    kind = "loose tolerances" if args.loose else "exact"
    print(f"{len(files) - bad} of {len(files)} models within tolerance ({kind}) of {args.rev}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
