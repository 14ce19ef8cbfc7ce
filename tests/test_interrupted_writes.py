"""What a stage killed outright (SIGKILL) leaves behind is removed by the next write into
the same folder; a failed write names the file and what was kept."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from artstyle.io import atomic_dir, atomic_file, remove_stale_temporaries, temporary_sibling

SRC = Path(__file__).resolve().parents[1] / "src"

# As `dvc repro train@best_cnn` writes: the chief's temporary model folder, inside it the
# training's atomic folder, a report folder and a file; then the process is killed.
_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from artstyle.distribute import chief_output
from artstyle.io import atomic_dir, atomic_file
root = Path(sys.argv[1])
with chief_output(root / "models" / "best_cnn") as model_dir, atomic_dir(model_dir) as tmp, \\
        atomic_dir(root / "reports" / "train" / "best_cnn") as rep, \\
        atomic_file(root / "reports" / "summary.json") as fh:
    (tmp / "model.keras").write_bytes(b"half")
    (rep / "log.tsv").write_text("step")
    fh.write("{")
    fh.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_the_next_run_removes_what_a_killed_run_left(tmp_path):
    run = subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(tmp_path)], check=False,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
    assert run.returncode == -signal.SIGKILL
    models, reports = tmp_path / "models", tmp_path / "reports"
    # the leftover: models/..tmp-<pid>-<hex>-best_cnn.<pid>-<hex>.tmp/
    (left,) = _hidden(models)
    assert left.startswith("..tmp-") and "-best_cnn." in left and left.endswith(".tmp")
    assert (models / left / "model.keras").read_bytes() == b"half"
    assert len(_hidden(reports / "train")) == 1 and len(_hidden(reports)) == 1

    # the next run (another process id): its first atomic write into each folder tidies it
    with atomic_dir(models / "best_cnn") as tmp:
        (tmp / "model.keras").write_bytes(b"whole")
    with atomic_dir(reports / "train" / "best_cnn") as rep:
        (rep / "log.tsv").write_text("step")
    with atomic_file(reports / "summary.json") as fh:
        fh.write("{}")
    assert _hidden(models) == _hidden(reports / "train") == _hidden(reports) == []
    assert (models / "best_cnn" / "model.keras").read_bytes() == b"whole"
    assert sorted(p.name for p in models.iterdir()) == ["best_cnn"]


def test_temporaries_of_running_processes_and_other_files_are_kept(tmp_path):
    mine = temporary_sibling(tmp_path / "x.png")            # this process: alive
    mine.write_bytes(b"in progress")
    parent = subprocess.run([sys.executable, "-c", "import os; print(os.getppid())"],
                            capture_output=True, text=True, check=True)
    alive = int(parent.stdout)                              # this test process
    (tmp_path / f".model.{alive}-0123abcd.tmp").mkdir()
    for name in (".tmp-notes", ".DS_Store", ".model.12-xyz.tmp", ".tmp-12-report.csv"):
        (tmp_path / name).write_text("user's")              # not names this module makes
    assert remove_stale_temporaries(tmp_path) == []
    assert len(list(tmp_path.iterdir())) == 6


def test_a_dead_process_is_recognised(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    stale = tmp_path / f".tmp-{child.pid}-0123abcd-out.png"
    stale.write_bytes(b"half")
    (tmp_path / f".best_cnn.{child.pid}-89abcdef.tmp").mkdir()
    (tmp_path / f".best_cnn.old-{child.pid}-89abcdef").mkdir()
    assert len(remove_stale_temporaries(tmp_path)) == 3
    assert list(tmp_path.iterdir()) == []
    assert errno.ESRCH  # (the check uses os.kill(pid, 0): ESRCH = no such process)
