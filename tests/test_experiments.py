"""A parameter sweep with DVC experiments on the real pipeline (tiny sample), as documented.

The baseline is the first step of the session's pipeline build (``conftest.py``: in a
copy of the repository with tiny params, ``dvc repro evaluate@baseline_cnn`` with
``dvc.lock`` committed, so the data, the VGG19 weights and the baseline CNN are in the
cache). As soon as it is built, in a copy of it (``queued_sweep``, in the background)

1. queues a two-point sweep with Hydra's comma syntax, limited to the baseline CNN::

       dvc exp run --queue -S 'models.baseline_cnn.dense_units=8,16' evaluate@baseline_cnn

2. starts the queue with ``dvc queue start``; the module fixture waits on
   ``dvc queue status``.

Queued experiments run in temporary Git copies of the repository (``.dvc/tmp/exps``)
with the project's DVC cache, so the sweep passing proves that every file a stage
needs is tracked by Git or DVC, and that the worker inherits ``PATH`` (stage commands
call ``python``).  The tests then check ``dvc exp show --json`` (both experiments with
``reports/eval/baseline_cnn/metrics.json:test.accuracy``), ``dvc metrics diff`` and
``dvc plots diff`` between the two experiments, and ``make plots-diff REV="<exp> <exp>"``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandbox import after_build, copy_pipeline, dvc_env, run_dvc

pytestmark = pytest.mark.slow

SWEEP = ("exp", "run", "--queue", "-S", "models.baseline_cnn.dense_units=8,16",
         "evaluate@baseline_cnn")
EVAL = "reports/eval/baseline_cnn/metrics.json"
TRAIN = "reports/train/baseline_cnn/metrics.json"
# Extra trainable parameters of dense_units 16 over 8 in the baseline CNN on the tiny
# sample (last conv block 64 filters, 5 classes), counted by hand: the embedding
# Dense(64 -> u) has 64u + u, the predictions Dense(u -> 5) 5u + 5, so 70 * (16 - 8).
PARAMETER_GAP = 560
# The docs' short experiment table (docs/sharing.md), checked as CSV.
SHOW_TABLE = ("exp", "show", "--drop", ".*", "--keep",
              r"Experiment|.*baseline_cnn/metrics\.json:(test\.(accuracy|macro_f1)|parameters)$"
              r"|models\.baseline_cnn\.dense_units$")


def wait_for_queue(repo: Path, env: dict[str, str], timeout: float = 900) -> str:
    """Poll ``dvc queue status`` until no task is queued or running; returns the last status."""
    deadline = time.monotonic() + timeout
    while True:
        status = run_dvc(repo, "queue", "status", env=env).stdout
        if not re.search(r"\s(Queued|Running)\s", status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"queue not done after {timeout:.0f} s:\n{status}")
        time.sleep(3)


@after_build(baseline=True)
def queued_sweep(pipeline, workdir):
    """In a copy of the built baseline: queue the sweep and start the queue's worker.

    Returns ``(repo, dvc env)`` at once: the worker runs the experiments in the
    background (``dvc queue start`` returns immediately) while other tests run.
    """
    env = pipeline.env
    repo = copy_pipeline(pipeline.repo, workdir / "repo")
    queued = run_dvc(repo, *SWEEP, env=env).stdout
    assert len(re.findall(r"Queued experiment '[^']+' for future execution", queued)) == 2, queued
    run_dvc(repo, "queue", "start", env=env)
    return repo, env


@pytest.fixture(scope="module")
def sweep(pipeline_job):
    """``(repo, dvc env, dvc exp show --json, names of the two successful experiments)``."""
    repo, env = pipeline_job("queued_sweep")
    try:
        status = wait_for_queue(repo, env)
        names = re.findall(r"^\w+\s+(\S+)\s.*\sSuccess\s*$", status, flags=re.MULTILINE)
        if len(names) != 2:
            logs = "\n".join(run_dvc(repo, "queue", "logs", n, check=False, env=env).stdout[-3000:]
                             for n in re.findall(r"^\w+\s+(\S+)\s.*\sFailed\s*$", status, re.MULTILINE))
            raise AssertionError(f"sweep did not succeed:\n{status}\n{logs}")
        shown = json.loads(run_dvc(repo, "exp", "show", "--json", env=env).stdout)
        yield repo, env, shown, names
    finally:
        run_dvc(repo, "queue", "stop", "--kill", check=False, env=env)


def experiments(shown: list[dict]) -> dict[str, dict]:
    """``{name: data}`` of the experiments derived from the baseline commit."""
    baseline = next(row for row in shown if row["rev"] != "workspace")
    return {exp["name"]: exp["revs"][0]["data"] for exp in baseline["experiments"] or []}


def units_to_name(shown: list[dict]) -> dict[int, str]:
    return {data["params"]["params.yaml"]["data"]["models"]["baseline_cnn"]["dense_units"]: name
            for name, data in experiments(shown).items()}


def test_sweep_ran_both_experiments_from_the_cache(sweep):
    repo, env, shown, names = sweep
    exps = experiments(shown)
    assert sorted(exps) == sorted(names)
    summary = json.loads((repo / "reports/data/summary.json").read_text())
    by_units = units_to_name(shown)
    assert sorted(by_units) == [8, 16]
    for units, name in by_units.items():
        test = exps[name]["metrics"][EVAL]["data"]["test"]
        assert 0.0 <= test["accuracy"] <= 1.0 and test["n"] == summary["split"]["test"]
        assert exps[name]["params"]["params.yaml"]["data"]["models"]["baseline_cnn"][
            "input_size"] == 32
        log = run_dvc(repo, "queue", "logs", name, env=env).stdout
        # upstream outputs came from the shared cache; only the swept stages ran
        for stage in ("download", "prepare", "pretrained"):
            assert f"Stage '{stage}' didn't change, skipping" in log, log[-3000:]
        assert "Running stage 'train@baseline_cnn'" in log
        assert "Running stage 'evaluate@baseline_cnn'" in log
    parameters = {u: exps[n]["metrics"][TRAIN]["data"]["parameters"] for u, n in by_units.items()}
    assert parameters[16] - parameters[8] == PARAMETER_GAP

    table = run_dvc(repo, *SHOW_TABLE, "--csv", env=env).stdout.splitlines()
    # DVC shortens a column to the metric name only while no other metrics file has it.
    header = [h.rsplit(":", 1)[-1] for h in table[0].split(",")]
    assert header == ["Experiment", "parameters", "test.accuracy", "test.macro_f1",
                      "models.baseline_cnn.dense_units"], table
    rows = {line.split(",")[0]: line.split(",") for line in table[1:]}
    for units, name in by_units.items():
        assert rows[name][-1] == str(units)
        assert float(rows[name][2]) == pytest.approx(
            exps[name]["metrics"][EVAL]["data"]["test"]["accuracy"])


def test_metrics_diff_between_experiments(sweep):
    repo, env, shown, _ = sweep
    by_units, exps = units_to_name(shown), experiments(shown)
    old, new = by_units[8], by_units[16]
    diff = json.loads(run_dvc(repo, "metrics", "diff", old, new, "--all", "--json",
                              env=env).stdout)
    acc = diff[EVAL]["test.accuracy"]
    assert acc["old"] == exps[old]["metrics"][EVAL]["data"]["test"]["accuracy"]
    assert acc["new"] == exps[new]["metrics"][EVAL]["data"]["test"]["accuracy"]
    assert diff[TRAIN]["parameters"]["diff"] == PARAMETER_GAP
    md = run_dvc(repo, "metrics", "diff", old, new, "--md", env=env).stdout
    assert re.search(rf"\| Path\s+\| Metric\s+\| {old}\s+\| {new}\s+\| Change\s+\|", md), md
    assert re.search(r"\| parameters\s+\| \d+\s+\| \d+\s+\| " + str(PARAMETER_GAP),
                     md), md


def test_plots_diff_between_experiments(sweep, tmp_path):
    repo, env, shown, _ = sweep
    by_units = units_to_name(shown)
    out = tmp_path / "plots"
    run_dvc(repo, "plots", "diff", by_units[8], by_units[16], "-o", str(out), env=env)
    html = (out / "index.html").read_text()
    for name in by_units.values():
        assert name in html
    # the training curves of the swept model and its confusion matrix are drawn
    assert "reports/train/baseline_cnn/plots/metrics/eval/accuracy.tsv" in html
    assert "baseline_cnn test confusion matrix" in html


def test_make_plots_diff_between_experiments(sweep):
    repo, env, shown, _ = sweep
    by_units = units_to_name(shown)
    venv = Path(sys.prefix)
    # `-o` keeps make from (re)building the virtual environment inside the sandbox
    proc = subprocess.run(["make", "-o", str(venv / ".installed"), "plots-diff",
                           f"REV={by_units[8]} {by_units[16]}", f"VENV={venv}"], cwd=repo,
                          env={**dvc_env(), **env}, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    html = (repo / "reports" / "plots_diff" / "index.html").read_text()
    assert by_units[8] in html and by_units[16] in html
    assert "reports/train/baseline_cnn/plots/metrics/eval/accuracy.tsv" in html
