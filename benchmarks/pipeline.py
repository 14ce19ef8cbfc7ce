"""Benchmark: the default pipeline from a fresh clone, stage by stage, and the no-op repro.

Clones this repository's committed ``HEAD`` into a temporary folder beside it (so that
``../shared`` resolves as for the checkout), runs the README's ``make repro`` there (the
virtual environment's set-up included, from pip's cache when it is warm), timing each
stage from DVC's ``Running stage`` lines, then runs ``dvc repro`` again ``--noop-runs``
times on the finished pipeline (nothing to do: DVC's own cost). Prints one table.

    .venv/bin/python benchmarks/pipeline.py [--noop-runs 5] [--keep DIR]
    .venv/bin/python benchmarks/pipeline.py --noop-only DIR   # no-op runs in a built clone

Not a test: the figures depend on the machine and on what else runs on it (the load
average is printed); the issue's targets are <= 8 min for ``make repro`` and <= 2 s for
the no-op.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine_line

STAGE_LINE = re.compile(r"Running stage '([^']+)'")


def timed_lines(cmd: list[str], cwd: Path, env: dict) -> tuple[float, list[tuple[float, str]]]:
    """Run ``cmd``; return its wall seconds and each output line with its time (s from start)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    lines = []
    for line in proc.stdout:
        lines.append((time.perf_counter() - start, line.rstrip("\n")))
    if proc.wait() != 0:
        tail = "\n".join(text for _, text in lines[-20:])
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{tail}")
    return time.perf_counter() - start, lines


def stage_seconds(lines: list[tuple[float, str]], end: float) -> tuple[float, dict[str, float]]:
    """Seconds before the first stage (set-up) and from each stage's start to the next's."""
    starts = [(t, m.group(1)) for t, text in lines if (m := STAGE_LINE.search(text))]
    if not starts:
        return end, {}
    bounds = [t for t, _ in starts[1:]] + [end]
    return starts[0][0], {name: b - t for (t, name), b in zip(starts, bounds, strict=True)}


def noop_runs(repo: Path, runs: int, env: dict) -> list[float]:
    """Wall seconds of ``dvc repro`` with nothing to do, ``runs`` times."""
    dvc = str(repo / ".venv" / "bin" / "dvc")
    out = []
    for _ in range(runs):
        seconds, lines = timed_lines([dvc, "repro"], repo, env)
        ran = [m.group(1) for _, text in lines if (m := STAGE_LINE.search(text))]
        if ran:
            raise SystemExit(f"not a no-op: dvc repro ran {ran}")
        out.append(seconds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--noop-runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="clone here and keep it (default: a temporary "
                    "folder beside the repository, removed at the end)")
    ap.add_argument("--noop-only", type=Path, metavar="DIR",
                    help="only time the no-op repro in this built clone")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    print(f"machine: {machine_line()}")
    if args.noop_only:
        times = noop_runs(args.noop_only.resolve(), args.noop_runs, env)
        print(f"no-op dvc repro: {min(times):.2f} / {statistics.median(times):.2f} / "
              f"{max(times):.2f} s (min / median / max of {len(times)})")
        return
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True, check=True).stdout.strip()
    repo = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(
        prefix="artstyle-pipeline-", dir=ROOT.parent))
    try:
        if repo.exists() and any(repo.iterdir()):
            raise SystemExit(f"{repo} is not empty")
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(repo)], check=True)
        total, lines = timed_lines(["make", "repro"], repo, env)
        setup, stages = stage_seconds(lines, total)
        times = noop_runs(repo, args.noop_runs, env)
        print(f"\nfresh clone of {commit}: `make repro`, then `dvc repro` with nothing to do\n")
        print("| stage | seconds |\n|---|---:|")
        print(f"| (set-up: virtual environment, pip) | {setup:.0f} |")
        for name, seconds in stages.items():
            print(f"| {name} | {seconds:.1f} |")
        print(f"| **make repro, total** | **{total:.0f}** ({total / 60:.1f} min, "
              f"{len(stages)} stages) |")
        print(f"| no-op `dvc repro` (min / median / max of {len(times)}) | "
              f"{min(times):.2f} / {statistics.median(times):.2f} / {max(times):.2f} |")
        print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
