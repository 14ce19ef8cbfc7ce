"""Repeatable training across CPUs: ``artstyle.determinism`` and ``train.repeatable``.

A CPU is played by ``ONEDNN_MAX_CPU_ISA`` (the instructions oneDNN may use, as on an older
CPU) and by the cores the process may run on (``taskset``); the tiny CNN of
``tests/tiny_training.py`` trains in a fresh process per setting.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO_ROOT

from artstyle import determinism
from artstyle.config import ParamsError, parse_params
from artstyle.tolerance import TOLERANCE, compare_metrics

RAW = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
_TF_VARS = ("ONEDNN_MAX_CPU_ISA", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
            "TF_DETERMINISTIC_OPS")


def test_repeatable_environment_pins_isa_threads_and_op_determinism():
    assert determinism.repeatable_environment(3) == {
        "ONEDNN_MAX_CPU_ISA": "AVX2", "TF_NUM_INTRAOP_THREADS": "3",
        "TF_NUM_INTEROP_THREADS": "1", "TF_DETERMINISTIC_OPS": "1"}
    with pytest.raises(ValueError, match="fixed thread count"):
        determinism.repeatable_environment(0)


def test_setting_reads_the_environment(monkeypatch):
    for var in _TF_VARS:
        monkeypatch.delenv(var, raising=False)
    assert determinism.setting() == {"repeatable": False, "max_cpu_isa": "machine",
                                     "intra_op_threads": 0, "inter_op_threads": 0,
                                     "op_determinism": False}
    for var, value in determinism.repeatable_environment(2).items():
        monkeypatch.setenv(var, value)
    assert determinism.setting() == {"repeatable": True, "max_cpu_isa": "AVX2",
                                     "intra_op_threads": 2, "inter_op_threads": 1,
                                     "op_determinism": True}


def test_configure_refuses_when_tensorflow_already_started(monkeypatch):
    for var in _TF_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow", object()))
    with pytest.raises(determinism.DeterminismError, match="ONEDNN_MAX_CPU_ISA"):
        determinism.configure(True, 2)
    # Already set as asked (a stage that configures twice): nothing to refuse.
    for var, value in determinism.repeatable_environment(2).items():
        monkeypatch.setenv(var, value)
    assert determinism.configure(True, 2)["repeatable"] is True


def test_repeatable_params_need_a_fixed_thread_count():
    assert parse_params(RAW).train.repeatable is True
    raw = copy.deepcopy(RAW)
    raw["train"].update(threads=0)
    with pytest.raises(ParamsError, match="train.threads"):
        parse_params(raw)
    raw["train"].update(repeatable=False)
    assert parse_params(raw).train.threads == 0


def _train_tiny(isa: str, *, repeatable: bool, one_core: bool = False) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in _TF_VARS}
    env.update(ONEDNN_MAX_CPU_ISA=isa, PYTHONPATH=str(REPO_ROOT / "src"))
    cmd = [sys.executable, str(REPO_ROOT / "tests" / "tiny_training.py"),
           "--repeatable", str(int(repeatable)), "--threads", "2"]
    if one_core:
        cmd = ["taskset", "-c", "0", *cmd]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _weights_sha256(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])["weights_sha256"]


@pytest.mark.slow  # four fresh processes that import TensorFlow and train: ~1-2 min on 2 cores
def test_repeatable_training_gives_the_same_weights_on_every_instruction_set():
    one_core = shutil.which("taskset") is not None
    runs = {
        # as on an AVX-512 CPU (AMD EPYC, Intel Xeon), all cores
        "avx512": _train_tiny("AVX512_CORE", repeatable=True),
        # as on an AVX2-only CPU with a single core
        "avx2": _train_tiny("AVX2", repeatable=True, one_core=one_core),
        # the control: the machine's own kernels differ between the two
        "avx512_free": _train_tiny("AVX512_CORE", repeatable=False),
        "avx2_free": _train_tiny("AVX2", repeatable=False),
    }
    sha = {name: _weights_sha256(proc) for name, proc in runs.items()}
    assert sha["avx512_free"] != sha["avx2_free"], "the instruction set limit changed nothing"
    assert sha["avx512"] == sha["avx2"]


def test_train_stage_configures_before_tensorflow():
    # The environment must be set before TensorFlow starts: the call precedes every
    # other artstyle import in main() of each stage that runs TensorFlow on models.
    for stage in ("train", "evaluate", "features", "style_features", "patterns", "stylize"):
        text = (REPO_ROOT / "stages" / f"{stage}.py").read_text()
        body = text[text.index("def main("):]
        lines = body.splitlines()
        imports = [i for i, line in enumerate(lines)
                   if line.strip().startswith(("from artstyle", "import artstyle"))
                   and "determinism" not in line]
        call = next(i for i, line in enumerate(lines) if "configure(params.train.repeatable" in line)
        assert call < min(imports), stage
        assert "import tensorflow" not in text[:text.index("def main(")]


def test_determinism_imports_no_tensorflow():
    code = ("import sys; import artstyle.determinism; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")})



# --------------------------------------------------------------------------- tolerances

def test_tolerances_exact_and_loose():
    committed = {"validation": {"accuracy": 0.875, "macro_f1": 0.87, "n": 40},
                 "test": {"accuracy": 0.90, "macro_f1": 0.9}}
    same = compare_metrics("m", copy.deepcopy(committed), committed)
    assert len(same) == 4 and all(r.within and r.tolerance == 0.0 for r in same)
    run = copy.deepcopy(committed)
    run["validation"]["accuracy"] = 0.825          # 2 of 40 images: noise without repeatable
    run["test"]["accuracy"] = 0.78                 # 6 of 50 images: more than noise
    exact = {(r.split, r.metric): r.within for r in compare_metrics("m", run, committed)}
    assert exact == {("validation", "accuracy"): False, ("validation", "macro_f1"): True,
                     ("test", "accuracy"): False, ("test", "macro_f1"): True}
    loose = {(r.split, r.metric): r.within
             for r in compare_metrics("m", run, committed, TOLERANCE)}
    assert loose[("validation", "accuracy")] and not loose[("test", "accuracy")]
    del run["test"]["macro_f1"]                    # a metric gone is never "the same"
    assert not [r for r in compare_metrics("m", run, committed, TOLERANCE)
                if r.metric == "macro_f1" and r.split == "test"][0].within


def test_check_reproduced_against_the_committed_reports(tmp_path):
    # The committed reports compared with themselves: every model the same, exit 0.
    res = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "check_reproduced.py")],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "reports/eval"], cwd=REPO_ROOT,
                           capture_output=True, text=True).stdout
    if dirty.strip() or not (REPO_ROOT / "reports" / "eval").is_dir():
        pytest.skip("reports/eval differs from HEAD in this checkout")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "DIFFERENT" not in res.stdout and "models within tolerance (exact) of HEAD" in res.stdout
